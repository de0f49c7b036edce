// bf16 weights against f32 weights for the CPU backend's projections: the current path
// (f32 w, single-threaded OpenBLAS over column slices on the pool, kernels/cpu/gemm.h)
// against GemmBf16 (kernels/cpu/gemm_bf16.h) as it chooses, and with each of its kernels:
// the SIMD kernel on AVX-512 and on AVX2, and widening w for OpenBLAS. (cblas_sbgemm,
// which would also round x to bf16, is not here: Debian builds OpenBLAS without it.)
// Shapes of SmolLM2-135M (hidden 576, intermediate 1536, q|k|v 960, vocab 49152); one MoE
// expert of hidden 576 and intermediate 1536 has the same gate|up and down shapes.
// m = 1, 8, 32 are decode batches, 256 a prefill chunk.
//
// Weights are read cold, as in a decode step that walks the whole model: every call takes
// the next of enough copies to fill 256 MiB (one buffer per weight type; the variants
// sharing one take turns through it), well past the last-level cache. Variants run
// interleaved call by call in shuffled order, so load from other processes hits them
// alike; the table has the median time per call, the weight bytes per second it implies,
// and f32 time / variant time.
//   build/bench/gemm_bf16_bench [threads=2] [max_seconds_per_shape=3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/thread_pool.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_bf16.h"

namespace {

using moeserve::ThreadPool;
using moeserve::cpu::Bf16GemmKernel;

constexpr size_t kColdBytes = size_t{256} << 20;

// Cheap deterministic fill in [-1, 1): a normal generator over 256 MiB takes seconds.
void Fill(float* v, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = static_cast<float>(static_cast<int64_t>(seed >> 40) - (int64_t{1} << 23)) /
           static_cast<float>(int64_t{1} << 23);
  }
}

struct Variant {
  std::string name;
  double weight_bytes_per_element;
  std::function<void(int copy)> run;
  std::vector<double> seconds = {};
};

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const double max_seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  moeserve::cpu::UseSingleThreadedBlas();
  ThreadPool pool(threads);
  // The bf16 kernels to time: what GemmBf16 picks for each m, then each kernel this CPU runs.
  std::vector<Bf16GemmKernel> kernels = {Bf16GemmKernel::kAuto};
  for (Bf16GemmKernel kernel :
       {Bf16GemmKernel::kAvx512, Bf16GemmKernel::kAvx2, Bf16GemmKernel::kWidenBlas}) {
    if (moeserve::cpu::Bf16GemmKernelSupported(kernel)) kernels.push_back(kernel);
  }

  struct Shape {
    const char* name;
    int64_t n, k;
  };
  const Shape shapes[] = {{"qkv", 960, 576},
                          {"o", 576, 576},
                          {"gate_up/expert", 3072, 576},
                          {"down/expert", 576, 1536},
                          {"lm_head", 49152, 576}};
  const int64_t batch_rows[] = {1, 8, 32, 256};

  std::vector<float> w32(kColdBytes / sizeof(float));
  Fill(w32.data(), w32.size(), 1);
  std::vector<uint16_t> w16(kColdBytes / sizeof(float));  // half the bytes, same elements
  for (size_t i = 0; i < w16.size(); ++i) w16[i] = moeserve::F32ToBF16(w32[i]);

  std::printf(
      "threads=%d; median ms per call (GB/s of weights); bf16 columns: GemmBf16 with the kernel"
      " named (auto: what it picks); ratio = f32 time / variant\n",
      threads);
  std::printf("%-24s %4s %17s", "shape n x k", "m", "f32 openblas");
  for (Bf16GemmKernel kernel : kernels) {
    std::printf(" %17s %5s", Bf16GemmKernelName(kernel), "ratio");
  }
  std::printf(" %5s\n", "reps");
  for (const Shape& s : shapes) {
    const int64_t n = s.n, k = s.k, elements = n * k;
    const int copies = static_cast<int>(std::max<int64_t>(1, w32.size() / elements));
    for (int64_t m : batch_rows) {
      std::vector<float> x(m * k), y(m * n);
      Fill(x.data(), x.size(), 2);
      std::vector<Variant> variants;
      variants.push_back({"f32", 4.0, [&](int c) {
                            moeserve::cpu::Gemm(x.data(), w32.data() + c * elements, y.data(), m, n,
                                                k, 0.0f, &pool);
                          }});
      for (Bf16GemmKernel kernel : kernels) {
        variants.push_back({Bf16GemmKernelName(kernel), 2.0, [&, kernel](int c) {
                              moeserve::cpu::GemmBf16(x.data(), w16.data() + c * elements, y.data(),
                                                      m, n, k, 0.0f, &pool, kernel);
                            }});
      }
      // Warm up (thread-local scratch, page faults), then interleave until the time is up.
      for (Variant& v : variants) v.run(0);
      const auto start = std::chrono::steady_clock::now();
      int next_copy[2] = {1 % copies, 1 % copies}, reps = 0;  // per buffer: f32, bf16
      std::vector<size_t> order(variants.size());
      std::iota(order.begin(), order.end(), size_t{0});
      std::mt19937 rng(7);
      while (reps < 500 &&
             (reps < 7 ||
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
                  max_seconds)) {
        // A fresh order every round: whichever variant follows the f32 one finds the caches
        // emptied by twice the bytes, which cost it up to 30% in a fixed order.
        std::shuffle(order.begin(), order.end(), rng);
        for (size_t r : order) {
          Variant& v = variants[r];
          const auto t0 = std::chrono::steady_clock::now();
          int& copy = next_copy[v.weight_bytes_per_element == 2.0];
          v.run(copy);
          v.seconds.push_back(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        ++reps;
      }
      std::vector<double> median;
      for (Variant& v : variants) {
        std::sort(v.seconds.begin(), v.seconds.end());
        median.push_back(v.seconds[v.seconds.size() / 2]);
      }
      char label[48];
      std::snprintf(label, sizeof(label), "%s %lldx%lld", s.name, static_cast<long long>(n),
                    static_cast<long long>(k));
      std::printf("%-24s %4lld", label, static_cast<long long>(m));
      for (size_t i = 0; i < variants.size(); ++i) {
        const double gbps = variants[i].weight_bytes_per_element * elements / median[i] / 1e9;
        std::printf(" %9.3f (%5.1f)", median[i] * 1e3, gbps);
        if (i > 0) std::printf(" %5.2f", median[0] / median[i]);
      }
      std::printf(" %5d\n", reps);
      std::fflush(stdout);
    }
  }
  return 0;
}
