// A deterministic mutation engine for the parser fuzz test: a small seedable PRNG and
// Mutate(), which derives a new input from a seed input by stacking a few random edits
// (bit flips, interesting bytes and integers, arithmetic, truncation, chunk deletion,
// duplication and insertion, dictionary tokens, numbers in text, splicing with another
// seed). The same Rng state always gives the same input, so a failure reproduces from the
// run's seed and the iteration number alone.
#ifndef MOESERVE_TESTS_FUZZ_MUTATOR_H_
#define MOESERVE_TESTS_FUZZ_MUTATOR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moeserve::fuzz {

// splitmix64: tiny, fast and good enough to pick mutations.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n); REQUIRES: n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }

 private:
  uint64_t state_;
};

// Mixes a run seed, a target name and an iteration into the seed of that iteration's Rng.
uint64_t IterationSeed(uint64_t run_seed, std::string_view target, uint64_t iteration);

struct MutationContext {
  // Inputs to splice with (usually the target's seeds); may be empty.
  const std::vector<std::string>* corpus = nullptr;
  // Tokens worth inserting for this format: keywords, magic numbers, delimiters.
  const std::vector<std::string>* dictionary = nullptr;
  // Inputs are never grown past this many bytes.
  size_t max_size = 1 << 20;
};

// `input` after 1 to 8 random edits.
std::string Mutate(std::string input, const MutationContext& context, Rng& rng);

// `size` uniformly random bytes; with `text` set, mostly printable ASCII and punctuation.
std::string RandomBytes(size_t size, bool text, Rng& rng);

}  // namespace moeserve::fuzz

#endif  // MOESERVE_TESTS_FUZZ_MUTATOR_H_
