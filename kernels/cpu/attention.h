// Causal grouped-query attention whose keys and values live in a paged KV cache.
// Physical cache per layer: [num_blocks, block_size, num_kv_heads, head_dim] for K and for
// V. A sequence's logical key position p lives in block block_table[p / block_size] at
// offset p % block_size. The new tokens of a step are written with WriteKv before
// attention runs, so a step's queries see the cached prefix and the new tokens alike.
#ifndef MOESERVE_KERNELS_CPU_ATTENTION_H_
#define MOESERVE_KERNELS_CPU_ATTENTION_H_

#include <cstdint>

#include "absl/types/span.h"
#include "common/thread_pool.h"

namespace moeserve::cpu {

struct AttentionShape {
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // divides num_heads
  int64_t head_dim = 0;      // at most kMaxHeadDim
  int64_t block_size = 0;
  float scale = 0.0f;        // usually 1 / sqrt(head_dim)
};

inline constexpr int64_t kMaxHeadDim = 512;

// One sequence of a batch. Its new tokens occupy rows [token_begin, token_begin +
// num_tokens) of q and out and are the last num_tokens of its context_len keys.
struct AttentionSequence {
  int32_t token_begin = 0;
  int32_t num_tokens = 0;
  int32_t context_len = 0;
  const int32_t* block_table = nullptr;  // [ceil(context_len / block_size)]
};

// k, v: [num_tokens, num_kv_heads, head_dim]; slots: [num_tokens], slot = block *
// block_size + offset; k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim].
void WriteKv(const float* k, const float* v, const int32_t* slots, int64_t num_tokens,
             int64_t kv_width, float* k_cache, float* v_cache);

// q, out: [total_tokens, num_heads, head_dim]. Softmax in f32 with a running maximum.
void PagedAttention(const float* q, const float* k_cache, const float* v_cache,
                    absl::Span<const AttentionSequence> sequences, const AttentionShape& shape,
                    float* out, ThreadPool* pool);

}  // namespace moeserve::cpu

#endif  // MOESERVE_KERNELS_CPU_ATTENTION_H_
