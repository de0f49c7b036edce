#include "tests/testing/test_paths.h"

#include <cstdlib>
#include <unistd.h>

#include <filesystem>

namespace moeserve::testing {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

}  // namespace

std::string SourcePath(const std::string& relative) {
  return EnvOr("MOESERVE_SOURCE_DIR", MOESERVE_SOURCE_DIR_DEFAULT) + "/" + relative;
}

std::string DefaultModelPath() {
  const std::string path =
      EnvOr("MOESERVE_MODEL_DIR", std::string(MOESERVE_SOURCE_DIR_DEFAULT) + "/models") +
      "/SmolLM2-135M-Instruct.Q4_1.gguf";
  return std::filesystem::exists(path) ? path : "";
}

std::string TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::filesystem::path dir = base != nullptr ? base : std::filesystem::temp_directory_path();
  dir /= "moeserve_test_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace moeserve::testing
