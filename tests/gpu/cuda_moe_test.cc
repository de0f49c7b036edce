// The CUDA MoE path against the CPU backend: routing with every RouterMath, the permute,
// the grouped GEMMs (one launch over all experts: an expert with no rows, one expert with
// every row, a single decode row, sizes off the tile grid, the unaligned-k path) and the
// weighted unpermute, then the whole chain.
#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/absl_strings.h"
#include "gtest/gtest.h"
#include "tests/gpu/gpu_test_util.h"

namespace moeserve::gputest {
namespace {

using CudaMoeTest = GpuTest;

// Distinct experts per token drawn at random, except forced patterns.
std::vector<int32_t> RandomTopK(int64_t n, int32_t k, int32_t experts, uint32_t seed,
                                int32_t avoid = -1) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n * k);
  std::vector<int32_t> all(experts);
  std::iota(all.begin(), all.end(), 0);
  if (avoid >= 0) all.erase(all.begin() + avoid);
  for (int64_t t = 0; t < n; ++t) {
    std::shuffle(all.begin(), all.end(), rng);
    for (int32_t j = 0; j < k; ++j) ids[t * k + j] = all[j];
  }
  return ids;
}

std::vector<int32_t> OffsetsFromCounts(const std::vector<int32_t>& counts) {
  std::vector<int32_t> offsets(counts.size() + 1, 0);
  for (size_t e = 0; e < counts.size(); ++e) offsets[e + 1] = offsets[e] + counts[e];
  return offsets;
}

TEST_F(CudaMoeTest, RouteMatchesCpuForEveryRouterMath) {
  struct Case {
    int64_t n;
    int32_t experts, k;
    RouterMath math;
    bool renormalize;
  };
  for (const Case& c : {Case{1, 8, 2, RouterMath::kSoftmaxTopK, true},
                        Case{333, 8, 2, RouterMath::kSoftmaxTopK, true},
                        Case{64, 60, 4, RouterMath::kSoftmaxTopK, false},
                        Case{77, 64, 8, RouterMath::kSoftmaxTopK, true},
                        Case{50, 16, 4, RouterMath::kTopKSoftmax, false},
                        Case{50, 8, 2, RouterMath::kTopKLogits, false},
                        Case{9, 4, 4, RouterMath::kSoftmaxTopK, true}}) {
    std::mt19937 rng(static_cast<uint32_t>(c.n * 31 + c.experts));
    std::normal_distribution<float> dist(0.0f, 2.0f);
    std::vector<float> logits(c.n * c.experts);
    for (float& l : logits) l = dist(rng);
    // A tie: the lower index must win on both backends.
    logits[1] = logits[0] = 9.0f;
    std::vector<int32_t> want_ids(c.n * c.k);
    std::vector<float> want_w(c.n * c.k);
    const RouterParams params{c.math, c.k, c.renormalize};
    cpu().Route(Host(logits, {c.n, c.experts}), params, HostI32(want_ids, {c.n, c.k}),
                Host(want_w, {c.n, c.k}));
    DeviceTensor d_logits = Upload(logits, DType::kF32, {c.n, c.experts});
    DeviceTensor d_ids = Poisoned(DType::kI32, {c.n, c.k});
    DeviceTensor d_w = Poisoned(DType::kF32, {c.n, c.k});
    gpu().Route(d_logits.t, params, d_ids.t, d_w.t);
    const std::string shape = Cat("n", c.n, " E", c.experts, " k", c.k, " math",
                                  static_cast<int>(c.math), c.renormalize ? " renorm" : "");
    EXPECT_EQ(DownloadI32(gpu(), d_ids.t), want_ids) << shape;
    EXPECT_LE(Report("Route.weights", shape, NormalisedError(Download(gpu(), d_w.t), want_w)),
              1e-6);
  }
}

