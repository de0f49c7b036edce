// The CUDA backend's dense ops against the CPU backend on random data at several shapes
// (n = 1 decode rows, odd sizes), outputs poisoned before each run.
#include <string>
#include <vector>

#include "common/absl_strings.h"
#include "gtest/gtest.h"
#include "kernels/cpu/rope.h"
#include "tests/gpu/gpu_test_util.h"

namespace moeserve::gputest {
namespace {

using CudaOpsTest = GpuTest;

std::string Shape(int64_t a, int64_t b, DType type) {
  return Cat("[", a, ", ", b, "] ", DTypeName(type));
}

TEST_F(CudaOpsTest, EmbeddingAndGatherRowsCopyRowsExactly) {
  for (DType out_type : {DType::kBF16, DType::kF32}) {
    for (int64_t n : {1, 37}) {
      const int64_t vocab = 101, hidden = 72;
      std::vector<float> table = RandomBf16(vocab * hidden, 1);
      std::vector<int32_t> ids(n);
      for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 53 + 7) % vocab);
      std::vector<float> want(n * hidden);
      cpu().Embedding(Host(table, {vocab, hidden}), ids, Host(want, {n, hidden}));

      DeviceTensor d_table = Upload(table, DType::kBF16, {vocab, hidden});
      DeviceTensor d_out = Poisoned(out_type, {n, hidden});
      gpu().Embedding(d_table.t, ids, d_out.t);
      EXPECT_EQ(Report("Embedding", Shape(n, hidden, out_type),
                       NormalisedError(Download(gpu(), d_out.t), want)),
                0.0);
      DeviceTensor d_rows = Poisoned(out_type, {n, hidden});
      gpu().GatherRows(d_table.t, ids, d_rows.t);
      EXPECT_EQ(Report("GatherRows", Shape(n, hidden, out_type),
                       NormalisedError(Download(gpu(), d_rows.t), want)),
                0.0);
    }
  }
}

TEST_F(CudaOpsTest, SplitColumnsCopiesEachPart) {
  const int64_t n = 5, a = 24, b = 8, c = 40;
  std::vector<float> src = RandomBf16(n * (a + b + c), 2);
  std::vector<float> pa(n * a), pb(n * b), pc(n * c);
  std::vector<Tensor> host_parts = {Host(pa, {n, a}), Host(pb, {n, b}), Host(pc, {n, c})};
  cpu().SplitColumns(Host(src, {n, a + b + c}), absl::MakeSpan(host_parts));

  DeviceTensor d_src = Upload(src, DType::kBF16, {n, a + b + c});
  DeviceTensor da = Poisoned(DType::kBF16, {n, a}), db = Poisoned(DType::kBF16, {n, b}),
               dc = Poisoned(DType::kBF16, {n, c});
  std::vector<Tensor> parts = {da.t, db.t, dc.t};
  gpu().SplitColumns(d_src.t, absl::MakeSpan(parts));
  EXPECT_EQ(Report("SplitColumns", "q|k|v", NormalisedError(Download(gpu(), da.t), pa)), 0.0);
  EXPECT_EQ(NormalisedError(Download(gpu(), db.t), pb), 0.0);
  EXPECT_EQ(NormalisedError(Download(gpu(), dc.t), pc), 0.0);
}

TEST_F(CudaOpsTest, RmsNormAndAddRmsNormMatchCpu) {
  struct Case {
    int64_t rows, dim;
    DType act, weight;
  };
  for (const Case& c :
       {Case{1, 64, DType::kBF16, DType::kBF16}, Case{17, 1000, DType::kBF16, DType::kF32},
        Case{3, 4096, DType::kBF16, DType::kBF16}, Case{9, 576, DType::kF32, DType::kF32}}) {
    const double tol = c.act == DType::kF32 ? kF32Tol : kBf16Tol;
    std::vector<float> x = RandomBf16(c.rows * c.dim, 3, 2.0f);
    std::vector<float> residual = RandomBf16(c.rows * c.dim, 4);
    std::vector<float> weight = RandomBf16(c.dim, 5);
    std::vector<float> want(c.rows * c.dim);
    cpu().RmsNorm(Host(x, {c.rows, c.dim}), Host(weight, {c.dim}), 1e-5f,
                  Host(want, {c.rows, c.dim}));
    DeviceTensor d_x = Upload(x, c.act, {c.rows, c.dim});
    DeviceTensor d_w = Upload(weight, c.weight, {c.dim});
    DeviceTensor d_out = Poisoned(c.act, {c.rows, c.dim});
    gpu().RmsNorm(d_x.t, d_w.t, 1e-5f, d_out.t);
    const std::string shape =
        Shape(c.rows, c.dim, c.act) + " w " + std::string(DTypeName(c.weight));
    EXPECT_LE(Report("RmsNorm", shape, NormalisedError(Download(gpu(), d_out.t), want)), tol);

    std::vector<float> want_residual = residual, want_out(c.rows * c.dim);
    cpu().AddRmsNorm(Host(x, {c.rows, c.dim}), Host(want_residual, {c.rows, c.dim}),
                     Host(weight, {c.dim}), 1e-5f, Host(want_out, {c.rows, c.dim}));
    DeviceTensor d_res = Upload(residual, c.act, {c.rows, c.dim});
    DeviceTensor d_out2 = Poisoned(c.act, {c.rows, c.dim});
    gpu().AddRmsNorm(d_x.t, d_res.t, d_w.t, 1e-5f, d_out2.t);
    EXPECT_LE(Report("AddRmsNorm.residual", shape,
                     NormalisedError(Download(gpu(), d_res.t), want_residual)),
              tol);
    EXPECT_LE(Report("AddRmsNorm.out", shape, NormalisedError(Download(gpu(), d_out2.t), want_out)),
              tol);
    // In place: out aliases x.
    DeviceTensor d_res3 = Upload(residual, c.act, {c.rows, c.dim});
    DeviceTensor d_x3 = Upload(x, c.act, {c.rows, c.dim});
    gpu().AddRmsNorm(d_x3.t, d_res3.t, d_w.t, 1e-5f, d_x3.t);
    EXPECT_LE(NormalisedError(Download(gpu(), d_x3.t), want_out), tol);
  }
}

