// Picks the next token of a sequence from its logits, with vLLM's semantics
// (vllm/v1/sample/sampler.py): logit_bias, then the repetition, frequency and presence
// penalties; greedy takes the argmax of the result (temperature 0 or top_k 1), otherwise
// temperature, min-p, top-k and top-p filter it before a draw from the request's own
// generator, so the same seed gives the same tokens whatever else is in the batch.
// Logprobs come from the raw logits (vLLM v1's default) or, with LogprobsMode::kPenalized,
// from the logits after bias and penalties; never after temperature or filtering.
#ifndef MOESERVE_ENGINE_SAMPLER_H_
#define MOESERVE_ENGINE_SAMPLER_H_

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/types/span.h"
#include "engine/request.h"

namespace moeserve {

// The token history one request's penalties need, kept up to date token by token rather
// than recounted every step: how often each id was generated (presence and frequency) and
// which ids occur in the prompt or the output (repetition). Only what the request's
// parameters use is tracked, so requests without penalties pay nothing.
class PenaltyHistory {
 public:
  PenaltyHistory() = default;
  PenaltyHistory(const SamplingParams& params, absl::Span<const int32_t> prompt);

  void AddGenerated(int32_t token);

 private:
  friend class Sampler;

  bool track_output_ = false;                            // presence or frequency penalty set
  bool track_all_ = false;                               // repetition penalty set
  absl::flat_hash_map<int32_t, int32_t> output_counts_;  // generated id -> occurrences
  absl::flat_hash_set<int32_t> seen_;                    // ids in prompt or output
};

class Sampler {
 public:
  // logits: [vocab]. `rng` is the request's generator; unused when greedy. `history` holds
  // the request's tokens for the penalties (nullptr: no penalties apply). When
  // params.logprobs, `*logprobs` receives the chosen token's logprob and the
  // params.top_logprobs most likely tokens.
  int32_t Sample(absl::Span<const float> logits, const SamplingParams& params, std::mt19937_64* rng,
                 const PenaltyHistory* history = nullptr, TokenLogprob* logprobs = nullptr);

 private:
  // processed_ = logits + logit_bias, then the penalties.
  void ApplyBiasAndPenalties(absl::Span<const float> logits, const SamplingParams& params,
                             const PenaltyHistory* history);
  // Temperature, min-p, top-k, top-p, then a draw.
  int32_t SampleFiltered(absl::Span<const float> logits, const SamplingParams& params,
                         std::mt19937_64* rng);
  // log-softmax(source)[token] and the `top_n` largest entries of log-softmax(source).
  void FillLogprobs(absl::Span<const float> source, int32_t token, int32_t top_n,
                    TokenLogprob* out);

  // Scratch reused across calls (engine thread only), so a step allocates nothing once
  // the buffers have grown to the vocabulary.
  std::vector<float> processed_;                       // [vocab]
  std::vector<std::pair<float, int32_t>> candidates_;  // [<= vocab]
};

// Temperatures below this sample greedily.
inline constexpr float kGreedyTemperature = 1e-5f;

// Index of the largest value; the lowest index among equals (as torch.argmax).
int32_t ArgMax(absl::Span<const float> values);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_SAMPLER_H_
