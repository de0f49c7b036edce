#include "kernels/cuda/gemm.h"

#include <cublas_v2.h>

#include <limits>

#include "common/logging.h"
#include "kernels/cuda/cuda_check.h"

namespace moeserve::cuda {
namespace {

cudaDataType_t CudaType(DType type) {
  switch (type) {
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kBF16:
      return CUDA_R_16BF;
    default:
      UnsupportedType("Linear");
  }
}

}  // namespace

void Linear(BlasHandle handle, const LinearArgs& a) {
  if (a.m == 0 || a.n == 0) return;
  CHECK(a.m <= std::numeric_limits<int>::max() && a.n <= std::numeric_limits<int>::max() &&
        a.k <= std::numeric_limits<int>::max());
  const int m = static_cast<int>(a.m), n = static_cast<int>(a.n), k = static_cast<int>(a.k);
  const float alpha = 1.0f, beta = a.accumulate ? 1.0f : 0.0f;
  // Column-major view: yᵀ [n, m] = (w as [k, n])ᵀ · (x as [k, m]).
  MOESERVE_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, a.w,
                                     CudaType(a.in_type), k, a.x, CudaType(a.in_type), k, &beta,
                                     a.y, CudaType(a.out_type), n, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT));
}

}  // namespace moeserve::cuda
