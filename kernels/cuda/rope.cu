#include "kernels/cuda/rope.h"

#include "kernels/cuda/device_math.cuh"

namespace moeserve::cuda {
namespace {

// One block per token; each thread takes frequencies i and applies cos/sin to every head.
template <typename T>
__global__ void RopeKernel(T* x, const int32_t* positions, const float* inv_freq, int64_t num_heads,
                           int64_t head_dim, int64_t half, bool adjacent) {
  const int64_t t = blockIdx.x;
  const float pos = static_cast<float>(positions[t]);
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    float sin_a, cos_a;
    sincosf(pos * inv_freq[i], &sin_a, &cos_a);
    const int64_t a = adjacent ? 2 * i : i;
    const int64_t b = adjacent ? 2 * i + 1 : i + half;
    for (int64_t h = 0; h < num_heads; ++h) {
      T* v = x + (t * num_heads + h) * head_dim;
      const float x0 = ToF32(v[a]), x1 = ToF32(v[b]);
      v[a] = FromF32<T>(x0 * cos_a - x1 * sin_a);
      v[b] = FromF32<T>(x1 * cos_a + x0 * sin_a);
    }
  }
}

}  // namespace

void Rope(const RopeArgs& a, Stream stream) {
  if (a.n == 0 || a.half_rotary == 0) return;
  const int threads = a.half_rotary >= 64 ? 64 : 32;
  MOESERVE_DISPATCH_FLOAT(a.type, T, "Rope", {
    RopeKernel<<<static_cast<unsigned>(a.n), threads, 0, stream>>>(
        static_cast<T*>(a.x), a.positions, a.inv_freq, a.num_heads, a.head_dim, a.half_rotary,
        a.adjacent);
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

}  // namespace moeserve::cuda
