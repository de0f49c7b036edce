// The loop of the parser fuzz test: a FuzzTarget names a parser, its seed inputs and a
// function feeding it one input; RunFuzzTarget() checks that every seed is accepted, then
// feeds it mutated seeds and random bytes. A parser must return (an error Status or
// success) within the time limit: a crash, a sanitizer report, a CHECK failure, a hang or
// a slow input is a bug. On any of these the offending input is saved under TempDir() and
// the message says how to replay it.
//
// Environment (all optional):
//   MOESERVE_FUZZ_SEED=N         run seed (default fixed, so CI is deterministic;
//                                "random" picks one from the clock and prints it)
//   MOESERVE_FUZZ_ITERATIONS=N   inputs per target instead of each target's default
//   MOESERVE_FUZZ_INPUT=PATH     feed only this file (select the target with --gtest_filter)
//   MOESERVE_FUZZ_SLOW_MS=N      an input taking more CPU time fails the test (default
//                                2000; CPU, not wall time, so a busy machine is no excuse)
//   MOESERVE_FUZZ_HANG_S=N       an input still running after this many seconds of wall
//                                time aborts the run (default 60)
//   MOESERVE_FUZZ_LEAK_CHECK_EACH=1  a leak check after every input, to find the one that
//                                leaks (slow; by default each target is checked once)
#ifndef MOESERVE_TESTS_FUZZ_FUZZ_HARNESS_H_
#define MOESERVE_TESTS_FUZZ_FUZZ_HARNESS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace moeserve::fuzz {

struct FuzzTarget {
  std::string name;
  // Valid inputs: each must be accepted (run returns OK), and they are mutated.
  std::vector<std::string> seeds;
  // More inputs to mutate that need not be accepted (known-bad fixtures, templates that
  // use unsupported constructs).
  std::vector<std::string> extra_corpus;
  std::vector<std::string> dictionary;  // tokens of the format, see mutator.h
  bool text = false;                    // random inputs mostly printable ASCII
  int64_t iterations = 1000;            // default number of generated inputs
  // Feeds one input to the parser and returns the parser's verdict. Work done with an
  // accepted result (encoding with a loaded tokenizer, rendering a template) may fail
  // without changing the verdict; broken invariants are reported with Violation().
  std::function<absl::Status(const std::string& input)> run;
};

// Fails the current test for the input being run (saved, with replay instructions).
void Violation(const std::string& what);

// Runs `target` as described above; failures are GoogleTest failures.
void RunFuzzTarget(const FuzzTarget& target);

}  // namespace moeserve::fuzz

#endif  // MOESERVE_TESTS_FUZZ_FUZZ_HARNESS_H_
