#include "kernels/cuda/kv_write.h"

#include "kernels/cuda/device_math.cuh"

namespace moeserve::cuda {
namespace {

// One block per token, K and V together.
template <typename S, typename C>
__global__ void WriteKvKernel(const S* k, const S* v, const int32_t* slots, int64_t width,
                              C* k_cache, C* v_cache) {
  const int64_t t = blockIdx.x;
  const int32_t slot = slots[t];
  if (slot < 0) return;
  const int64_t dst = static_cast<int64_t>(slot) * width;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
    k_cache[dst + i] = FromF32<C>(ToF32(k[t * width + i]));
    v_cache[dst + i] = FromF32<C>(ToF32(v[t * width + i]));
  }
}

}  // namespace

void WriteKv(const void* k, const void* v, DType src_type, const int32_t* slots, int64_t n,
             int64_t kv_width, void* k_cache, void* v_cache, DType cache_type, Stream stream) {
  if (n == 0) return;
  MOESERVE_DISPATCH_FLOAT(src_type, S, "WriteKv", {
    MOESERVE_DISPATCH_FLOAT(cache_type, C, "WriteKv", {
      WriteKvKernel<<<static_cast<unsigned>(n), 128, 0, stream>>>(
          static_cast<const S*>(k), static_cast<const S*>(v), slots, kv_width,
          static_cast<C*>(k_cache), static_cast<C*>(v_cache));
    });
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

}  // namespace moeserve::cuda
