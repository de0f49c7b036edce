// Dense GEMM with bf16 weights and f32 activations for the CPU backend: y = x · wᵀ, with w
// in the [out, in] row-major layout of Hugging Face and GGUF, stored as raw bf16 bits. It
// exists because decode is bound by the bytes of weights read per step, and bf16 halves
// them against f32 (docs/PERFORMANCE.md has the measurements).
//
// Products and sums are f32: the result equals widening w to f32 and running the f32 GEMM,
// up to summation order (activations are never rounded to bf16). The SIMD kernel streams
// each block of w rows once per L2-sized panel of x rows (once per call for decode
// batches), widening as it loads, on the widest ISA the CPU has (AVX-512 or AVX2+FMA,
// picked at run time; a portable build of the same source elsewhere). Like Gemm, the
// caller's ThreadPool splits the output columns; the OpenBLAS path needs
// UseSingleThreadedBlas() called once first.
#ifndef MOESERVE_KERNELS_CPU_GEMM_BF16_H_
#define MOESERVE_KERNELS_CPU_GEMM_BF16_H_

#include <cstdint>

#include "common/thread_pool.h"

namespace moeserve::cpu {

// How GemmBf16 computes: a SIMD kernel that widens w as it streams it (three builds of one
// source), or widening panels of w to f32 for single-threaded OpenBLAS. kAuto chooses by
// CPU and m (ChooseBf16GemmKernel); tests and benchmarks name one to cover or compare the
// others.
enum class Bf16GemmKernel { kAuto, kAvx512, kAvx2, kPortable, kWidenBlas };

// Whether this build and CPU can run `kernel` (all but the x86 SIMD kernels always can).
bool Bf16GemmKernelSupported(Bf16GemmKernel kernel);

// What kAuto runs for m rows of x on this CPU; never kAuto.
Bf16GemmKernel ChooseBf16GemmKernel(int64_t m);

const char* Bf16GemmKernelName(Bf16GemmKernel kernel);

// x: [m, k] f32; w: [n, k] bf16 bits; y: [m, n] f32. beta = 0 overwrites y (NaNs in it
// included), beta = 1 accumulates into it. pool may be null (runs on the calling thread).
// REQUIRES: Bf16GemmKernelSupported(kernel).
void GemmBf16(const float* x, const uint16_t* w, float* y, int64_t m, int64_t n, int64_t k,
              float beta = 0.0f, ThreadPool* pool = nullptr,
              Bf16GemmKernel kernel = Bf16GemmKernel::kAuto);

}  // namespace moeserve::cpu

#endif  // MOESERVE_KERNELS_CPU_GEMM_BF16_H_