TEST_F(CudaMoeTest, PermuteGroupsStablyLikeCpu) {
  struct Case {
    std::string name;
    int64_t n;
    int32_t k, experts;
    std::vector<int32_t> ids;
  };
  std::vector<int32_t> all_to_one(500, 3);
  std::vector<Case> cases = {
      {"random, expert 2 empty", 300, 2, 8, RandomTopK(300, 2, 8, 21, /*avoid=*/2)},
      {"every token to expert 3", 500, 1, 8, all_to_one},
      {"decode n=1", 1, 2, 8, {6, 1}},
      {"large, 60 experts", 2500, 4, 60, RandomTopK(2500, 4, 60, 22)},
  };
  for (Case& c : cases) {
    const int64_t dim = 72, pairs = c.n * c.k;
    std::vector<float> x = RandomBf16(c.n * dim, 23);
    std::vector<int32_t> want_offsets(c.experts + 1), want_rows(pairs);
    std::vector<float> want_perm(pairs * dim);
    cpu().MoePermute(Host(x, {c.n, dim}), HostI32(c.ids, {c.n, c.k}),
                     HostI32(want_offsets, {c.experts + 1}), HostI32(want_rows, {pairs}),
                     Host(want_perm, {pairs, dim}));
    DeviceTensor d_x = Upload(x, DType::kBF16, {c.n, dim});
    DeviceTensor d_ids = UploadI32(c.ids, {c.n, c.k});
    DeviceTensor d_off = Poisoned(DType::kI32, {c.experts + 1});
    DeviceTensor d_rows = Poisoned(DType::kI32, {pairs});
    DeviceTensor d_perm = Poisoned(DType::kBF16, {pairs, dim});
    gpu().MoePermute(d_x.t, d_ids.t, d_off.t, d_rows.t, d_perm.t);
    EXPECT_EQ(DownloadI32(gpu(), d_off.t), want_offsets) << c.name;
    EXPECT_EQ(DownloadI32(gpu(), d_rows.t), want_rows) << c.name;
    EXPECT_EQ(Report("MoePermute", c.name, NormalisedError(Download(gpu(), d_perm.t), want_perm)),
              0.0);
  }
}

struct GemmCase {
  std::string name;
  std::vector<int32_t> counts;  // rows per expert
  int64_t dim;                  // k of the GEMM
  int64_t inter;                // n of the GEMM (per half for gate|up)
};

std::vector<GemmCase> GemmCases() {
  return {
      {"random, expert 2 empty", {37, 50, 0, 64, 1, 90, 13, 45}, 136, 100},
      {"one expert takes all", {0, 0, 0, 0, 0, 300, 0, 0}, 64, 64},
      {"decode row", {0, 1, 0, 0}, 576, 1536},
      {"unaligned k", {5, 0, 70, 3}, 36, 24},
      {"odd everything", {65, 63, 1, 129}, 200, 77},
      {"wide", {130, 70, 200, 112}, 1024, 1376},
  };
}

TEST_F(CudaMoeTest, GroupedGateUpSiluMatchesCpu) {
  uint32_t seed = 30;
  for (const GemmCase& c : GemmCases()) {
    for (DType out_type : {DType::kBF16, DType::kF32}) {
      const int32_t experts = static_cast<int32_t>(c.counts.size());
      std::vector<int32_t> offsets = OffsetsFromCounts(c.counts);
      const int64_t rows = offsets.back();
      std::vector<float> x = RandomBf16(rows * c.dim, ++seed);
      std::vector<float> w = RandomBf16(experts * 2 * c.inter * c.dim, ++seed,
                                        1.0f / std::sqrt(static_cast<float>(c.dim)));
      std::vector<float> want(rows * c.inter);
      cpu().GroupedGateUpSilu(Host(x, {rows, c.dim}), Host(w, {experts, 2 * c.inter, c.dim}),
                              HostI32(offsets, {experts + 1}), Host(want, {rows, c.inter}));
      DeviceTensor d_x = Upload(x, DType::kBF16, {rows, c.dim});
      DeviceTensor d_w = Upload(w, DType::kBF16, {experts, 2 * c.inter, c.dim});
      DeviceTensor d_off = UploadI32(offsets, {experts + 1});
      DeviceTensor d_act = Poisoned(out_type, {rows, c.inter});
      gpu().GroupedGateUpSilu(d_x.t, d_w.t, d_off.t, d_act.t);
      const std::string shape =
          Cat(c.name, " rows", rows, " k", c.dim, " n", c.inter, " ", DTypeName(out_type));
      const double tol = out_type == DType::kF32 ? 1e-4 : kBf16Tol;
      EXPECT_LE(Report("GroupedGateUpSilu", shape, NormalisedError(Download(gpu(), d_act.t), want)),
                tol);
    }
  }
}

