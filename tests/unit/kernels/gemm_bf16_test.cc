// GemmBf16 against a float64 reference on the widened weights, on random data with outputs
// poisoned before each run, for every kernel this CPU can run (the portable and OpenBLAS
// ones always, plus what kAuto picks), at shapes that hit every tail: k not a multiple of 4/8/16, n
// not a multiple of the row blocks, n = 1, every m from 1 to 33 (all tile-row remainders) and m
// past the OpenBLAS threshold and the x panel of the SIMD kernels.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/dtype.h"
#include "gtest/gtest.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_bf16.h"

namespace moeserve::cpu {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<uint16_t> RandomBf16(size_t n, uint32_t seed) {
  std::vector<uint16_t> v(n);
  const std::vector<float> f = Random(n, seed);
  for (size_t i = 0; i < n; ++i) v[i] = F32ToBF16(f[i]);
  return v;
}

// ref[m, n] = x[m, k] · widen(w)[n, k]ᵀ in float64.
std::vector<double> Reference(const std::vector<float>& x, const std::vector<uint16_t>& w,
                              int64_t m, int64_t n, int64_t k) {
  std::vector<double> ref(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p) acc += double{x[i * k + p]} * BF16ToF32(w[j * k + p]);
      ref[i * n + j] = acc;
    }
  }
  return ref;
}

// max |a - b| / max(1, max |b|); NaN anywhere is infinitely wrong.
double NormalizedError(const std::vector<float>& a, const std::vector<double>& b) {
  double err = 0.0, scale = 1.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    err = std::max(err, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return err / scale;
}

std::vector<Bf16GemmKernel> RunnableKernels() {
  std::vector<Bf16GemmKernel> kernels;
  for (Bf16GemmKernel kernel :
       {Bf16GemmKernel::kAuto, Bf16GemmKernel::kAvx512, Bf16GemmKernel::kAvx2,
        Bf16GemmKernel::kPortable, Bf16GemmKernel::kWidenBlas}) {
    if (Bf16GemmKernelSupported(kernel)) kernels.push_back(kernel);
  }
  return kernels;
}

// f32 sums over k ≤ 600 of unit-normal products: errors near 1e-6 of the output scale.
constexpr double kTolerance = 2e-5;

class GemmBf16Test : public ::testing::TestWithParam<Bf16GemmKernel> {};

TEST_P(GemmBf16Test, MatchesFloat64ReferenceAtOddShapes) {
  const Bf16GemmKernel kernel = GetParam();
  ThreadPool pool(3);
  std::vector<std::tuple<int64_t, int64_t, int64_t>> shapes;  // m, n, k
  for (int64_t m = 1; m <= 33; ++m) shapes.emplace_back(m, 37, 45);
  for (auto [n, k] :
       {std::pair<int64_t, int64_t>{1, 77}, {3, 5}, {16, 16}, {17, 33}, {200, 577}, {129, 96}}) {
    for (int64_t m : {1, 2, 3, 4, 5, 8, 13, 32, 70}) shapes.emplace_back(m, n, k);
  }
  shapes.emplace_back(150, 40, 1100);  // x spans three L2 panels of the SIMD kernels
  for (auto [m, n, k] : shapes) {
    const std::vector<float> x = Random(m * k, 1);
    const std::vector<uint16_t> w = RandomBf16(n * k, 2);
    const std::vector<double> ref = Reference(x, w, m, n, k);
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      std::vector<float> y(m * n, std::numeric_limits<float>::quiet_NaN());
      GemmBf16(x.data(), w.data(), y.data(), m, n, k, 0.0f, p, kernel);
      ASSERT_LT(NormalizedError(y, ref), kTolerance)
          << m << "x" << n << "x" << k << (p ? " pool" : "");
      // beta = 1 adds onto what is there.
      GemmBf16(x.data(), w.data(), y.data(), m, n, k, 1.0f, p, kernel);
      std::vector<double> twice = ref;
      for (double& r : twice) r *= 2.0;
      ASSERT_LT(NormalizedError(y, twice), kTolerance)
          << m << "x" << n << "x" << k << (p ? " pool" : "") << " beta=1";
    }
  }
}

// Same numbers as the f32 Gemm on the widened weights, to f32 rounding (the claim the
// header makes), at a SmolLM2 shape large enough for the pool to split it.
TEST_P(GemmBf16Test, AgreesWithF32GemmOnWidenedWeights) {
  const Bf16GemmKernel kernel = GetParam();
  UseSingleThreadedBlas();
  ThreadPool pool(2);
  const int64_t n = 960, k = 576;
  const std::vector<uint16_t> w = RandomBf16(n * k, 4);
  std::vector<float> wide(n * k);
  for (int64_t i = 0; i < n * k; ++i) wide[i] = BF16ToF32(w[i]);
  for (int64_t m : {1, 7, 32, 100}) {
    const std::vector<float> x = Random(m * k, 3);
    std::vector<float> y(m * n, std::numeric_limits<float>::quiet_NaN()), expected(m * n);
    GemmBf16(x.data(), w.data(), y.data(), m, n, k, 0.0f, &pool, kernel);
    Gemm(x.data(), wide.data(), expected.data(), m, n, k, 0.0f, &pool);
    const std::vector<double> e(expected.begin(), expected.end());
    EXPECT_LT(NormalizedError(y, e), kTolerance) << "m=" << m;
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, GemmBf16Test, ::testing::ValuesIn(RunnableKernels()),
                         [](const ::testing::TestParamInfo<Bf16GemmKernel>& info) {
                           std::string name = Bf16GemmKernelName(info.param);
                           std::replace(name.begin(), name.end(), '+', '_');
                           return name;
                         });

TEST(GemmBf16KernelTest, AutoChoosesARunnableKernel) {
  for (int64_t m : {1, 8, 32, 64, 256, 4096}) {
    const Bf16GemmKernel chosen = ChooseBf16GemmKernel(m);
    EXPECT_NE(chosen, Bf16GemmKernel::kAuto) << m;
    EXPECT_TRUE(Bf16GemmKernelSupported(chosen)) << m;
  }
  EXPECT_TRUE(Bf16GemmKernelSupported(Bf16GemmKernel::kPortable));
  EXPECT_TRUE(Bf16GemmKernelSupported(Bf16GemmKernel::kWidenBlas));
}

}  // namespace
}  // namespace moeserve::cpu
