// Dense f32 GEMM for the linear projections: y = x · wᵀ, with w in the [out, in] row-major
// layout that both Hugging Face and GGUF use for weights. Runs on OpenBLAS (its own
// threads, one per core); matrix-vector products take the GEMV path.
#ifndef MOESERVE_KERNELS_CPU_GEMM_H_
#define MOESERVE_KERNELS_CPU_GEMM_H_

#include <cstdint>

namespace moeserve::cpu {

// x: [m, k]; w: [n, k]; y: [m, n]. beta = 0 overwrites y, beta = 1 accumulates into it.
void Gemm(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
          float beta = 0.0f);

// Sets the number of threads OpenBLAS uses (at least 1).
void SetGemmThreads(int num_threads);

}  // namespace moeserve::cpu

#endif  // MOESERVE_KERNELS_CPU_GEMM_H_
