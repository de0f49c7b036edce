// Every CPU kernel against a float64 reference written independently here, on random
// data, with outputs poisoned before each run. Tolerances are relative to the output's
// scale and stated per test.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"

namespace moeserve::cpu {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<float> Poisoned(size_t n) {
  return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

// max |a - b| / max(1, max |b|)
double NormalizedError(const std::vector<float>& a, const std::vector<double>& b) {
  double err = 0.0, scale = 1.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) return std::numeric_limits<double>::infinity();
    err = std::max(err, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return err / scale;
}

TEST(CpuKernelsTest, Gemm) {
  for (auto [m, n, k] : {std::tuple{1, 193, 576}, {1, 1000, 300}, {7, 64, 130}, {33, 257, 96}}) {
    const std::vector<float> x = Random(m * k, 1), w = Random(n * k, 2);
    std::vector<float> y = Poisoned(m * n);
    ThreadPool pool(3);
    Gemm(x.data(), w.data(), y.data(), m, n, k, 0.0f, &pool);
    std::vector<double> ref(m * n);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        double acc = 0.0;
        for (int p = 0; p < k; ++p) acc += double{x[i * k + p]} * w[j * k + p];
        ref[i * n + j] = acc;
      }
    }
    EXPECT_LT(NormalizedError(y, ref), 1e-5) << m << "x" << n << "x" << k;
    // beta = 1 accumulates.
    std::vector<float> y2 = y;
    Gemm(x.data(), w.data(), y2.data(), m, n, k, 1.0f);  // single-threaded path
    for (double& r : ref) r *= 2.0;
    EXPECT_LT(NormalizedError(y2, ref), 1e-5);
  }
}

// Narrow outputs (n below 16 per thread) on a wide pool still cover every column.
TEST(CpuKernelsTest, GemmWithFewerColumnsThanThreads) {
  const int m = 256, n = 8, k = 128;
  const std::vector<float> x = Random(m * k, 11), w = Random(n * k, 12);
  std::vector<float> y = Poisoned(m * n);
  ThreadPool pool(16);
  Gemm(x.data(), w.data(), y.data(), m, n, k, 0.0f, &pool);
  std::vector<double> ref(m * n);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int p = 0; p < k; ++p) acc += double{x[i * k + p]} * w[j * k + p];
      ref[i * n + j] = acc;
    }
  }
  EXPECT_LT(NormalizedError(y, ref), 1e-5);
}

TEST(CpuKernelsTest, RmsNormAndFusedResidual) {
  const int rows = 5, dim = 576;
  const float eps = 1e-5f;
  const std::vector<float> x = Random(rows * dim, 3, 2.0f), weight = Random(dim, 4);
  std::vector<float> residual = Random(rows * dim, 5);
  std::vector<double> ref(rows * dim), ref_fused(rows * dim), new_residual(rows * dim);
  for (int r = 0; r < rows; ++r) {
    double ss = 0.0, ss_fused = 0.0;
    for (int j = 0; j < dim; ++j) {
      ss += double{x[r * dim + j]} * x[r * dim + j];
      new_residual[r * dim + j] = double{x[r * dim + j]} + residual[r * dim + j];
      ss_fused += new_residual[r * dim + j] * new_residual[r * dim + j];
    }
    for (int j = 0; j < dim; ++j) {
      ref[r * dim + j] = x[r * dim + j] / std::sqrt(ss / dim + eps) * weight[j];
      ref_fused[r * dim + j] =
          new_residual[r * dim + j] / std::sqrt(ss_fused / dim + eps) * weight[j];
    }
  }
  std::vector<float> out = Poisoned(rows * dim);
  RmsNorm(x.data(), weight.data(), eps, rows, dim, out.data());
  EXPECT_LT(NormalizedError(out, ref), 1e-5);

  out = Poisoned(rows * dim);
  AddRmsNorm(x.data(), residual.data(), weight.data(), eps, rows, dim, out.data());
  EXPECT_LT(NormalizedError(out, ref_fused), 1e-5);
  EXPECT_LT(NormalizedError(residual, new_residual), 1e-6);
}

TEST(CpuKernelsTest, RopeBothLayouts) {
  const int tokens = 4, heads = 3, head_dim = 64;
  const float theta = 100000.0f;
  const std::vector<int32_t> positions = {0, 1, 17, 1000};
  const std::vector<float> inv_freq = RopeInvFrequencies(theta, head_dim);
  for (RopeStyle style : {RopeStyle::kHalf, RopeStyle::kAdjacent}) {
    std::vector<float> x = Random(tokens * heads * head_dim, 6);
    std::vector<double> ref(x.size());
    for (int t = 0; t < tokens; ++t) {
      for (int h = 0; h < heads; ++h) {
        const float* v = x.data() + (t * heads + h) * head_dim;
        double* r = ref.data() + (t * heads + h) * head_dim;
        for (int i = 0; i < head_dim / 2; ++i) {
          const double angle = positions[t] * std::pow(double{theta}, -2.0 * i / head_dim);
          const int a = style == RopeStyle::kHalf ? i : 2 * i;
          const int b = style == RopeStyle::kHalf ? i + head_dim / 2 : 2 * i + 1;
          r[a] = v[a] * std::cos(angle) - v[b] * std::sin(angle);
          r[b] = v[b] * std::cos(angle) + v[a] * std::sin(angle);
        }
      }
    }
    ApplyRope(x.data(), positions.data(), tokens, heads, head_dim, inv_freq, style);
    // f32 angles at position 1000 carry ~1e-4 absolute error; HF computes them the same way.
    EXPECT_LT(NormalizedError(x, ref), 2e-4);
  }
}

