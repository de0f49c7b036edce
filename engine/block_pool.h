// The free list of physical KV-cache blocks. Requests borrow blocks for their block
// tables and give them back when they finish or are aborted; num_free() returning to
// num_blocks() is the no-leak invariant tests check. Engine thread only.
#ifndef MOESERVE_ENGINE_BLOCK_POOL_H_
#define MOESERVE_ENGINE_BLOCK_POOL_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace moeserve {

class BlockPool {
 public:
  explicit BlockPool(int32_t num_blocks);

  int32_t num_blocks() const { return num_blocks_; }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }

  // Appends n free blocks to `blocks` and returns true, or returns false and leaves
  // `blocks` unchanged when fewer than n are free.
  bool Allocate(int32_t n, std::vector<int32_t>* blocks);

  // Returns blocks to the pool. REQUIRES: each was allocated and not yet freed.
  void Free(absl::Span<const int32_t> blocks);

 private:
  int32_t num_blocks_;
  std::vector<int32_t> free_;   // stack; the most recently freed block is reused first
  std::vector<bool> in_use_;    // [num_blocks], catches double frees
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_BLOCK_POOL_H_
