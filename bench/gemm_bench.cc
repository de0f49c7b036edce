// The GEMM behind every linear projection of the CPU backend (single-threaded OpenBLAS
// calls over column slices on the pool) against a plain loop on the same pool, at SmolLM2's decode (m = 1) and prefill shapes. Reports
// GFLOP/s and the weight bandwidth achieved, median of repeated runs.
//   build/bench/gemm_bench [threads]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "common/thread_pool.h"
#include "kernels/cpu/gemm.h"

namespace {

// y[m, n] = x[m, k] · w[n, k]ᵀ, rows of w split over the pool: the obvious alternative
// to a BLAS, with an inner loop GCC auto-vectorises at -O3.
void LoopGemm(const float* x, const float* w, float* y, int m, int n, int k,
              moeserve::ThreadPool* pool) {
  pool->ParallelFor(n, 16, [&](int64_t begin, int64_t end) {
    for (int i = 0; i < m; ++i) {
      for (int64_t j = begin; j < end; ++j) {
        float acc = 0.0f;
        const float* wr = w + j * k;
        const float* xr = x + i * k;
        for (int p = 0; p < k; ++p) acc += xr[p] * wr[p];
        y[i * n + j] = acc;
      }
    }
  });
}

template <typename F>
double MedianSeconds(F&& f, int reps) {
  std::vector<double> t;
  f();  // warm up
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : moeserve::ThreadPool::DefaultNumThreads();
  moeserve::cpu::UseSingleThreadedBlas();
  moeserve::ThreadPool pool(threads);
  struct Shape {
    const char* name;
    int m, n, k;
  };
  const Shape shapes[] = {
      {"decode qkv", 1, 960, 576},          {"decode gate_up", 1, 3072, 576},
      {"decode down", 1, 576, 1536},        {"decode lm_head", 1, 49152, 576},
      {"decode x8 gate_up", 8, 3072, 576},  {"prefill 128 qkv", 128, 960, 576},
      {"prefill 128 gate_up", 128, 3072, 576}, {"prefill 512 down", 512, 576, 1536},
  };
  std::printf("threads=%d\n%-22s %12s %12s %12s %12s %8s\n", threads, "shape", "blas GF/s",
              "blas GB/s", "loop GF/s", "loop GB/s", "ratio");
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  for (const Shape& s : shapes) {
    std::vector<float> x(size_t{1} * s.m * s.k), w(size_t{1} * s.n * s.k), y(size_t{1} * s.m * s.n);
    for (float& v : x) v = dist(rng);
    for (float& v : w) v = dist(rng);
    const int reps = s.m * int64_t{s.n} * s.k > 50'000'000 ? 5 : 30;
    const double blas = MedianSeconds(
        [&] { moeserve::cpu::Gemm(x.data(), w.data(), y.data(), s.m, s.n, s.k, 0.0f, &pool); }, reps);
    const double loop = MedianSeconds(
        [&] { LoopGemm(x.data(), w.data(), y.data(), s.m, s.n, s.k, &pool); }, reps);
    const double flops = 2.0 * s.m * s.n * s.k;
    const double m = s.m, n = s.n, k = s.k;
    const double bytes = 4.0 * (n * k + m * k + m * n);
    std::printf("%-22s %12.1f %12.1f %12.1f %12.1f %8.2f\n", s.name, flops / blas / 1e9,
                bytes / blas / 1e9, flops / loop / 1e9, bytes / loop / 1e9, loop / blas);
  }
  return 0;
}
