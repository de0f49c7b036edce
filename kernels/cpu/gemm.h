// Dense f32 GEMM for the linear projections: y = x · wᵀ, with w in the [out, in] row-major
// layout that both Hugging Face and GGUF use for weights. OpenBLAS does the math in
// single-threaded calls; the caller's ThreadPool splits the output columns (rows of w)
// across cores, so the CPU backend runs one set of threads instead of two competing ones
// (OpenBLAS's spinning workers and the pool), which measured 1.6-3x slower on 2 cores.
#ifndef MOESERVE_KERNELS_CPU_GEMM_H_
#define MOESERVE_KERNELS_CPU_GEMM_H_

#include <cstdint>

#include "common/thread_pool.h"

namespace moeserve::cpu {

// x: [m, k]; w: [n, k]; y: [m, n]. beta = 0 overwrites y, beta = 1 accumulates into it.
// pool may be null (runs on the calling thread).
void Gemm(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
          float beta = 0.0f, ThreadPool* pool = nullptr);

// Makes every OpenBLAS call run on its calling thread. Call once before using Gemm.
void UseSingleThreadedBlas();

}  // namespace moeserve::cpu

#endif  // MOESERVE_KERNELS_CPU_GEMM_H_
