// Where tests find the source tree (fixtures) and the downloaded models. ctest sets
// MOESERVE_SOURCE_DIR and MOESERVE_MODEL_DIR; running a test binary by hand falls back to
// the paths baked in at build time.
#ifndef MOESERVE_TESTS_TESTING_TEST_PATHS_H_
#define MOESERVE_TESTS_TESTING_TEST_PATHS_H_

#include <string>

namespace moeserve::testing {

// Absolute path of `relative` under the source tree, e.g. "tests/fixtures/x.json".
std::string SourcePath(const std::string& relative);

// Path of the default model (SmolLM2-135M-Instruct.Q4_1.gguf), or "" when it is not
// installed (scripts/bootstrap.sh installs it).
std::string DefaultModelPath();

// A fresh temporary directory for this test (per process; not removed afterwards).
std::string TempDir();

}  // namespace moeserve::testing

#endif  // MOESERVE_TESTS_TESTING_TEST_PATHS_H_
