// Hands KV-cache blocks to sequences as they grow and takes them back, hiding the
// BlockPool from the scheduler. A sequence's block table always covers the tokens it has
// been given slots for. With prefix caching, a new sequence starts from the longest run of
// full blocks some earlier sequence computed for the same tokens, and every block a
// sequence fills is registered for later ones. Engine thread only.
#ifndef MOESERVE_ENGINE_KV_CACHE_MANAGER_H_
#define MOESERVE_ENGINE_KV_CACHE_MANAGER_H_

#include <cstdint>

#include "engine/block_pool.h"
#include "engine/sequence.h"

namespace moeserve {

class KvCacheManager {
 public:
  KvCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching = false)
      : pool_(num_blocks), block_size_(block_size), prefix_caching_(enable_prefix_caching) {}

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return pool_.num_blocks(); }
  int32_t num_free_blocks() const { return pool_.num_free(); }
  bool prefix_caching() const { return prefix_caching_; }
  // Share of blocks held by requests, for metrics (cached free blocks count as free).
  double usage() const { return 1.0 - static_cast<double>(pool_.num_free()) / pool_.num_blocks(); }
  // Prompt tokens looked up in the prefix cache, and those found, since start.
  int64_t prefix_cache_queries() const { return queries_; }
  int64_t prefix_cache_hits() const { return hits_; }

  // For a sequence about to be admitted (no blocks, nothing computed): takes the longest
  // cached run of its full blocks, leaving at least its last token to compute so that the
  // step yields logits, and marks those tokens computed. Returns the tokens found (0
  // without prefix caching).
  int32_t AcquireCachedPrefix(Sequence& seq);

  // Grows seq's block table to hold `total_tokens` tokens. Returns false, changing
  // nothing, when the pool is short.
  bool AllocateSlots(Sequence& seq, int32_t total_tokens);

  // Registers the blocks that seq's first num_tokens tokens fill, as soon as the step that
  // computes them is scheduled: a sequence admitted later in the same step (a sibling of
  // an n > 1 request, or another request with the same prefix) can then share them, since
  // Model::Forward writes every token's K/V of a layer before any attention of that layer
  // reads. REQUIRES: seq holds blocks for num_tokens tokens, and they are computed in the
  // step being scheduled or before.
  void CacheFullBlocks(Sequence& seq, int32_t num_tokens);

  // Returns all of seq's blocks (their cache registrations stay until evicted).
  void Free(Sequence& seq);

  // Blocks needed to hold n tokens.
  int32_t BlocksFor(int32_t n) const { return (n + block_size_ - 1) / block_size_; }

  // The pool, for tests.
  const BlockPool& pool() const { return pool_; }

 private:
  BlockPool pool_;
  const int32_t block_size_;
  const bool prefix_caching_;
  int64_t queries_ = 0;
  int64_t hits_ = 0;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_KV_CACHE_MANAGER_H_
