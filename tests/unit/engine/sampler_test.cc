#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace moeserve {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};

TEST(SamplerTest, ArgMaxTakesTheFirstOfEqualMaxima) { EXPECT_EQ(ArgMax(kLogits), 1); }

TEST(SamplerTest, GreedyAtZeroAndTinyTemperatures) {
  Sampler sampler;
  std::mt19937_64 rng(1);
  for (float t : {0.0f, 1e-6f, 1e-30f, 1e-40f}) {  // 1e-40 is a denormal float
    SamplingParams params;
    params.temperature = t;
    EXPECT_EQ(sampler.Sample(kLogits, params, &rng), 1) << t;
  }
}

TEST(SamplerTest, TopKOneIsGreedy) {
  Sampler sampler;
  std::mt19937_64 rng(1);
  SamplingParams params;
  params.top_k = 1;
  EXPECT_EQ(sampler.Sample(kLogits, params, &rng), 1);
}

// Frequencies over many draws follow softmax(logits / T) within 3 standard errors.
TEST(SamplerTest, SamplesFollowTheTemperedSoftmax) {
  Sampler sampler;
  std::mt19937_64 rng(42);
  SamplingParams params;
  params.temperature = 0.7f;
  const int draws = 50000;
  std::vector<int> counts(kLogits.size());
  for (int i = 0; i < draws; ++i) ++counts[sampler.Sample(kLogits, params, &rng)];
  double total = 0.0;
  std::vector<double> p(kLogits.size());
  for (size_t i = 0; i < p.size(); ++i) total += p[i] = std::exp(kLogits[i] / 0.7);
  for (size_t i = 0; i < p.size(); ++i) {
    p[i] /= total;
    const double sigma = std::sqrt(p[i] * (1 - p[i]) / draws);
    EXPECT_NEAR(counts[i] / double{draws}, p[i], 3 * sigma + 1e-9) << i;
  }
}

TEST(SamplerTest, TopKAndTopPRestrictTheCandidates) {
  Sampler sampler;
  std::mt19937_64 rng(7);
  SamplingParams top_k;
  top_k.top_k = 2;
  SamplingParams top_p;
  top_p.top_p = 0.5f;  // each logit-3 token holds 0.40 of the mass: the nucleus is those two
  for (int i = 0; i < 2000; ++i) {
    const int32_t a = sampler.Sample(kLogits, top_k, &rng);
    EXPECT_TRUE(a == 1 || a == 3) << a;
    const int32_t b = sampler.Sample(kLogits, top_p, &rng);
    EXPECT_TRUE(b == 1 || b == 3) << b;
  }
}

