#include "engine/sampler.h"

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
}

}  // namespace
}  // namespace moeserve
