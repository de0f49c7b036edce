// The CPU reference of the MoE layer's ops (DESIGN.md sections 2 and 5): routing, the
// permutation that groups (token, choice) pairs by expert, the grouped GEMMs over those
// groups, and the weighted unpermute. The routing and grouping logic here is plain C++ on
// host arrays and is also what the CUDA backend's tile scheduling and tests build on.
#ifndef MOESERVE_KERNELS_CPU_MOE_H_
#define MOESERVE_KERNELS_CPU_MOE_H_

#include <cstdint>

#include "common/thread_pool.h"

namespace moeserve::cpu {

// Mirrors RouterMath in engine/backend.h (kernels cannot include engine headers).
enum class RouterMathKind { kSoftmaxTopK, kTopKSoftmax, kTopKLogits };

struct RouterSpec {
  RouterMathKind math = RouterMathKind::kSoftmaxTopK;
  int32_t num_experts = 0;
  int32_t top_k = 0;
  bool renormalize = false;
};

// logits: [n, num_experts]; ids, weights: [n, top_k], pair j of a token in order of
// decreasing score, ties to the lower expert index. All math in f32:
//   kSoftmaxTopK: p = softmax(logits); the k largest p; divided by their sum iff renormalize.
//   kTopKSoftmax: the k largest logits; weights = softmax over those k.
//   kTopKLogits:  the k largest logits are the weights.
void RouteTopK(const float* logits, int64_t n, const RouterSpec& spec, int32_t* ids,
               float* weights);

// Counting sort of the n * k pairs by expert, stable in pair order (t * k + j).
// ids: [n * k], each in [0, num_experts); offsets: [num_experts + 1], offsets[0] = 0 and
// expert e owning permuted rows [offsets[e], offsets[e + 1]); pair_rows: [n * k], the
// permuted row of each pair; row_pairs (may be null): [n * k], the inverse (the pair of
// each permuted row).
void GroupByExpert(const int32_t* ids, int64_t num_pairs, int32_t num_experts, int32_t* offsets,
                   int32_t* pair_rows, int32_t* row_pairs);

// For the rows of each expert e (offsets as GroupByExpert makes them, offsets[E] rows in
// all): act[r] = silu(x[r] · gate_eᵀ) * (x[r] · up_eᵀ). x: [rows, dim];
// w_gate_up: [num_experts, 2 * inter, dim] (each expert's gate rows, then its up rows), f32
// or bf16 bits (uint16_t: see gemm_bf16.h); scratch: [rows, 2 * inter]; act: [rows, inter].
template <typename W>
void GroupedGateUpSilu(const float* x, const W* w_gate_up, const int32_t* offsets,
                       int32_t num_experts, int64_t dim, int64_t inter, float* scratch,
                       float* act, ThreadPool* pool);

// For the rows of each expert e: y[r] = x[r] · w_eᵀ. x: [rows, k_dim];
// w: [num_experts, n_dim, k_dim], f32 or bf16 bits; y: [rows, n_dim].
template <typename W>
void GroupedLinear(const float* x, const W* w, const int32_t* offsets, int32_t num_experts,
                   int64_t k_dim, int64_t n_dim, float* y, ThreadPool* pool);

// out[t] = (accumulate ? out[t] : 0) + scale * sum_{j < k, in order} weights[t, j] *
// y[pair_rows[t * k + j]]. y: [n * k, dim]; pair_rows: [n * k]; weights: [n, k], or null
// for weights of 1; out: [n, dim].
void MoeUnpermute(const float* y, const int32_t* pair_rows, const float* weights, int64_t n,
                  int32_t k, int64_t dim, float scale, bool accumulate, float* out);

}  // namespace moeserve::cpu

#endif  // MOESERVE_KERNELS_CPU_MOE_H_