TEST(SamplerTest, SameSeedSameDraws) {
  Sampler sampler;
  SamplingParams params;
  std::mt19937_64 a(123), b(123), c(124);
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(sampler.Sample(kLogits, params, &a));
    sb.push_back(sampler.Sample(kLogits, params, &b));
    sc.push_back(sampler.Sample(kLogits, params, &c));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(SamplerTest, NonFiniteLogitsFallBackToArgMax) {
  Sampler sampler;
  std::mt19937_64 rng(1);
  const std::vector<float> logits = {0.0f, INFINITY, 1.0f};
  EXPECT_EQ(sampler.Sample(logits, SamplingParams{}, &rng), 1);
}

// Greedy params that apply `edit` to a default SamplingParams.
template <typename Edit>
SamplingParams Greedy(Edit edit) {
  SamplingParams params;
  params.temperature = 0.0f;
  edit(params);
  return params;
}

// The logits after bias and penalties, read back through LogprobsMode::kPenalized: the
// log-softmax shifts every entry by the same constant, so differences are exact.
std::vector<float> Processed(const std::vector<float>& logits, SamplingParams params,
                             const PenaltyHistory* history) {
  Sampler sampler;
  std::mt19937_64 rng(1);
  params.logprobs = true;
  params.top_logprobs = static_cast<int32_t>(logits.size());
  params.logprobs_mode = LogprobsMode::kPenalized;
  TokenLogprob lp;
  sampler.Sample(logits, params, &rng, history, &lp);
  std::vector<float> out(logits.size());
  for (const TopLogprob& t : lp.top) out[t.token] = t.logprob;
  const float shift = out[0];
  for (float& x : out) x -= shift;  // relative to token 0
  return out;
}

TEST(SamplerTest, LogitBiasIsAddedFirst) {
  Sampler sampler;
  std::mt19937_64 rng(1);
  // Token 1 is the argmax; -100 on it and +1.5 on token 2 make token 2 the argmax (3.5).
  const SamplingParams params = Greedy([](SamplingParams& p) {
    p.logit_bias = {{1, -100.0f}, {2, 1.5f}};
  });
  EXPECT_EQ(sampler.Sample(kLogits, params, &rng), 2);
  const std::vector<float> processed = Processed(kLogits, params, nullptr);
  EXPECT_FLOAT_EQ(processed[1] - processed[0], 3.0f - 100.0f - 1.0f);
  EXPECT_FLOAT_EQ(processed[2] - processed[0], 3.5f - 1.0f);
  EXPECT_FLOAT_EQ(processed[4] - processed[0], -2.0f);
}

TEST(SamplerTest, PresenceAndFrequencyPenaltiesCountGeneratedTokensOnly) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f};
  SamplingParams params = Greedy([](SamplingParams& p) {
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
  });
  // Token 3 is in the prompt only: OpenAI's penalties ignore the prompt.
  const std::vector<int32_t> prompt = {3, 3, 3};
  PenaltyHistory history(params, prompt);
  for (int32_t t : {1, 1, 1, 2}) history.AddGenerated(t);
  const std::vector<float> p = Processed(logits, params, &history);
  // logit -= presence * (count > 0) + frequency * count
  EXPECT_FLOAT_EQ(p[1] - p[0], (2.0f - 0.5f - 0.75f) - 1.0f);
  EXPECT_FLOAT_EQ(p[2] - p[0], (0.5f - 0.5f - 0.25f) - 1.0f);
  EXPECT_FLOAT_EQ(p[3] - p[0], -1.0f - 1.0f);
  // 2 - 1.25 = 0.75 < 1: token 0 becomes the greedy choice.
  Sampler sampler;
  std::mt19937_64 rng(1);
  EXPECT_EQ(sampler.Sample(logits, params, &rng, &history), 0);
  EXPECT_EQ(sampler.Sample(logits, params, &rng, nullptr), 1) << "no history, no penalty";
}

TEST(SamplerTest, NegativePenaltiesEncourageRepetition) {
  const std::vector<float> logits = {1.0f, 0.5f};
  SamplingParams params = Greedy([](SamplingParams& p) { p.frequency_penalty = -2.0f; });
  PenaltyHistory history(params, {});
  history.AddGenerated(1);
  const std::vector<float> p = Processed(logits, params, &history);
  EXPECT_FLOAT_EQ(p[1] - p[0], 2.5f - 1.0f);
}

TEST(SamplerTest, RepetitionPenaltyCoversPromptAndOutputAndDividesPositives) {
  const std::vector<float> logits = {2.0f, -1.0f, 3.0f, 0.5f, 1.0f};
  SamplingParams params = Greedy([](SamplingParams& p) { p.repetition_penalty = 2.0f; });
  const std::vector<int32_t> prompt = {1, 2, 2};
  PenaltyHistory history(params, prompt);
  history.AddGenerated(3);
  history.AddGenerated(3);  // counted once: repetition is presence-like
  const std::vector<float> p = Processed(logits, params, &history);
  // Token 0 is not seen: 2. Token 1: -1 * 2. Token 2: 3 / 2. Token 3: 0.5 / 2. Token 4: 1.
  EXPECT_FLOAT_EQ(p[1] - p[0], -2.0f - 2.0f);
  EXPECT_FLOAT_EQ(p[2] - p[0], 1.5f - 2.0f);
  EXPECT_FLOAT_EQ(p[3] - p[0], 0.25f - 2.0f);
  EXPECT_FLOAT_EQ(p[4] - p[0], 1.0f - 2.0f);
  Sampler sampler;
  std::mt19937_64 rng(1);
  EXPECT_EQ(sampler.Sample(logits, params, &rng, &history), 0) << "3 / 2 < 2";
}

TEST(SamplerTest, PenaltyHistoryTracksOnlyWhatIsUsed) {
  SamplingParams none;
  const std::vector<int32_t> prompt = {1, 2};
  PenaltyHistory history(none, prompt);
  history.AddGenerated(0);
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f};
  EXPECT_EQ(Processed(logits, none, &history), Processed(logits, none, nullptr));
}

