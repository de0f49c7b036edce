// RopeInvFrequencies with linear and llama3 scaling against the tables transformers 5.23
// computes (ROPE_INIT_FUNCTIONS["linear"/"llama3"] on CPU, printed to 9 significant
// digits). Tolerance: 2 ulp relative (torch and libm may round pow differently); the
// band structure of llama3 (high frequencies untouched, low ones divided exactly by the
// factor) is checked exactly against the unscaled table.
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/rope.h"

namespace moeserve::cpu {
namespace {

constexpr float kRelTol = 2.5e-7f;

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], std::fabs(want[i]) * kRelTol) << "i = " << i;
  }
}

// Llama 3.1: theta 500000, head_dim 64, factor 8, low 1, high 4, original context 8192.
TEST(RopeScalingTest, Llama3MatchesTransformers) {
  const std::vector<float> want = {
      1.000000000e+00f, 6.636012793e-01f, 4.403666258e-01f, 2.922278345e-01f, 1.939227581e-01f,
      1.286873817e-01f, 8.539710194e-02f, 5.666961893e-02f, 3.760603070e-02f, 2.495540865e-02f,
      1.656044088e-02f, 1.098952908e-02f, 7.292665076e-03f, 4.839421250e-03f, 3.211446106e-03f,
      1.371893683e-03f, 5.248460220e-04f, 1.785077911e-04f, 7.784655463e-05f, 5.165906987e-05f,
      3.428102355e-05f, 2.274892904e-05f, 1.509621779e-05f, 1.001786859e-05f, 6.647869668e-06f,
      4.411534519e-06f, 2.927499736e-06f, 1.942692506e-06f, 1.289173156e-06f, 8.554969213e-07f,
      5.677088097e-07f, 3.767322596e-07f};
  RopeScaling scaling;
  scaling.kind = RopeScalingKind::kLlama3;
  scaling.factor = 8.0f;
  scaling.low_freq_factor = 1.0f;
  scaling.high_freq_factor = 4.0f;
  scaling.original_max_position_embeddings = 8192;
  ExpectNear(RopeInvFrequencies(500000.0f, 64, scaling), want);
}

TEST(RopeScalingTest, Llama3KeepsHighAndDividesLowFrequencies) {
  RopeScaling scaling;
  scaling.kind = RopeScalingKind::kLlama3;
  scaling.factor = 8.0f;
  scaling.low_freq_factor = 1.0f;
  scaling.high_freq_factor = 4.0f;
  scaling.original_max_position_embeddings = 8192;
  const std::vector<float> base = RopeInvFrequencies(500000.0f, 128);
  const std::vector<float> scaled = RopeInvFrequencies(500000.0f, 128, scaling);
  ASSERT_EQ(scaled.size(), base.size());
  int high = 0, low = 0, medium = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    const float wavelen = static_cast<float>(2.0 * M_PI) / base[i];
    if (wavelen < 8192.0f / 4.0f) {
      EXPECT_EQ(scaled[i], base[i]) << i;
      ++high;
    } else if (wavelen > 8192.0f) {
      EXPECT_EQ(scaled[i], base[i] / 8.0f) << i;
      ++low;
    } else {
      EXPECT_LT(scaled[i], base[i]) << i;
      EXPECT_GT(scaled[i], base[i] / 8.0f) << i;
      ++medium;
    }
  }
  EXPECT_GT(high, 0);
  EXPECT_GT(low, 0);
  EXPECT_GT(medium, 0);
}

TEST(RopeScalingTest, LinearMatchesTransformers) {
  const std::vector<float> want = {
      2.500000000e-01f, 1.874735504e-01f, 1.405853331e-01f, 1.054241285e-01f, 7.905694097e-02f,
      5.928434059e-02f, 4.445698485e-02f, 3.333803639e-02f, 2.500000037e-02f, 1.874735393e-02f,
      1.405853219e-02f, 1.054241229e-02f, 7.905694656e-03f, 5.928433966e-03f, 4.445698578e-03f,
      3.333803732e-03f, 2.499999944e-03f, 1.874735579e-03f, 1.405853312e-03f, 1.054241206e-03f,
      7.905694656e-04f, 5.928434548e-04f, 4.445698578e-04f, 3.333803616e-04f, 2.500000119e-04f,
      1.874735462e-04f, 1.405853254e-04f, 1.054241220e-04f, 7.905694656e-05f, 5.928434621e-05f,
      4.445698505e-05f, 3.333803761e-05f};
  RopeScaling scaling;
  scaling.kind = RopeScalingKind::kLinear;
  scaling.factor = 4.0f;
  ExpectNear(RopeInvFrequencies(10000.0f, 64, scaling), want);
}

TEST(RopeScalingTest, NoneIsTheUnscaledTable) {
  EXPECT_EQ(RopeInvFrequencies(10000.0f, 64, RopeScaling{}), RopeInvFrequencies(10000.0f, 64));
}

}  // namespace
}  // namespace moeserve::cpu
