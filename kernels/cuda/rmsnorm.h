// RMSNorm over the last dimension on the device, optionally fused with the residual add
// before it (kernels/cpu/rmsnorm.h is the reference). Sums of squares in f32.
#ifndef MOESERVE_KERNELS_CUDA_RMSNORM_H_
#define MOESERVE_KERNELS_CUDA_RMSNORM_H_

#include <cstdint>

#include "common/dtype.h"
#include "kernels/cuda/stream.h"

namespace moeserve::cuda {

struct RmsNormArgs {
  const void* x = nullptr;           // [rows, dim] of act_type
  void* residual = nullptr;          // [rows, dim] of act_type, or null for a plain RMSNorm
  const void* weight = nullptr;      // [dim] of weight_type
  void* out = nullptr;               // [rows, dim] of act_type; may alias x
  DType act_type = DType::kBF16;     // f32 or bf16
  DType weight_type = DType::kBF16;  // f32 or bf16
  int64_t rows = 0;
  int64_t dim = 0;
  float eps = 1e-6f;
};

// With residual: residual += x (rounded to act_type), out = RmsNorm(residual) * weight.
// Without: out = RmsNorm(x) * weight.
void RmsNorm(const RmsNormArgs& args, Stream stream);

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_RMSNORM_H_
