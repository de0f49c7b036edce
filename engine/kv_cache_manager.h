// Hands KV-cache blocks to sequences as they grow and takes them back, hiding the
// BlockPool from the scheduler. A sequence's block table always covers the tokens it has
// been given slots for. Engine thread only.
#ifndef MOESERVE_ENGINE_KV_CACHE_MANAGER_H_
#define MOESERVE_ENGINE_KV_CACHE_MANAGER_H_

#include <cstdint>

#include "engine/block_pool.h"
#include "engine/sequence.h"

namespace moeserve {

class KvCacheManager {
 public:
  KvCacheManager(int32_t num_blocks, int32_t block_size)
      : pool_(num_blocks), block_size_(block_size) {}

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return pool_.num_blocks(); }
  int32_t num_free_blocks() const { return pool_.num_free(); }
  // Share of blocks in use, for metrics.
  double usage() const {
    return 1.0 - static_cast<double>(pool_.num_free()) / pool_.num_blocks();
  }

  // Grows seq's block table to hold `total_tokens` tokens. Returns false, changing
  // nothing, when the pool is short.
  bool AllocateSlots(Sequence& seq, int32_t total_tokens);

  // Returns all of seq's blocks.
  void Free(Sequence& seq);

  // Blocks needed to hold n tokens.
  int32_t BlocksFor(int32_t n) const { return (n + block_size_ - 1) / block_size_; }

 private:
  BlockPool pool_;
  const int32_t block_size_;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_KV_CACHE_MANAGER_H_
