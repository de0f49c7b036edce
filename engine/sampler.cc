#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "common/logging.h"

namespace moeserve {

int32_t ArgMax(absl::Span<const float> values) {
  CHECK(!values.empty());
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(values.size()); ++i) {
    if (values[i] > values[best]) best = i;
  }
  return best;
}

int32_t Sampler::Sample(absl::Span<const float> logits, const SamplingParams& params,
                        std::mt19937_64* rng) {
  // Below this, logits / temperature overflows to infinities and NaNs; the distribution
  // is a point mass on the argmax anyway (vLLM uses the same threshold).
  if (params.temperature < kGreedyTemperature || params.top_k == 1) return ArgMax(logits);

  const int32_t vocab = static_cast<int32_t>(logits.size());
  candidates_.resize(vocab);
  for (int32_t i = 0; i < vocab; ++i) candidates_[i] = {logits[i] / params.temperature, i};
  auto by_logit_desc = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  int32_t keep = vocab;
  if (params.top_k > 0 && params.top_k < vocab) {
    keep = params.top_k;
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(),
                      by_logit_desc);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit_desc);
  }
  // Softmax over the kept candidates, in descending order.
  const float max_logit = candidates_[0].first;
  double total = 0.0;
  for (int32_t i = 0; i < keep; ++i) {
    candidates_[i].first = std::exp(candidates_[i].first - max_logit);
    total += candidates_[i].first;
  }
  if (params.top_p < 1.0f) {
    // Smallest prefix whose mass reaches top_p; always at least one token.
    double mass = 0.0;
    int32_t cut = 0;
    while (cut < keep) {
      mass += candidates_[cut].first / total;
      ++cut;
      if (mass >= params.top_p) break;
    }
    keep = cut;
    total = 0.0;
    for (int32_t i = 0; i < keep; ++i) total += candidates_[i].first;
  }
  if (!std::isfinite(total) || total <= 0.0) return ArgMax(logits);  // inf or NaN logits
  // A uniform double in [0, 1) from 53 random bits: identical on every platform.
  const double u = static_cast<double>((*rng)() >> 11) * 0x1.0p-53;
  double threshold = u * total;
  for (int32_t i = 0; i < keep; ++i) {
    threshold -= candidates_[i].first;
    if (threshold < 0.0) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

}  // namespace moeserve