TEST_F(CudaMoeTest, GroupedLinearMatchesCpu) {
  uint32_t seed = 60;
  for (const GemmCase& c : GemmCases()) {
    for (DType out_type : {DType::kBF16, DType::kF32}) {
      // The down projection's shape: k = inter, n = dim.
      const int64_t k_dim = c.inter, n_dim = c.dim;
      const int32_t experts = static_cast<int32_t>(c.counts.size());
      std::vector<int32_t> offsets = OffsetsFromCounts(c.counts);
      const int64_t rows = offsets.back();
      std::vector<float> x = RandomBf16(rows * k_dim, ++seed);
      std::vector<float> w =
          RandomBf16(experts * n_dim * k_dim, ++seed, 1.0f / std::sqrt(static_cast<float>(k_dim)));
      std::vector<float> want(rows * n_dim);
      cpu().GroupedLinear(Host(x, {rows, k_dim}), Host(w, {experts, n_dim, k_dim}),
                          HostI32(offsets, {experts + 1}), Host(want, {rows, n_dim}));
      DeviceTensor d_x = Upload(x, DType::kBF16, {rows, k_dim});
      DeviceTensor d_w = Upload(w, DType::kBF16, {experts, n_dim, k_dim});
      DeviceTensor d_off = UploadI32(offsets, {experts + 1});
      DeviceTensor d_y = Poisoned(out_type, {rows, n_dim});
      gpu().GroupedLinear(d_x.t, d_w.t, d_off.t, d_y.t);
      const std::string shape =
          Cat(c.name, " rows", rows, " k", k_dim, " n", n_dim, " ", DTypeName(out_type));
      const double tol = out_type == DType::kF32 ? 1e-4 : kBf16Tol;
      EXPECT_LE(Report("GroupedLinear", shape, NormalisedError(Download(gpu(), d_y.t), want)), tol);
    }
  }
}

TEST_F(CudaMoeTest, UnpermuteWeightedSumMatchesCpu) {
  for (bool accumulate : {false, true}) {
    for (const auto& [n, k] : {std::pair<int64_t, int32_t>{1, 2}, {57, 2}, {20, 8}}) {
      const int64_t dim = 100, pairs = n * k;
      std::vector<int32_t> pair_rows(pairs);
      std::iota(pair_rows.begin(), pair_rows.end(), 0);
      std::shuffle(pair_rows.begin(), pair_rows.end(), std::mt19937(static_cast<uint32_t>(n)));
      std::vector<float> y = RandomBf16(pairs * dim, 40), weights = RandomBf16(pairs, 41, 0.5f);
      std::vector<float> out0 = RandomBf16(n * dim, 42);
      std::vector<float> want = out0;
      cpu().MoeUnpermute(Host(y, {pairs, dim}), HostI32(pair_rows, {pairs}), Host(weights, {n, k}),
                         2.5f, Host(want, {n, dim}), accumulate);
      DeviceTensor d_y = Upload(y, DType::kBF16, {pairs, dim});
      DeviceTensor d_rows = UploadI32(pair_rows, {pairs});
      DeviceTensor d_w = Upload(weights, DType::kF32, {n, k});
      DeviceTensor d_out =
          accumulate ? Upload(out0, DType::kBF16, {n, dim}) : Poisoned(DType::kBF16, {n, dim});
      gpu().MoeUnpermute(d_y.t, d_rows.t, d_w.t, 2.5f, d_out.t, accumulate);
      const std::string shape = Cat("n", n, " k", k, " dim", dim, accumulate ? " accumulate" : "");
      EXPECT_LE(Report("MoeUnpermute", shape, NormalisedError(Download(gpu(), d_out.t), want)),
                kBf16Tol);
    }
  }
}