TEST(SamplerTest, MinPDropsUnlikelyTokens) {
  Sampler sampler;
  std::mt19937_64 rng(3);
  // Probabilities relative to the max: exp(0) = 1, exp(-1) = 0.37, exp(-2) = 0.14, ...
  const std::vector<float> logits = {0.0f, -1.0f, -2.0f, -3.0f};
  SamplingParams params;
  params.min_p = 0.3f;  // keeps tokens 0 and 1 only
  std::vector<int> counts(logits.size());
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) ++counts[sampler.Sample(logits, params, &rng)];
  EXPECT_EQ(counts[2] + counts[3], 0);
  const double p0 = 1.0 / (1.0 + std::exp(-1.0));
  EXPECT_NEAR(counts[0] / double{draws}, p0, 3 * std::sqrt(p0 * (1 - p0) / draws));
  // Temperature applies first: at T = 2 the ratios are exp(-0.5), exp(-1), exp(-1.5) and
  // min_p 0.3 keeps tokens 0, 1 and 2.
  params.temperature = 2.0f;
  std::fill(counts.begin(), counts.end(), 0);
  for (int i = 0; i < draws; ++i) ++counts[sampler.Sample(logits, params, &rng)];
  EXPECT_EQ(counts[3], 0);
  EXPECT_GT(counts[2], 0);
  params.min_p = 1.0f;  // only the most likely token
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.Sample(logits, params, &rng), 0);
}

TEST(SamplerTest, LogprobsAreTheRawLogSoftmaxByDefault) {
  Sampler sampler;
  std::mt19937_64 rng(1);
  SamplingParams params = Greedy([](SamplingParams& p) {
    p.logprobs = true;
    p.top_logprobs = 3;
    p.logit_bias = {{1, -100.0f}, {3, -100.0f}};
    p.temperature = 0.0f;
  });
  TokenLogprob lp;
  const int32_t token = sampler.Sample(kLogits, params, &rng, nullptr, &lp);
  EXPECT_EQ(token, 2) << "bias applies to the choice";
  double total = 0.0;
  for (float x : kLogits) total += std::exp(x);
  const double log_z = std::log(total);
  EXPECT_EQ(lp.token, 2);
  EXPECT_NEAR(lp.logprob, 2.0 - log_z, 1e-6) << "but not to the raw logprobs (vLLM v1)";
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].token, 1) << "equal logits: the lower id first";
  EXPECT_EQ(lp.top[1].token, 3);
  EXPECT_EQ(lp.top[2].token, 2);
  EXPECT_NEAR(lp.top[0].logprob, 3.0 - log_z, 1e-6);
  EXPECT_NEAR(lp.top[2].logprob, 2.0 - log_z, 1e-6);

  params.logprobs_mode = LogprobsMode::kPenalized;
  sampler.Sample(kLogits, params, &rng, nullptr, &lp);
  double penalized_total = 0.0;
  for (float x : {1.0f, -97.0f, 2.0f, -97.0f, -1.0f}) penalized_total += std::exp(x);
  EXPECT_NEAR(lp.logprob, 2.0 - std::log(penalized_total), 1e-6);
  EXPECT_EQ(lp.top[0].token, 2);
  EXPECT_EQ(lp.top[1].token, 0);
  EXPECT_EQ(lp.top[2].token, 4);
}

TEST(SamplerTest, LogprobsIgnoreTemperatureAndFiltering) {
  Sampler sampler;
  std::mt19937_64 rng(5);
  SamplingParams params;
  params.temperature = 0.5f;
  params.top_k = 2;
  params.logprobs = true;
  params.top_logprobs = 5;
  double total = 0.0;
  for (float x : kLogits) total += std::exp(x);
  for (int i = 0; i < 50; ++i) {
    TokenLogprob lp;
    const int32_t token = sampler.Sample(kLogits, params, &rng, nullptr, &lp);
    EXPECT_EQ(lp.token, token);
    EXPECT_NEAR(lp.logprob, kLogits[token] - std::log(total), 1e-6);
    ASSERT_EQ(lp.top.size(), 5u) << "all five, though top-k kept two";
    EXPECT_NEAR(lp.top[4].logprob, -1.0 - std::log(total), 1e-6);
  }
  params.top_logprobs = 0;
  TokenLogprob lp;
  sampler.Sample(kLogits, params, &rng, nullptr, &lp);
  EXPECT_TRUE(lp.top.empty());
}

