// The MoE layer's grouped GEMMs (GroupedGateUpSilu and GroupedLinear of CudaBackend: one
// launch for all experts) against cuBLAS on the same work, at the expert shapes of
// LLaMA-MoE-3.5B (hidden 4096, 8 experts of 1376, top-2) and Mixtral 8x7B (8 experts of
// 14336, top-2), for 1 to 4096 tokens routed evenly or with one hot expert that every
// token picks. Two cuBLAS references: "dense", one GEMM of the same FLOPs with one
// expert's weights (what the tensor cores can do on this work), and "loop", one cuBLAS
// GEMM per expert that received rows (same FLOPs and weights as the grouped GEMM: what a
// backend without a grouped kernel would do). The dense and loop gate/up GEMMs write the
// [rows, 2 * inter] product and leave out the SiLU·up the grouped kernel fuses.
// Times are medians of CUDA-event-timed runs after an L2 flush; GB/s counts the bytes of
// the weights each GEMM reads (experts with at least one row). Prints Markdown tables.
//   build/bench/gpu/moe_gemm_bench
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/gpu/device_random.h"
#include "bench/gpu/gpu_timer.h"
#include "common/tensor.h"
#include "engine/cuda_backend.h"
#include "kernels/cuda/device_info.h"

namespace moeserve::bench {
namespace {

struct Shape {
  const char* name;
  int64_t hidden;
  int64_t inter;
  int32_t experts;
  int32_t top_k;
};

constexpr Shape kShapes[] = {{"LLaMA-MoE-3.5B", 4096, 1376, 8, 2},
                             {"Mixtral-8x7B", 4096, 14336, 8, 2}};
constexpr int64_t kTokens[] = {1, 16, 128, 1024, 4096};

// Expert offsets [experts + 1] of tokens * top_k rows. Even: the rows split as equally as
// they go. Skewed: every token picks expert 0 (it gets `tokens` rows) and its other
// top_k - 1 choices spread evenly over the remaining experts.
std::vector<int32_t> Offsets(const Shape& s, int64_t tokens, bool skewed) {
  const int64_t rows = tokens * s.top_k;
  std::vector<int32_t> offsets(s.experts + 1, 0);
  if (!skewed) {
    for (int e = 0; e <= s.experts; ++e) offsets[e] = static_cast<int32_t>(rows * e / s.experts);
    return offsets;
  }
  const int64_t rest = rows - tokens;
  offsets[1] = static_cast<int32_t>(tokens);
  for (int e = 2; e <= s.experts; ++e) {
    offsets[e] = static_cast<int32_t>(tokens + rest * (e - 1) / (s.experts - 1));
  }
  return offsets;
}

struct DeviceArray {
  cuda::DeviceBuffer buffer;
  Tensor t;
};

DeviceArray RandomBf16(std::initializer_list<int64_t> shape, float scale, uint64_t seed,
                       cudaStream_t stream) {
  Tensor shape_only(nullptr, DType::kBF16, shape, Device::kCuda);
  DeviceArray a{cuda::DeviceBuffer(shape_only.num_bytes()), Tensor()};
  a.t = Tensor(a.buffer.data(), DType::kBF16, shape, Device::kCuda);
  FillRandomBf16(a.buffer.data(), a.t.num_elements(), 0.0f, scale, seed, stream);
  return a;
}

// A [rows, cols] bf16 view of `base` starting at row `first`.
Tensor Rows(const Tensor& base, int64_t first, int64_t rows, int64_t cols) {
  auto* data = static_cast<uint16_t*>(base.data()) + first * cols;
  return Tensor(data, DType::kBF16, {rows, cols}, Device::kCuda);
}

struct Rate {
  double ms = 0.0;
  double tflops = 0.0;
  double gbs = 0.0;
};

Rate MakeRate(double ms, double flops, double weight_bytes) {
  return {ms, flops / (ms * 1e-3) / 1e12, weight_bytes / (ms * 1e-3) / 1e9};
}

void RunShape(const Shape& s, CudaBackend* backend, GpuTimer* timer) {
  cudaStream_t stream = backend->stream();
  const int64_t max_rows = kTokens[std::size(kTokens) - 1] * s.top_k;
  const int64_t h = s.hidden, inter = s.inter;
  DeviceArray w_gate_up = RandomBf16({s.experts, 2 * inter, h}, 0.02f, 1, stream);
  DeviceArray w_down = RandomBf16({s.experts, h, inter}, 0.02f, 2, stream);
  DeviceArray x = RandomBf16({max_rows, h}, 1.0f, 3, stream);
  DeviceArray act = RandomBf16({max_rows, inter}, 1.0f, 4, stream);
  DeviceArray gate_up_out = RandomBf16({max_rows, 2 * inter}, 1.0f, 5, stream);
  DeviceArray down_out = RandomBf16({max_rows, h}, 1.0f, 6, stream);
  cuda::DeviceBuffer offsets_buffer(sizeof(int32_t) * (s.experts + 1));
  const Tensor offsets_t(offsets_buffer.data(), DType::kI32, {s.experts + 1}, Device::kCuda);
  const double gate_up_expert_bytes = 2.0 * inter * h * 2;  // bf16
  const double down_expert_bytes = 1.0 * h * inter * 2;

  std::printf(
      "\n### %s: hidden %lld, %d experts of %lld, top-%d\n\n"
      "| routing | tokens | proj | grouped ms | TFLOP/s | GB/s | cuBLAS dense ms | TFLOP/s "
      "| cuBLAS loop ms | TFLOP/s | GB/s | grouped / dense |\n"
      "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
      s.name, static_cast<long long>(h), s.experts, static_cast<long long>(inter), s.top_k);
  for (const bool skewed : {false, true}) {
    for (const int64_t tokens : kTokens) {
      const std::vector<int32_t> offsets = Offsets(s, tokens, skewed);
      offsets_buffer.CopyFromHost(offsets.data(), offsets.size() * sizeof(int32_t));
      const int64_t rows = tokens * s.top_k;
      int active = 0;
      for (int e = 0; e < s.experts; ++e) active += offsets[e + 1] > offsets[e];
      const Tensor xr = Rows(x.t, 0, rows, h);
      const Tensor ar = Rows(act.t, 0, rows, inter);
      for (const bool gate_up : {true, false}) {
        const double flops = gate_up ? 2.0 * rows * h * 2 * inter : 2.0 * rows * inter * h;
        const double expert_bytes = gate_up ? gate_up_expert_bytes : down_expert_bytes;
        const Tensor& w = gate_up ? w_gate_up.t : w_down.t;
        const int64_t n_w = w.dim(1), k_w = w.dim(2);
        const Tensor in = gate_up ? xr : ar;
        const Tensor w0 = Rows(w, 0, n_w, k_w);  // expert 0 as [n_w, k_w]
        const Tensor& out_base = gate_up ? gate_up_out.t : down_out.t;
        const double grouped_ms = timer->MedianMs([&] {
          if (gate_up) {
            backend->GroupedGateUpSilu(xr, w, offsets_t, Rows(act.t, 0, rows, inter));
          } else {
            backend->GroupedLinear(ar, w, offsets_t, Rows(down_out.t, 0, rows, h));
          }
        });
        const double dense_ms =
            timer->MedianMs([&] { backend->Linear(in, w0, Rows(out_base, 0, rows, n_w), false); });
        const double loop_ms = timer->MedianMs([&] {
          for (int e = 0; e < s.experts; ++e) {
            const int64_t n = offsets[e + 1] - offsets[e];
            if (n == 0) continue;
            backend->Linear(Rows(in, offsets[e], n, k_w), Rows(w, e * n_w, n_w, k_w),
                            Rows(out_base, offsets[e], n, n_w), false);
          }
        });
        const Rate grouped = MakeRate(grouped_ms, flops, active * expert_bytes);
        const Rate dense = MakeRate(dense_ms, flops, expert_bytes);
        const Rate loop = MakeRate(loop_ms, flops, active * expert_bytes);
        std::printf(
            "| %s | %lld | %s | %.3f | %.1f | %.0f | %.3f | %.1f | %.3f | %.1f | %.0f | %.2fx |\n",
            skewed ? "1 hot" : "even", static_cast<long long>(tokens), gate_up ? "gate/up" : "down",
            grouped.ms, grouped.tflops, grouped.gbs, dense.ms, dense.tflops, loop.ms, loop.tflops,
            loop.gbs, grouped.ms / dense.ms);
        std::fflush(stdout);
      }
    }
  }
}

}  // namespace
}  // namespace moeserve::bench

int main() {
  using namespace moeserve;
  std::string error;
  const std::vector<cuda::DeviceInfo> devices = cuda::ListDevices(&error);
  if (devices.empty()) {
    std::fprintf(stderr, "moe_gemm_bench: no CUDA device (%s)\n", error.c_str());
    return 1;
  }
  CudaBackend backend(0);
  bench::GpuTimer timer(backend.stream());
  std::printf("device %s (sm_%d, %.1f GiB), cuBLAS %s\n", devices[0].name.c_str(),
              devices[0].compute_capability, devices[0].total_memory_bytes / 1073741824.0,
              cuda::CublasVersion().c_str());
  for (const bench::Shape& s : bench::kShapes) bench::RunShape(s, &backend, &timer);
  return 0;
}
