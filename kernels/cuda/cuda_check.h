// Error checks around CUDA runtime and cuBLAS calls. A failed call is a broken invariant
// (bad launch configuration, illegal address, out of memory after sizing): it logs the
// call, the error and the place, and aborts like CHECK. Plain C++: no CUDA headers.
#ifndef MOESERVE_KERNELS_CUDA_CUDA_CHECK_H_
#define MOESERVE_KERNELS_CUDA_CUDA_CHECK_H_

namespace moeserve::cuda {

// `code` is a cudaError_t or (cublas = true) a cublasStatus_t.
[[noreturn]] void CudaCallFailed(int code, bool cublas, const char* file, int line,
                                 const char* call);

// A dtype (or combination) a kernel was not instantiated for.
[[noreturn]] void UnsupportedType(const char* op);

}  // namespace moeserve::cuda

#define MOESERVE_CUDA_CHECK(call)                                                              \
  do {                                                                                         \
    const int code_ = static_cast<int>(call);                                                  \
    if (code_ != 0) ::moeserve::cuda::CudaCallFailed(code_, false, __FILE__, __LINE__, #call); \
  } while (0)

#define MOESERVE_CUBLAS_CHECK(call)                                                           \
  do {                                                                                        \
    const int code_ = static_cast<int>(call);                                                 \
    if (code_ != 0) ::moeserve::cuda::CudaCallFailed(code_, true, __FILE__, __LINE__, #call); \
  } while (0)

// After a kernel launch: reports a bad configuration at the launch site.
#define MOESERVE_CUDA_CHECK_LAUNCH() MOESERVE_CUDA_CHECK(cudaGetLastError())

#endif  // MOESERVE_KERNELS_CUDA_CUDA_CHECK_H_
