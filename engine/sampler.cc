#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "common/logging.h"

namespace moeserve {
namespace {

// Orders candidates most likely first, ties by lower id.
bool ByLogitDesc(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

}  // namespace

int32_t ArgMax(absl::Span<const float> values) {
  CHECK(!values.empty());
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(values.size()); ++i) {
    if (values[i] > values[best]) best = i;
  }
  return best;
}

PenaltyHistory::PenaltyHistory(const SamplingParams& params, absl::Span<const int32_t> prompt)
    : track_output_(params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f),
      track_all_(params.repetition_penalty != 1.0f) {
  if (track_all_) seen_.insert(prompt.begin(), prompt.end());
}

void PenaltyHistory::AddGenerated(int32_t token) {
  if (track_output_) ++output_counts_[token];
  if (track_all_) seen_.insert(token);
}

int32_t Sampler::Sample(absl::Span<const float> logits, const SamplingParams& params,
                        std::mt19937_64* rng, const PenaltyHistory* history,
                        TokenLogprob* logprobs) {
  absl::Span<const float> processed = logits;
  if (params.HasLogitProcessing()) {
    ApplyBiasAndPenalties(logits, params, history);
    processed = processed_;
  }
  // Below kGreedyTemperature, logits / temperature overflows to infinities and NaNs; the
  // distribution is a point mass on the argmax anyway (vLLM uses the same threshold).
  const int32_t token = params.temperature < kGreedyTemperature || params.top_k == 1
                            ? ArgMax(processed)
                            : SampleFiltered(processed, params, rng);
  if (params.logprobs && logprobs != nullptr) {
    FillLogprobs(params.logprobs_mode == LogprobsMode::kRaw ? logits : processed, token,
                 params.top_logprobs, logprobs);
  }
  return token;
}

void Sampler::ApplyBiasAndPenalties(absl::Span<const float> logits, const SamplingParams& params,
                                    const PenaltyHistory* history) {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  processed_.assign(logits.begin(), logits.end());
  for (const auto& [token, bias] : params.logit_bias) {
    if (token >= 0 && token < vocab) processed_[token] += bias;
  }
  if (history == nullptr) return;
  if (params.repetition_penalty != 1.0f) {
    const float penalty = params.repetition_penalty;
    for (const int32_t token : history->seen_) {
      if (token < 0 || token >= vocab) continue;
      float& logit = processed_[token];
      logit = logit > 0.0f ? logit / penalty : logit * penalty;
    }
  }
  if (params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f) {
    for (const auto& [token, count] : history->output_counts_) {
      if (token < 0 || token >= vocab) continue;
      processed_[token] -=
          params.frequency_penalty * static_cast<float>(count) + params.presence_penalty;
    }
  }
}

int32_t Sampler::SampleFiltered(absl::Span<const float> logits, const SamplingParams& params,
                                std::mt19937_64* rng) {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  const float inv_temperature = 1.0f / params.temperature;
  const float max_scaled = logits[ArgMax(logits)] * inv_temperature;
  candidates_.clear();
  candidates_.reserve(vocab);
  if (params.min_p > 0.0f) {
    // min-p keeps p_i >= min_p * p_max, i.e. l_i / T >= l_max / T + log(min_p): dropping
    // the rest first makes everything after cheap on a large vocabulary.
    const float threshold = max_scaled + std::log(params.min_p);
    for (int32_t i = 0; i < vocab; ++i) {
      const float scaled = logits[i] * inv_temperature;
      if (scaled >= threshold) candidates_.emplace_back(scaled, i);
    }
    if (candidates_.empty()) return ArgMax(logits);  // NaN logits
  } else {
    for (int32_t i = 0; i < vocab; ++i) candidates_.emplace_back(logits[i] * inv_temperature, i);
  }
  int32_t keep = static_cast<int32_t>(candidates_.size());
  bool sorted = false;  // candidates_[0, keep) most likely first
  if (params.top_k > 0 && params.top_k < keep) {
    keep = params.top_k;
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(),
                      ByLogitDesc);
    sorted = true;
  }
  // Unnormalised softmax weights of the kept candidates.
  const float max_logit = sorted ? candidates_[0].first : max_scaled;
  double total = 0.0;
  for (int32_t i = 0; i < keep; ++i) {
    candidates_[i].first = std::exp(candidates_[i].first - max_logit);
    total += candidates_[i].first;
  }
  if (!std::isfinite(total) || total <= 0.0) return ArgMax(logits);  // inf or NaN logits
  if (params.top_p < 1.0f) {
    if (!sorted) {
      // The nucleus is usually a few dozen tokens: sort a head of the candidates, growing
      // it until it holds top_p of the mass, instead of sorting the whole vocabulary.
      int32_t head = std::min(keep, 64);
      while (true) {
        std::partial_sort(candidates_.begin(), candidates_.begin() + head,
                          candidates_.begin() + keep, ByLogitDesc);
        double mass = 0.0;
        for (int32_t i = 0; i < head; ++i) mass += candidates_[i].first;
        if (mass / total >= params.top_p || head == keep) break;
        head = head > keep / 4 ? keep : head * 4;
      }
    }
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
  // Inverse CDF over the kept candidates in their current order (by probability after
  // top-k or top-p, by id otherwise). A uniform double in [0, 1) from 53 random bits:
  // identical on every platform.
  const double u = static_cast<double>((*rng)() >> 11) * 0x1.0p-53;
  double threshold = u * total;
  for (int32_t i = 0; i < keep; ++i) {
    threshold -= candidates_[i].first;
    if (threshold < 0.0) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

void Sampler::FillLogprobs(absl::Span<const float> source, int32_t token, int32_t top_n,
                           TokenLogprob* out) {
  const int32_t vocab = static_cast<int32_t>(source.size());
  // log-softmax(x)_i = x_i - (max + log(sum exp(x - max))), summed in double.
  const float max_logit = source[ArgMax(source)];
  double sum = 0.0;
  for (int32_t i = 0; i < vocab; ++i) sum += std::exp(source[i] - max_logit);
  const double log_normalizer = max_logit + std::log(sum);
  out->token = token;
  out->logprob = static_cast<float>(source[token] - log_normalizer);
  out->top.clear();
  if (top_n <= 0) return;
  top_n = std::min(top_n, vocab);
  // One pass keeping the top_n largest in a small sorted array (top_n <= 20): after the
  // first few hundred entries almost every value fails the first comparison.
  out->top.reserve(top_n);
  for (int32_t i = 0; i < vocab; ++i) {
    const float x = source[i];
    if (static_cast<int32_t>(out->top.size()) == top_n && !(x > out->top.back().logprob)) continue;
    if (static_cast<int32_t>(out->top.size()) == top_n) out->top.pop_back();
    auto at = out->top.end();
    // Strictly greater moves ahead, so among equal values the lower id stays first.
    while (at != out->top.begin() && x > (at - 1)->logprob) --at;
    out->top.insert(at, TopLogprob{i, x});
  }
  for (TopLogprob& t : out->top) t.logprob = static_cast<float>(t.logprob - log_normalizer);
}

}  // namespace moeserve
