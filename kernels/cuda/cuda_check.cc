#include "kernels/cuda/cuda_check.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

#include "common/logging.h"

namespace moeserve::cuda {

void CudaCallFailed(int code, bool cublas, const char* file, int line, const char* call) {
  const std::string what = cublas
                               ? std::string("cuBLAS status ") + std::to_string(code) + " (" +
                                     cublasGetStatusString(static_cast<cublasStatus_t>(code)) + ")"
                               : std::string("CUDA error ") + std::to_string(code) + " (" +
                                     cudaGetErrorString(static_cast<cudaError_t>(code)) + ")";
  CheckFailed(file, line, call, what);
}

void UnsupportedType(const char* op) {
  CheckFailed(__FILE__, __LINE__, op, "dtype combination not supported by the CUDA kernel");
}

}  // namespace moeserve::cuda
