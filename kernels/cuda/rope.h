// Rotary position embedding on the device, in place, both layouts of kernels/cpu/rope.h
// (the reference): kHalf pairs dimension i with i + rotary_dim / 2, kAdjacent pairs 2i
// with 2i + 1. Angles position * inv_freq and their cos/sin in f32 as transformers does.
#ifndef MOESERVE_KERNELS_CUDA_ROPE_H_
#define MOESERVE_KERNELS_CUDA_ROPE_H_

#include <cstdint>

#include "common/dtype.h"
#include "kernels/cuda/stream.h"

namespace moeserve::cuda {

struct RopeArgs {
  void* x = nullptr;                   // [n, num_heads, head_dim] of type, rotated in place
  DType type = DType::kBF16;           // f32 or bf16
  const int32_t* positions = nullptr;  // [n], device
  const float* inv_freq = nullptr;     // [rotary_dim / 2], device
  int64_t n = 0;
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  int64_t half_rotary = 0;  // rotary_dim / 2 <= head_dim / 2; dimensions past rotary pass
  bool adjacent = false;    // kAdjacent layout; kHalf otherwise
};

void Rope(const RopeArgs& args, Stream stream);

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_ROPE_H_