TEST(SamplerTest, TopLogprobsOnALargeVocabulary) {
  // 49152 entries as SmolLM2's vocabulary, random: the top 20 are the 20 largest.
  std::mt19937_64 gen(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(49152);
  for (float& x : logits) x = normal(gen);
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  Sampler sampler;
  std::mt19937_64 rng(1);
  SamplingParams params;
  params.temperature = 0.0f;
  params.logprobs = true;
  params.top_logprobs = kMaxTopLogprobs;
  TokenLogprob lp;
  EXPECT_EQ(sampler.Sample(logits, params, &rng, nullptr, &lp), order[0]);
  ASSERT_EQ(lp.top.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(lp.top[i].token, order[i]) << i;
  EXPECT_EQ(lp.logprob, lp.top[0].logprob);
  double total = 0.0;
  for (float x : logits) total += std::exp(static_cast<double>(x));
  EXPECT_NEAR(lp.logprob, logits[order[0]] - std::log(total), 1e-5);
}

TEST(SamplerTest, SeededSamplingWithPenaltiesIsReproducible) {
  SamplingParams params;
  params.presence_penalty = 0.7f;
  params.frequency_penalty = 0.3f;
  params.repetition_penalty = 1.3f;
  params.top_p = 0.9f;
  auto run = [&](uint64_t seed) {
    Sampler sampler;
    std::mt19937_64 rng(seed);
    const std::vector<int32_t> prompt = {0, 1};
    PenaltyHistory history(params, prompt);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      out.push_back(sampler.Sample(kLogits, params, &rng, &history));
      history.AddGenerated(out.back());
    }
    return out;
  };
  EXPECT_EQ(run(9), run(9));
  EXPECT_NE(run(9), run(10));
}

TEST(SamplingParamsTest, Validate) {
  SamplingParams ok;
  EXPECT_TRUE(ok.Validate().ok());
  SamplingParams bad = ok;
  bad.temperature = -0.5f;
  EXPECT_FALSE(bad.Validate().ok());
  bad = ok;
  bad.top_p = 0.0f;
  EXPECT_FALSE(bad.Validate().ok());
  bad = ok;
  bad.max_tokens = 0;
  EXPECT_FALSE(bad.Validate().ok());
  bad = ok;
  bad.temperature = NAN;
  EXPECT_FALSE(bad.Validate().ok());
  const auto invalid = [&](auto edit) {
    SamplingParams p = ok;
    edit(p);
    return !p.Validate().ok();
  };
  EXPECT_TRUE(invalid([](SamplingParams& p) { p.min_p = 1.5f; }));
  EXPECT_TRUE(invalid([](SamplingParams& p) { p.min_p = -0.1f; }));
  EXPECT_TRUE(invalid([](SamplingParams& p) { p.presence_penalty = 2.5f; }));
  EXPECT_TRUE(invalid([](SamplingParams& p) { p.frequency_penalty = -2.5f; }));
  EXPECT_TRUE(invalid([](SamplingParams& p) { p.repetition_penalty = 0.0f; }));
  EXPECT_TRUE(invalid([](SamplingParams& p) { p.logit_bias = {{5, 101.0f}}; }));
  EXPECT_TRUE(invalid([](SamplingParams& p) { p.stop = {"a", ""}; }));
  EXPECT_TRUE(invalid([](SamplingParams& p) { p.top_logprobs = 2; }));  // logprobs off
  EXPECT_TRUE(invalid([](SamplingParams& p) {
    p.logprobs = true;
    p.top_logprobs = 21;
  }));
  EXPECT_FALSE(invalid([](SamplingParams& p) {
    p.min_p = 1.0f;
    p.presence_penalty = -2.0f;
    p.frequency_penalty = 2.0f;
    p.repetition_penalty = 1.2f;
    p.logit_bias = {{5, -100.0f}};
    p.stop = {"a", "b"};
    p.logprobs = true;
    p.top_logprobs = 20;
  }));
}

}  // namespace
}  // namespace moeserve
