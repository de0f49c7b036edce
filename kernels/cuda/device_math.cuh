// Device-side helpers shared by the kernels: f32 <-> storage-type conversion, warp and
// block reductions, and the dtype dispatch that turns a runtime DType into a template
// argument. Included by .cu files only.
#ifndef MOESERVE_KERNELS_CUDA_DEVICE_MATH_CUH_
#define MOESERVE_KERNELS_CUDA_DEVICE_MATH_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "common/dtype.h"
#include "kernels/cuda/cuda_check.h"

namespace moeserve::cuda {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float ToF32(float v) { return v; }
__device__ __forceinline__ float ToF32(bf16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T FromF32(float v);
template <>
__device__ __forceinline__ float FromF32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ bf16 FromF32<bf16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float WarpSum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ __forceinline__ float BlockSum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  float total = 0.0f;
  for (int w = 0; w < warps; ++w) total += partial[w];
  return total;
}

__device__ __forceinline__ float Silu(float g) { return g / (1.0f + expf(-g)); }

inline unsigned CeilDiv(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

}  // namespace moeserve::cuda

// MOESERVE_DISPATCH_FLOAT(dtype, T, body): runs body with T = float or bf16.
#define MOESERVE_DISPATCH_FLOAT(dtype, T, op, ...) \
  do {                                             \
    switch (dtype) {                               \
      case ::moeserve::DType::kF32: {              \
        using T = float;                           \
        __VA_ARGS__;                               \
        break;                                     \
      }                                            \
      case ::moeserve::DType::kBF16: {             \
        using T = ::moeserve::cuda::bf16;          \
        __VA_ARGS__;                               \
        break;                                     \
      }                                            \
      default:                                     \
        ::moeserve::cuda::UnsupportedType(op);     \
    }                                              \
  } while (0)

#endif  // MOESERVE_KERNELS_CUDA_DEVICE_MATH_CUH_