TEST(CpuKernelsTest, SiluAndMul) {
  const int rows = 3, dim = 100;
  const std::vector<float> gate_up = Random(rows * 2 * dim, 7, 3.0f);
  std::vector<float> out = Poisoned(rows * dim);
  SiluAndMul(gate_up.data(), rows, dim, out.data());
  std::vector<double> ref(rows * dim);
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < dim; ++j) {
      const double g = gate_up[r * 2 * dim + j], u = gate_up[r * 2 * dim + dim + j];
      ref[r * dim + j] = g / (1.0 + std::exp(-g)) * u;
    }
  }
  EXPECT_LT(NormalizedError(out, ref), 1e-6);
}

// Two sequences with scattered block tables: one decoding after a long context, one
// prefilling a chunk after a cached prefix. Reference: dense causal attention in f64.
TEST(CpuKernelsTest, PagedAttentionMatchesDenseCausal) {
  const int heads = 6, kv_heads = 2, hd = 64, block = 4, num_blocks = 40;
  const int kv_width = kv_heads * hd;
  struct Seq {
    int context, new_tokens;
    std::vector<int32_t> blocks;
  };
  std::vector<Seq> seqs = {{37, 1, {}}, {23, 9, {}}};
  std::mt19937 rng(8);
  std::vector<int32_t> free_blocks(num_blocks);
  for (int i = 0; i < num_blocks; ++i) free_blocks[i] = i;
  std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
  for (Seq& s : seqs) {
    for (int b = 0; b < (s.context + block - 1) / block; ++b) {
      s.blocks.push_back(free_blocks.back());
      free_blocks.pop_back();
    }
  }
  std::vector<float> k_cache = Poisoned(num_blocks * block * kv_width);
  std::vector<float> v_cache = Poisoned(num_blocks * block * kv_width);
  // Keys/values of every position of every sequence, written through WriteKv.
  std::vector<std::vector<float>> keys, values;
  for (size_t s = 0; s < seqs.size(); ++s) {
    keys.push_back(Random(seqs[s].context * kv_width, 10 + s));
    values.push_back(Random(seqs[s].context * kv_width, 20 + s));
    std::vector<int32_t> slots;
    for (int p = 0; p < seqs[s].context; ++p) {
      slots.push_back(seqs[s].blocks[p / block] * block + p % block);
    }
    WriteKv(keys[s].data(), values[s].data(), slots.data(), seqs[s].context, kv_width,
            k_cache.data(), v_cache.data());
  }
  int total = 0;
  std::vector<AttentionSequence> batch;
  for (const Seq& s : seqs) {
    batch.push_back({total, s.new_tokens, s.context, s.blocks.data()});
    total += s.new_tokens;
  }
  const std::vector<float> q = Random(total * heads * hd, 30);
  const float scale = 1.0f / std::sqrt(float{hd});
  std::vector<double> ref(total * heads * hd);
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (int t = 0; t < seqs[s].new_tokens; ++t) {
      const int row = batch[s].token_begin + t;
      const int visible = seqs[s].context - seqs[s].new_tokens + t + 1;
      for (int h = 0; h < heads; ++h) {
        const int kvh = h / (heads / kv_heads);
        std::vector<double> scores(visible);
        double mx = -1e300;
        for (int p = 0; p < visible; ++p) {
          double dot = 0.0;
          for (int d = 0; d < hd; ++d) {
            dot += double{q[(row * heads + h) * hd + d]} * keys[s][p * kv_width + kvh * hd + d];
          }
          scores[p] = dot * scale;
          mx = std::max(mx, scores[p]);
        }
        double sum = 0.0;
        for (double& sc : scores) sum += (sc = std::exp(sc - mx));
        for (int d = 0; d < hd; ++d) {
          double acc = 0.0;
          for (int p = 0; p < visible; ++p) {
            acc += scores[p] * values[s][p * kv_width + kvh * hd + d];
          }
          ref[(row * heads + h) * hd + d] = acc / sum;
        }
      }
    }
  }
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> out = Poisoned(total * heads * hd);
    PagedAttention(q.data(), k_cache.data(), v_cache.data(), batch,
                   {heads, kv_heads, hd, block, scale}, out.data(), &pool);
    EXPECT_LT(NormalizedError(out, ref), 1e-5) << threads << " threads";
  }
}

}  // namespace
}  // namespace moeserve::cpu
