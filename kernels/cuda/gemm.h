// Dense projections y = x · wᵀ on the device through cuBLAS (cublasGemmEx, f32 compute):
// bf16 or f32 operands, bf16 or f32 output. w keeps the [out, in] row-major layout of the
// checkpoints, which is cuBLAS's column-major [in, out] with the transpose flag.
#ifndef MOESERVE_KERNELS_CUDA_GEMM_H_
#define MOESERVE_KERNELS_CUDA_GEMM_H_

#include <cstdint>

#include "common/dtype.h"

struct cublasContext;

namespace moeserve::cuda {

using BlasHandle = cublasContext*;  // cublasHandle_t; its stream is the caller's

struct LinearArgs {
  const void* x = nullptr;        // [m, k] of in_type
  const void* w = nullptr;        // [n, k] of in_type
  void* y = nullptr;              // [m, n] of out_type
  DType in_type = DType::kBF16;   // bf16 or f32
  DType out_type = DType::kBF16;  // bf16 or f32 (f32 only with f32 in_type or bf16 in_type)
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  bool accumulate = false;  // y += x · wᵀ
};

void Linear(BlasHandle handle, const LinearArgs& args);

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_GEMM_H_
