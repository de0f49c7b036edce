// Grouping a MoE layer's (token, choice) pairs by expert on the device, and the weighted
// sum that undoes it (kernels/cpu/moe.h GroupByExpert and MoeUnpermute are the reference).
// Stable: within an expert, pairs keep their order t * k + j, so results do not depend on
// thread timing.
#ifndef MOESERVE_KERNELS_CUDA_MOE_PERMUTE_H_
#define MOESERVE_KERNELS_CUDA_MOE_PERMUTE_H_

#include <cstdint>

#include "common/dtype.h"
#include "kernels/cuda/stream.h"

namespace moeserve::cuda {

inline constexpr int32_t kMaxExperts = 256;

// ids: [num_pairs], each in [0, num_experts); offsets: [num_experts + 1] (exclusive scan of
// the per-expert counts); pair_rows: [num_pairs], the permuted row of each pair.
// One block: counts, scan, then placement in chunks of pairs with per-warp ranks.
// REQUIRES: num_experts <= kMaxExperts.
void GroupByExpert(const int32_t* ids, int64_t num_pairs, int32_t num_experts, int32_t* offsets,
                   int32_t* pair_rows, Stream stream);

// permuted[pair_rows[t * k + j]] = x[t]. x: [n, dim]; permuted: [n * k, dim]; one type.
void PermuteRows(const void* x, DType type, const int32_t* pair_rows, int64_t n, int32_t k,
                 int64_t dim, void* permuted, Stream stream);

struct UnpermuteArgs {
  const void* y = nullptr;  // [n * k, dim] of y_type
  DType y_type = DType::kBF16;
  const int32_t* pair_rows = nullptr;  // [n * k]
  const float* weights = nullptr;      // [n, k]; null for weights of 1
  void* out = nullptr;                 // [n, dim] of out_type
  DType out_type = DType::kBF16;
  int64_t n = 0;
  int32_t k = 0;
  int64_t dim = 0;
  float scale = 1.0f;
  bool accumulate = false;
};

// out[t] = (accumulate ? out[t] : 0) + sum over j = 0..k-1, in order, of
// (scale * weights[t, j]) * y[pair_rows[t * k + j]], in f32, stored once.
void MoeUnpermute(const UnpermuteArgs& args, Stream stream);

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_MOE_PERMUTE_H_