TEST_F(CudaOpsTest, LinearMatchesCpu) {
  struct Case {
    int64_t m, n, k;
    DType in, out;
    bool accumulate;
  };
  for (const Case& c : {Case{1, 64, 64, DType::kBF16, DType::kBF16, false},
                        Case{33, 200, 136, DType::kBF16, DType::kBF16, false},
                        Case{128, 96, 576, DType::kBF16, DType::kF32, false},
                        Case{7, 60, 72, DType::kBF16, DType::kF32, true},
                        Case{5, 30, 40, DType::kF32, DType::kF32, true}}) {
    std::vector<float> x = RandomBf16(c.m * c.k, 6), w = RandomBf16(c.n * c.k, 7, 0.1f);
    std::vector<float> y0 = RandomBf16(c.m * c.n, 8);
    std::vector<float> want = c.accumulate ? y0 : std::vector<float>(c.m * c.n);
    cpu().Linear(Host(x, {c.m, c.k}), Host(w, {c.n, c.k}), Host(want, {c.m, c.n}), c.accumulate);
    DeviceTensor d_x = Upload(x, c.in, {c.m, c.k}), d_w = Upload(w, c.in, {c.n, c.k});
    DeviceTensor d_y = c.accumulate ? Upload(y0, c.out, {c.m, c.n}) : Poisoned(c.out, {c.m, c.n});
    gpu().Linear(d_x.t, d_w.t, d_y.t, c.accumulate);
    const std::string shape = Cat("m", c.m, " n", c.n, " k", c.k, " ", DTypeName(c.in), "->",
                                  DTypeName(c.out), c.accumulate ? " +=" : "");
    const double tol = c.out == DType::kF32 ? 1e-4 : kBf16Tol;
    EXPECT_LE(Report("Linear", shape, NormalisedError(Download(gpu(), d_y.t), want)), tol);
  }
}

TEST_F(CudaOpsTest, RopeBothLayoutsMatchCpu) {
  struct Case {
    int64_t n, heads, kv_heads, head_dim;
    int rotary_dim;
    RopeLayout layout;
    DType type;
  };
  for (const Case& c : {Case{1, 8, 2, 64, 64, RopeLayout::kHalf, DType::kBF16},
                        Case{19, 4, 4, 128, 128, RopeLayout::kAdjacent, DType::kBF16},
                        Case{6, 6, 2, 80, 40, RopeLayout::kHalf, DType::kF32},
                        Case{5, 3, 1, 64, 64, RopeLayout::kAdjacent, DType::kF32}}) {
    const std::vector<float> inv_freq = cpu::RopeInvFrequencies(10000.0f, c.rotary_dim);
    std::vector<int32_t> positions(c.n);
    for (int64_t i = 0; i < c.n; ++i) positions[i] = static_cast<int32_t>((i * 977 + 3) % 4096);
    std::vector<float> q = RandomBf16(c.n * c.heads * c.head_dim, 9);
    std::vector<float> k = RandomBf16(c.n * c.kv_heads * c.head_dim, 10);
    std::vector<float> want_q = q, want_k = k;
    const RopeLayout layout = c.layout;
    cpu().Rope(Host(want_q, {c.n, c.heads, c.head_dim}),
               Host(want_k, {c.n, c.kv_heads, c.head_dim}), positions, inv_freq, layout);
    DeviceTensor d_q = Upload(q, c.type, {c.n, c.heads, c.head_dim});
    DeviceTensor d_k = Upload(k, c.type, {c.n, c.kv_heads, c.head_dim});
    gpu().Rope(d_q.t, d_k.t, positions, inv_freq, layout);
    const std::string shape =
        Cat("n", c.n, " hd", c.head_dim, " rot", c.rotary_dim,
            c.layout == RopeLayout::kHalf ? " half " : " adjacent ", DTypeName(c.type));
    const double tol = c.type == DType::kF32 ? 1e-5 : kBf16Tol;
    EXPECT_LE(Report("Rope.q", shape, NormalisedError(Download(gpu(), d_q.t), want_q)), tol);
    EXPECT_LE(Report("Rope.k", shape, NormalisedError(Download(gpu(), d_k.t), want_k)), tol);
  }
}

