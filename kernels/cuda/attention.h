// Causal paged attention with GQA on the device over a batch mixing prefill chunks and
// decodes (kernels/cpu/attention.h is the reference). Token i of a sequence with
// context_len C and num_tokens T sits at position C - T + i and sees keys 0..C - T + i.
// One block per (work item of kernels/attention_plan.h, kv head, key split); keys in tiles
// of 32 with an online softmax in f32. With several key splits, each block leaves its
// unnormalised partial result in a caller-owned workspace and a second kernel merges them.
#ifndef MOESERVE_KERNELS_CUDA_ATTENTION_H_
#define MOESERVE_KERNELS_CUDA_ATTENTION_H_

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"
#include "kernels/cuda/stream.h"

namespace moeserve::cuda {

struct PagedAttentionArgs {
  const void* q = nullptr;        // [total_tokens, num_heads, head_dim]
  const void* k_cache = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim]
  const void* v_cache = nullptr;
  void* out = nullptr;        // [total_tokens, num_heads, head_dim]
  DType type = DType::kBF16;  // of q, caches and out: f32 or bf16
  // The device copy of attention::Plan::packed and the plan's counts.
  const int32_t* plan = nullptr;
  int32_t num_seqs = 0;
  int32_t num_work = 0;
  int32_t tokens_per_tile = 1;
  int32_t num_splits = 1;
  int32_t split_keys = 0;  // keys per split; >= every context_len when num_splits == 1
  int64_t total_tokens = 0;
  // PagedAttentionWorkspaceBytes(...) bytes on the device; unused (may be null) with one
  // split.
  void* workspace = nullptr;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;
  float scale = 0.0f;
};

// f32 partial outputs [num_splits, total_tokens * num_heads, head_dim] and their running
// max and denominator [num_splits, total_tokens * num_heads, 2].
inline size_t PagedAttentionWorkspaceBytes(int64_t num_splits, int64_t total_tokens,
                                           int64_t num_heads, int64_t head_dim) {
  if (num_splits <= 1) return 0;
  return sizeof(float) *
         static_cast<size_t>(num_splits * total_tokens * num_heads * (head_dim + 2));
}

void PagedAttention(const PagedAttentionArgs& args, Stream stream);

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_ATTENTION_H_
