// MoE routing on the device: router logits -> k (expert, weight) pairs per token with each
// family's math (engine/backend.h RouterMath; kernels/cpu/moe.h RouteTopK is the reference
// and this kernel follows its arithmetic order). Ties go to the lower expert index.
#ifndef MOESERVE_KERNELS_CUDA_MOE_ROUTE_H_
#define MOESERVE_KERNELS_CUDA_MOE_ROUTE_H_

#include <cstdint>

#include "kernels/cuda/stream.h"

namespace moeserve::cuda {

inline constexpr int32_t kMaxTopK = 16;

enum class RouteMath { kSoftmaxTopK, kTopKSoftmax, kTopKLogits };

struct RouteArgs {
  const float* logits = nullptr;  // [n, num_experts]
  int32_t* ids = nullptr;         // [n, top_k], decreasing score
  float* weights = nullptr;       // [n, top_k]
  int64_t n = 0;
  int32_t num_experts = 0;
  int32_t top_k = 0;  // 1..min(num_experts, kMaxTopK)
  RouteMath math = RouteMath::kSoftmaxTopK;
  bool renormalize = false;  // kSoftmaxTopK only
};

void Route(const RouteArgs& args, Stream stream);

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_MOE_ROUTE_H_
