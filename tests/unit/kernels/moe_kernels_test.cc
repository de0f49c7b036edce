// The CPU MoE ops against direct, per-token computations of the same math.
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/moe.h"

namespace moeserve::cpu {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::FloatNear;
using ::testing::Pointwise;

std::vector<float> Random(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(RouteTopKTest, SoftmaxTopKRenormalised) {
  const float logits[] = {1.0f, 3.0f, 2.0f, 0.0f};
  int32_t ids[2];
  float weights[2];
  RouteTopK(logits, 1, {RouterMathKind::kSoftmaxTopK, 4, 2, true}, ids, weights);
  EXPECT_THAT(ids, ElementsAre(1, 2));
  // Renormalised over the two: softmax of (3, 2).
  const float e = std::exp(-1.0f);
  EXPECT_THAT(weights,
              ElementsAre(FloatNear(1.0f / (1.0f + e), 1e-6f), FloatNear(e / (1.0f + e), 1e-6f)));
}

TEST(RouteTopKTest, SoftmaxTopKWithoutRenormalisingKeepsFullSoftmaxProbabilities) {
  const float logits[] = {1.0f, 3.0f, 2.0f, 0.0f};
  int32_t ids[2];
  float weights[2];
  RouteTopK(logits, 1, {RouterMathKind::kSoftmaxTopK, 4, 2, false}, ids, weights);
  const float z = std::exp(1.0f) + std::exp(3.0f) + std::exp(2.0f) + 1.0f;
  EXPECT_THAT(ids, ElementsAre(1, 2));
  EXPECT_THAT(weights, ElementsAre(FloatNear(std::exp(3.0f) / z, 1e-6f),
                                   FloatNear(std::exp(2.0f) / z, 1e-6f)));
}

TEST(RouteTopKTest, LlamaMoeVariantsUseTheTopKLogits) {
  const float logits[] = {0.5f, -1.0f, 2.0f, 1.5f};
  int32_t ids[2];
  float weights[2];
  RouteTopK(logits, 1, {RouterMathKind::kTopKSoftmax, 4, 2, false}, ids, weights);
  EXPECT_THAT(ids, ElementsAre(2, 3));
  const float e = std::exp(-0.5f);
  EXPECT_THAT(weights,
              ElementsAre(FloatNear(1.0f / (1.0f + e), 1e-6f), FloatNear(e / (1.0f + e), 1e-6f)));
  RouteTopK(logits, 1, {RouterMathKind::kTopKLogits, 4, 2, false}, ids, weights);
  EXPECT_THAT(ids, ElementsAre(2, 3));
  EXPECT_THAT(weights, ElementsAre(2.0f, 1.5f));
}

TEST(RouteTopKTest, TiesGoToTheLowerExpertAndRowsAreIndependent) {
  const float logits[] = {0.0f, 0.0f, 0.0f, 0.0f,  // all tied
                          4.0f, 1.0f, 4.0f, 9.0f};
  int32_t ids[4];
  float weights[4];
  RouteTopK(logits, 2, {RouterMathKind::kSoftmaxTopK, 4, 2, true}, ids, weights);
  EXPECT_THAT(ids, ElementsAre(0, 1, 3, 0));
  EXPECT_THAT(weights[0], FloatNear(0.5f, 1e-7f));
  EXPECT_THAT(weights[1], FloatNear(0.5f, 1e-7f));
}

TEST(GroupByExpertTest, StableCountingSortWithEmptyExperts) {
  // Three tokens, k = 2: pairs (t, j) at t * 2 + j.
  const int32_t ids[] = {3, 0, 0, 3, 3, 1};
  int32_t offsets[6];
  int32_t pair_rows[6];
  int32_t row_pairs[6];
  GroupByExpert(ids, 6, 5, offsets, pair_rows, row_pairs);
  EXPECT_THAT(offsets, ElementsAre(0, 2, 3, 3, 6, 6));  // experts 2 and 4 get nothing
  // Expert 0: pairs 1, 2; expert 1: pair 5; expert 3: pairs 0, 3, 4 - in pair order.
  EXPECT_THAT(row_pairs, ElementsAre(1, 2, 5, 0, 3, 4));
  for (int32_t p = 0; p < 6; ++p) EXPECT_EQ(row_pairs[pair_rows[p]], p);
}

TEST(GroupByExpertTest, OneExpertTakesEveryPair) {
  const std::vector<int32_t> ids(7, 2);
  std::vector<int32_t> offsets(5), pair_rows(7);
  GroupByExpert(ids.data(), 7, 4, offsets.data(), pair_rows.data(), nullptr);
  EXPECT_THAT(offsets, ElementsAre(0, 0, 0, 7, 7));
  std::vector<int32_t> identity(7);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_THAT(pair_rows, ElementsAreArray(identity));
}

// The grouped GEMMs and unpermute, checked token by token against each expert's MLP.
TEST(MoeMlpTest, GroupedPathEqualsPerTokenExpertMlps) {
  const int32_t experts = 5, k = 2;
  const int64_t n = 9, dim = 24, inter = 20;
  const std::vector<float> x = Random(n * dim, 1);
  const std::vector<float> w_gate_up = Random(experts * 2 * inter * dim, 2, 0.2f);
  const std::vector<float> w_down = Random(experts * dim * inter, 3, 0.2f);
  std::vector<float> logits = Random(n * experts, 4, 2.0f);
  for (int64_t t = 0; t < n; ++t) logits[t * experts + 4] = -100.0f;  // expert 4 unused

  std::vector<int32_t> ids(n * k);
  std::vector<float> weights(n * k);
  RouteTopK(logits.data(), n, {RouterMathKind::kSoftmaxTopK, experts, k, true}, ids.data(),
            weights.data());
  std::vector<int32_t> offsets(experts + 1), pair_rows(n * k), row_pairs(n * k);
  GroupByExpert(ids.data(), n * k, experts, offsets.data(), pair_rows.data(), row_pairs.data());
  ASSERT_EQ(offsets[4], offsets[5]);
  std::vector<float> permuted(n * k * dim);
  for (int64_t r = 0; r < n * k; ++r) {
    std::copy_n(x.begin() + (row_pairs[r] / k) * dim, dim, permuted.begin() + r * dim);
  }
  std::vector<float> scratch(n * k * 2 * inter), act(n * k * inter), y(n * k * dim);
  GroupedGateUpSilu(permuted.data(), w_gate_up.data(), offsets.data(), experts, dim, inter,
                    scratch.data(), act.data(), nullptr);
  GroupedLinear(act.data(), w_down.data(), offsets.data(), experts, inter, dim, y.data(), nullptr);
  std::vector<float> out(n * dim, 7.0f);  // overwritten: accumulate is false
  MoeUnpermute(y.data(), pair_rows.data(), weights.data(), n, k, dim, 1.5f, false, out.data());

  std::vector<float> expected(n * dim, 0.0f);
  for (int64_t t = 0; t < n; ++t) {
    for (int32_t j = 0; j < k; ++j) {
      const int32_t e = ids[t * k + j];
      const float* gu = w_gate_up.data() + e * 2 * inter * dim;
      std::vector<float> h(2 * inter), a(inter);
      for (int64_t o = 0; o < 2 * inter; ++o) {
        double acc = 0.0;
        for (int64_t i = 0; i < dim; ++i) acc += double{x[t * dim + i]} * gu[o * dim + i];
        h[o] = static_cast<float>(acc);
      }
      SiluAndMul(h.data(), 1, inter, a.data());
      for (int64_t o = 0; o < dim; ++o) {
        double acc = 0.0;
        for (int64_t i = 0; i < inter; ++i) {
          acc += double{a[i]} * w_down[(e * dim + o) * inter + i];
        }
        expected[t * dim + o] += 1.5f * weights[t * k + j] * static_cast<float>(acc);
      }
    }
  }
  EXPECT_THAT(out, Pointwise(FloatNear(2e-5f), expected));

  // Accumulating adds onto what is there; null weights mean weight 1.
  std::vector<float> acc(n * dim, 1.0f);
  MoeUnpermute(y.data(), pair_rows.data(), nullptr, n, k, dim, 1.0f, true, acc.data());
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t o = 0; o < dim; ++o) {
      // Added one pair at a time, in order.
      const float expect =
          (1.0f + y[pair_rows[t * k] * dim + o]) + y[pair_rows[t * k + 1] * dim + o];
      EXPECT_EQ(acc[t * dim + o], expect);
    }
  }
}

}  // namespace
}  // namespace moeserve::cpu
