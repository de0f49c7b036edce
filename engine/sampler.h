// Picks the next token of a sequence from its logits: greedy at temperature 0, otherwise
// temperature, top-k and top-p filtering then a draw from the request's own generator, so
// the same seed gives the same tokens whatever else is in the batch.
#ifndef MOESERVE_ENGINE_SAMPLER_H_
#define MOESERVE_ENGINE_SAMPLER_H_

#include <cstdint>
#include <random>
#include <vector>

#include "absl/types/span.h"
#include "engine/request.h"

namespace moeserve {

class Sampler {
 public:
  // logits: [vocab]. `rng` is the request's generator; unused when greedy.
  int32_t Sample(absl::Span<const float> logits, const SamplingParams& params,
                 std::mt19937_64* rng);

 private:
  // Scratch reused across calls (engine thread only).
  std::vector<std::pair<float, int32_t>> candidates_;
};

// Temperatures below this sample greedily.
inline constexpr float kGreedyTemperature = 1e-5f;

// Index of the largest value; the lowest index among equals (as torch.argmax).
int32_t ArgMax(absl::Span<const float> values);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_SAMPLER_H_
