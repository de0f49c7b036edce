// The host-side half of the CUDA paged attention: how a batch of sequences (prefill
// chunks and decodes mixed) becomes thread blocks. Plain C++ so it is unit-tested on the
// CPU. One block per (work item, kv head); a work item is up to tokens_per_tile
// consecutive new tokens of one sequence, whose queries for all heads sharing that kv head
// are processed together so each key and value is read once per tile.
#ifndef MOESERVE_KERNELS_ATTENTION_PLAN_H_
#define MOESERVE_KERNELS_ATTENTION_PLAN_H_

#include <algorithm>
#include <cstdint>
#include <vector>

namespace moeserve::attention {

// Query rows (token, head) one block holds at most, when a sequence has several tokens.
inline constexpr int64_t kMaxRowsPerTile = 16;
// Split-KV limits: no split shorter than this many keys, and at most this many splits.
inline constexpr int64_t kMinKeysPerSplit = 256;
inline constexpr int64_t kMaxSplits = 32;
inline constexpr int64_t kKeyTile = 32;  // the kernel's key tile; split lengths are multiples

struct SeqInput {
  int32_t token_begin = 0;
  int32_t num_tokens = 0;
  int32_t context_len = 0;
  const int32_t* block_table = nullptr;  // [ceil(context_len / block_size)], host memory
};

// What the kernel reads per sequence and per work item (int32 fields only: the plan is
// uploaded as one int32 array).
struct SeqInfo {
  int32_t token_begin;
  int32_t num_tokens;
  int32_t context_len;
  int32_t table_begin;  // index of the sequence's block table in the packed tables
};
struct WorkItem {
  int32_t seq;
  int32_t token_start;  // first of the item's tokens, counted within the sequence
};

struct Plan {
  int32_t tokens_per_tile = 1;
  int32_t num_seqs = 0;
  int32_t num_work = 0;
  int32_t max_context = 0;
  // Key splits: split s of a work item covers keys [s * split_keys, (s + 1) * split_keys).
  int32_t num_splits = 1;
  int32_t split_keys = 0;
  // [num_seqs] SeqInfo, then [num_work] WorkItem, then every block table in sequence order.
  std::vector<int32_t> packed;
  int64_t work_offset() const { return 4 * int64_t{num_seqs}; }
  int64_t tables_offset() const { return work_offset() + 2 * int64_t{num_work}; }
};

// Decode-only batches take one token per tile (no rows wasted on absent tokens); otherwise
// as many tokens as keep tokens * group within kMaxRowsPerTile (at least one).
inline int32_t TokensPerTile(int32_t max_tokens, int64_t group) {
  if (max_tokens <= 1) return 1;
  const int64_t fit = std::max<int64_t>(1, kMaxRowsPerTile / group);
  return static_cast<int32_t>(std::min<int64_t>(fit, max_tokens));
}

// Fills *plan (reusing its capacity). REQUIRES: 0 < num_tokens <= context_len per sequence.
inline void PlanPagedAttention(const SeqInput* seqs, int32_t num_seqs, int64_t group,
                               int64_t block_size, Plan* plan) {
  int32_t max_tokens = 0;
  int64_t num_work = 0;
  plan->max_context = 0;
  for (int32_t s = 0; s < num_seqs; ++s) {
    max_tokens = std::max(max_tokens, seqs[s].num_tokens);
    plan->max_context = std::max(plan->max_context, seqs[s].context_len);
  }
  plan->num_splits = 1;
  plan->split_keys = plan->max_context;
  plan->tokens_per_tile = TokensPerTile(max_tokens, group);
  const int32_t tq = plan->tokens_per_tile;
  for (int32_t s = 0; s < num_seqs; ++s) num_work += (seqs[s].num_tokens + tq - 1) / tq;
  plan->num_seqs = num_seqs;
  plan->num_work = static_cast<int32_t>(num_work);
  std::vector<int32_t>& p = plan->packed;
  p.assign(plan->tables_offset(), 0);
  int32_t table_begin = 0;
  int64_t w = plan->work_offset();
  for (int32_t s = 0; s < num_seqs; ++s) {
    const SeqInput& in = seqs[s];
    const int64_t blocks = (in.context_len + block_size - 1) / block_size;
    p[4 * s] = in.token_begin;
    p[4 * s + 1] = in.num_tokens;
    p[4 * s + 2] = in.context_len;
    p[4 * s + 3] = table_begin;
    for (int32_t t = 0; t < in.num_tokens; t += tq) {
      p[w++] = s;
      p[w++] = t;
    }
    p.insert(p.end(), in.block_table, in.block_table + blocks);
    table_begin += static_cast<int32_t>(blocks);
  }
}

// Splits the keys when num_work * num_kv_heads blocks fall short of target_blocks (about
// two per SM): as many splits as fill the target, none shorter than kMinKeysPerSplit, at
// most kMaxSplits, lengths rounded up to whole key tiles. Call after PlanPagedAttention.
inline void PlanKeySplits(int64_t num_kv_heads, int64_t target_blocks, Plan* plan) {
  plan->num_splits = 1;
  plan->split_keys = plan->max_context;
  const int64_t blocks = int64_t{plan->num_work} * num_kv_heads;
  if (blocks == 0 || blocks >= target_blocks) return;
  const int64_t context = plan->max_context;
  int64_t splits = std::min({(target_blocks + blocks - 1) / blocks,
                             (context + kMinKeysPerSplit - 1) / kMinKeysPerSplit, kMaxSplits});
  if (splits <= 1) return;
  const int64_t per_split = (context + splits - 1) / splits;
  const int64_t keys = (per_split + kKeyTile - 1) / kKeyTile * kKeyTile;
  splits = (context + keys - 1) / keys;
  plan->num_splits = static_cast<int32_t>(splits);
  plan->split_keys = static_cast<int32_t>(keys);
}

}  // namespace moeserve::attention

#endif  // MOESERVE_KERNELS_ATTENTION_PLAN_H_