// Route -> permute -> gate|up -> down -> unpermute, as moe_layer runs it.
TEST_F(CudaMoeTest, WholeMoeLayerMatchesCpu) {
  const int64_t n = 93, hidden = 128, inter = 96;
  const int32_t experts = 8, k = 2;
  std::vector<float> x = RandomBf16(n * hidden, 50);
  std::vector<float> router = RandomBf16(experts * hidden, 51, 0.1f);
  std::vector<float> w_gu = RandomBf16(experts * 2 * inter * hidden, 52, 0.09f);
  std::vector<float> w_down = RandomBf16(experts * hidden * inter, 53, 0.1f);
  const RouterParams params{RouterMath::kSoftmaxTopK, k, true};

  // CPU.
  std::vector<float> logits(n * experts), weights(n * k), perm(n * k * hidden), act(n * k * inter),
      down(n * k * hidden), want(n * hidden);
  std::vector<int32_t> ids(n * k), offsets(experts + 1), pair_rows(n * k);
  cpu().Linear(Host(x, {n, hidden}), Host(router, {experts, hidden}), Host(logits, {n, experts}),
               false);
  cpu().Route(Host(logits, {n, experts}), params, HostI32(ids, {n, k}), Host(weights, {n, k}));
  cpu().MoePermute(Host(x, {n, hidden}), HostI32(ids, {n, k}), HostI32(offsets, {experts + 1}),
                   HostI32(pair_rows, {n * k}), Host(perm, {n * k, hidden}));
  cpu().GroupedGateUpSilu(Host(perm, {n * k, hidden}), Host(w_gu, {experts, 2 * inter, hidden}),
                          HostI32(offsets, {experts + 1}), Host(act, {n * k, inter}));
  cpu().GroupedLinear(Host(act, {n * k, inter}), Host(w_down, {experts, hidden, inter}),
                      HostI32(offsets, {experts + 1}), Host(down, {n * k, hidden}));
  cpu().MoeUnpermute(Host(down, {n * k, hidden}), HostI32(pair_rows, {n * k}),
                     Host(weights, {n, k}), 1.0f, Host(want, {n, hidden}), false);

  // GPU, bf16 activations and weights, f32 router logits.
  DeviceTensor d_x = Upload(x, DType::kBF16, {n, hidden});
  DeviceTensor d_router = Upload(router, DType::kBF16, {experts, hidden});
  DeviceTensor d_gu = Upload(w_gu, DType::kBF16, {experts, 2 * inter, hidden});
  DeviceTensor d_down_w = Upload(w_down, DType::kBF16, {experts, hidden, inter});
  DeviceTensor d_logits = Poisoned(DType::kF32, {n, experts});
  DeviceTensor d_ids = Poisoned(DType::kI32, {n, k});
  DeviceTensor d_weights = Poisoned(DType::kF32, {n, k});
  DeviceTensor d_off = Poisoned(DType::kI32, {experts + 1});
  DeviceTensor d_rows = Poisoned(DType::kI32, {n * k});
  DeviceTensor d_perm = Poisoned(DType::kBF16, {n * k, hidden});
  DeviceTensor d_act = Poisoned(DType::kBF16, {n * k, inter});
  DeviceTensor d_down = Poisoned(DType::kBF16, {n * k, hidden});
  DeviceTensor d_out = Poisoned(DType::kBF16, {n, hidden});
  gpu().Linear(d_x.t, d_router.t, d_logits.t, false);
  gpu().Route(d_logits.t, params, d_ids.t, d_weights.t);
  gpu().MoePermute(d_x.t, d_ids.t, d_off.t, d_rows.t, d_perm.t);
  gpu().GroupedGateUpSilu(d_perm.t, d_gu.t, d_off.t, d_act.t);
  gpu().GroupedLinear(d_act.t, d_down_w.t, d_off.t, d_down.t);
  gpu().MoeUnpermute(d_down.t, d_rows.t, d_weights.t, 1.0f, d_out.t, false);

  // Router logits from cuBLAS may differ in the last bits and flip a near-tie; count them.
  const std::vector<int32_t> got_ids = DownloadI32(gpu(), d_ids.t);
  int mismatched = 0;
  for (size_t i = 0; i < ids.size(); ++i) mismatched += got_ids[i] != ids[i];
  EXPECT_LE(mismatched, 2) << "routing choices differ from the CPU's";
  if (mismatched == 0) {
    EXPECT_EQ(DownloadI32(gpu(), d_off.t), offsets);
    EXPECT_LE(
        Report("MoeLayer", "n93 h128 i96 E8 k2", NormalisedError(Download(gpu(), d_out.t), want)),
        2e-2);
  }
}

}  // namespace
}  // namespace moeserve::gputest
