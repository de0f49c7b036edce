#include "bench/gpu/device_random.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"

namespace moeserve::bench {
namespace {

// splitmix64: a full-period mix of the element index, cheap and stateless.
__device__ uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

__global__ void FillKernel(__nv_bfloat16* dst, int64_t n, float mean, float scale, uint64_t seed) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint64_t h = Mix(seed * 0xD1B54A32D192ED03ull + static_cast<uint64_t>(i));
    const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    dst[i] = __float2bfloat16(mean + scale * 1.7320508f * (2.0f * u - 1.0f));
  }
}

}  // namespace

void FillRandomBf16(void* dst, int64_t n, float mean, float scale, uint64_t seed,
                    cuda::Stream stream) {
  if (n <= 0) return;
  const int threads = 256;
  const int64_t blocks = (n + threads - 1) / threads;
  FillKernel<<<static_cast<unsigned>(blocks < 4096 ? blocks : 4096), threads, 0, stream>>>(
      static_cast<__nv_bfloat16*>(dst), n, mean, scale, seed);
  MOESERVE_CUDA_CHECK_LAUNCH();
}

}  // namespace moeserve::bench
