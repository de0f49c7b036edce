// RMSNorm over the last dimension, optionally fused with the residual add that precedes it
// in every pre-norm transformer block. Accumulates in f32 as Hugging Face does for f32
// weights (variance = mean(x^2), x * rsqrt(variance + eps) * weight).
#ifndef MOESERVE_KERNELS_CPU_RMSNORM_H_
#define MOESERVE_KERNELS_CPU_RMSNORM_H_

#include <cstdint>

namespace moeserve::cpu {

// out[i] = x[i] / rms(x[i]) * weight, per row.
// x, out: [rows, dim] (may alias); weight: [dim].
void RmsNorm(const float* x, const float* weight, float eps, int64_t rows, int64_t dim,
             float* out);

// residual[i] += x[i], then out[i] = RmsNorm(residual[i]).
// x, residual, out: [rows, dim]; out may alias x.
void AddRmsNorm(const float* x, float* residual, const float* weight, float eps, int64_t rows,
                int64_t dim, float* out);

}  // namespace moeserve::cpu

#endif  // MOESERVE_KERNELS_CPU_RMSNORM_H_