TEST_F(CudaOpsTest, ElementwiseOpsMatchCpu) {
  for (DType type : {DType::kBF16, DType::kF32}) {
    const double tol = type == DType::kF32 ? 1e-6 : kBf16Tol;
    for (const auto& [rows, dim] : {std::pair<int64_t, int64_t>{1, 100}, {13, 1376}, {4, 1}}) {
      const std::string shape = Shape(rows, dim, type);
      std::vector<float> gate_up = RandomBf16(rows * 2 * dim, 11, 2.0f);
      std::vector<float> want(rows * dim);
      cpu().SiluAndMul(Host(gate_up, {rows, 2 * dim}), Host(want, {rows, dim}));
      DeviceTensor d_gu = Upload(gate_up, type, {rows, 2 * dim});
      DeviceTensor d_out = Poisoned(type, {rows, dim});
      gpu().SiluAndMul(d_gu.t, d_out.t);
      EXPECT_LE(Report("SiluAndMul", shape, NormalisedError(Download(gpu(), d_out.t), want)), tol);

      std::vector<float> y = RandomBf16(rows * dim, 12), bias = RandomBf16(dim, 13);
      std::vector<float> want_y = y;
      cpu().AddBias(Host(want_y, {rows, dim}), Host(bias, {dim}));
      DeviceTensor d_y = Upload(y, type, {rows, dim}), d_b = Upload(bias, type, {dim});
      gpu().AddBias(d_y.t, d_b.t);
      EXPECT_LE(Report("AddBias", shape, NormalisedError(Download(gpu(), d_y.t), want_y)), tol);

      std::vector<float> t = RandomBf16(rows * dim, 14, 1.5f), want_t = t;
      cpu().Tanh(Host(want_t, {rows, dim}));
      DeviceTensor d_t = Upload(t, type, {rows, dim});
      gpu().Tanh(d_t.t);
      EXPECT_LE(Report("Tanh", shape, NormalisedError(Download(gpu(), d_t.t), want_t)), tol);

      std::vector<float> x = RandomBf16(rows * dim, 15), gate = RandomBf16(rows, 16, 3.0f);
      std::vector<float> want_x = x;
      cpu().ScaleRowsBySigmoid(Host(want_x, {rows, dim}), Host(gate, {rows, 1}));
      DeviceTensor d_x = Upload(x, type, {rows, dim});
      DeviceTensor d_g = Upload(gate, DType::kF32, {rows, 1});
      gpu().ScaleRowsBySigmoid(d_x.t, d_g.t);
      EXPECT_LE(
          Report("ScaleRowsBySigmoid", shape, NormalisedError(Download(gpu(), d_x.t), want_x)),
          tol);
    }
  }
}

TEST_F(CudaOpsTest, WriteKvLandsInTheSlots) {
  const int64_t blocks = 6, block_size = 16, kv_heads = 2, hd = 64, n = 21;
  const int64_t width = kv_heads * hd, slots_total = blocks * block_size;
  std::vector<int32_t> slots(n);
  for (int64_t i = 0; i < n; ++i) slots[i] = static_cast<int32_t>((i * 37 + 5) % slots_total);
  std::vector<float> k = RandomBf16(n * width, 17), v = RandomBf16(n * width, 18);
  std::vector<float> k_cache = RandomBf16(slots_total * width, 19);
  std::vector<float> v_cache = RandomBf16(slots_total * width, 20);
  DeviceTensor d_kc = Upload(k_cache, DType::kBF16, {blocks, block_size, kv_heads, hd});
  DeviceTensor d_vc = Upload(v_cache, DType::kBF16, {blocks, block_size, kv_heads, hd});
  cpu().WriteKv(Host(k, {n, kv_heads, hd}), Host(v, {n, kv_heads, hd}), slots,
                Host(k_cache, {blocks, block_size, kv_heads, hd}),
                Host(v_cache, {blocks, block_size, kv_heads, hd}));
  DeviceTensor d_k = Upload(k, DType::kBF16, {n, kv_heads, hd});
  DeviceTensor d_v = Upload(v, DType::kBF16, {n, kv_heads, hd});
  gpu().WriteKv(d_k.t, d_v.t, slots, d_kc.t, d_vc.t);
  EXPECT_EQ(
      Report("WriteKv.k", "21 slots of 6x16", NormalisedError(Download(gpu(), d_kc.t), k_cache)),
      0.0);
  EXPECT_EQ(NormalisedError(Download(gpu(), d_vc.t), v_cache), 0.0);
}

}  // namespace
}  // namespace moeserve::gputest
