#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/logging.h"

namespace moeserve::cpu {
namespace {

// Work item: one query token and one KV head with the group of query heads sharing it.
struct Item {
  const AttentionSequence* seq;
  int32_t token;  // index within the sequence's new tokens
  int32_t kv_head;
};

void AttendGroup(const float* q, const float* k_cache, const float* v_cache, const Item& item,
                 const AttentionShape& shape, float* out) {
  const int64_t group = shape.num_heads / shape.num_kv_heads;
  const int64_t hd = shape.head_dim;
  const int64_t kv_width = shape.num_kv_heads * hd;
  const AttentionSequence& seq = *item.seq;
  const int64_t row = seq.token_begin + item.token;
  // Causal: this token sits at key position context_len - num_tokens + token.
  const int64_t num_keys = seq.context_len - seq.num_tokens + item.token + 1;

  float acc[8][kMaxHeadDim];
  float max_score[8];
  float denom[8];
  for (int64_t g0 = 0; g0 < group; g0 += 8) {
    const int64_t gn = std::min<int64_t>(8, group - g0);
    for (int64_t g = 0; g < gn; ++g) {
      std::fill(acc[g], acc[g] + hd, 0.0f);
      max_score[g] = -std::numeric_limits<float>::infinity();
      denom[g] = 0.0f;
    }
    for (int64_t p = 0; p < num_keys; ++p) {
      const int64_t slot = static_cast<int64_t>(seq.block_table[p / shape.block_size]) *
                               shape.block_size +
                           p % shape.block_size;
      const float* k = k_cache + slot * kv_width + item.kv_head * hd;
      const float* v = v_cache + slot * kv_width + item.kv_head * hd;
      for (int64_t g = 0; g < gn; ++g) {
        const int64_t head = item.kv_head * group + g0 + g;
        const float* qh = q + (row * shape.num_heads + head) * hd;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t d = 0; d < hd; ++d) dot += qh[d] * k[d];
        const float score = dot * shape.scale;
        if (score > max_score[g]) {
          // Rescale what was accumulated under the old maximum.
          const float correction = std::exp(max_score[g] - score);
          denom[g] *= correction;
          for (int64_t d = 0; d < hd; ++d) acc[g][d] *= correction;
          max_score[g] = score;
        }
        const float weight = std::exp(score - max_score[g]);
        denom[g] += weight;
        for (int64_t d = 0; d < hd; ++d) acc[g][d] += weight * v[d];
      }
    }
    for (int64_t g = 0; g < gn; ++g) {
      const int64_t head = item.kv_head * group + g0 + g;
      float* o = out + (row * shape.num_heads + head) * hd;
      const float inv = 1.0f / denom[g];
      for (int64_t d = 0; d < hd; ++d) o[d] = acc[g][d] * inv;
    }
  }
}

}  // namespace

void WriteKv(const float* k, const float* v, const int32_t* slots, int64_t num_tokens,
             int64_t kv_width, float* k_cache, float* v_cache) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    std::memcpy(k_cache + static_cast<int64_t>(slots[t]) * kv_width, k + t * kv_width,
                kv_width * sizeof(float));
    std::memcpy(v_cache + static_cast<int64_t>(slots[t]) * kv_width, v + t * kv_width,
                kv_width * sizeof(float));
  }
}

void PagedAttention(const float* q, const float* k_cache, const float* v_cache,
                    absl::Span<const AttentionSequence> sequences, const AttentionShape& shape,
                    float* out, ThreadPool* pool) {
  CHECK(shape.head_dim <= kMaxHeadDim);
  CHECK(shape.num_kv_heads > 0 && shape.num_heads % shape.num_kv_heads == 0);
  std::vector<Item> items;
  for (const AttentionSequence& seq : sequences) {
    CHECK(seq.num_tokens <= seq.context_len);
    for (int32_t t = 0; t < seq.num_tokens; ++t) {
      for (int32_t h = 0; h < shape.num_kv_heads; ++h) items.push_back({&seq, t, h});
    }
  }
  // Later tokens attend to more keys; interleave so each thread gets a similar share.
  const int64_t n = static_cast<int64_t>(items.size());
  const int threads = pool->num_threads();
  pool->ParallelFor(threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t worker = begin; worker < end; ++worker) {
      for (int64_t i = worker; i < n; i += threads) {
        AttendGroup(q, k_cache, v_cache, items[i], shape, out);
      }
    }
  });
}

}  // namespace moeserve::cpu
