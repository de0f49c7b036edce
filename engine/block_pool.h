// The physical KV-cache blocks: reference counts, the free queue, and the prefix cache.
// Requests borrow blocks for their block tables and give them back when they finish or
// are aborted; num_free() returning to num_blocks() is the no-leak invariant tests check.
//
// Prefix caching (vLLM v1's design): a full block is registered under the hash of its
// tokens chained with its predecessor's hash, so equal prefixes give equal hash chains. A
// freed block keeps its registration while it sits in the free queue; another request
// with the same prefix takes it back (its reference count goes from 0 to 1) instead of
// recomputing it. Allocation takes the least recently freed block first and evicts its
// registration. Lookups compare the stored tokens and parent, so a hash collision can
// never hand out a wrong block. Engine thread only.
#ifndef MOESERVE_ENGINE_BLOCK_POOL_H_
#define MOESERVE_ENGINE_BLOCK_POOL_H_

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "absl/types/span.h"

namespace moeserve {

// The identity of a full block's contents: its tokens and everything before them.
using BlockHash = uint64_t;

// Hash of a block holding `tokens` after a prefix whose last block hashed to `parent`
// (0 for the first block).
BlockHash HashBlock(BlockHash parent, absl::Span<const int32_t> tokens);

class BlockPool {
 public:
  explicit BlockPool(int32_t num_blocks);

  int32_t num_blocks() const { return num_blocks_; }
  // Blocks no request holds (cached or not): what Allocate can hand out.
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }
  // Blocks registered in the prefix cache (held or free).
  int32_t num_cached() const { return static_cast<int32_t>(cached_.size()); }

  // Appends n free blocks to `blocks` (reference count 1, prefix-cache registration
  // evicted) and returns true, or returns false and leaves `blocks` unchanged when fewer
  // than n are free.
  bool Allocate(int32_t n, std::vector<int32_t>* blocks);

  // Drops one reference to each block; a block nobody holds goes to the back of the free
  // queue, keeping its registration. Blocks are queued in the given order, so callers pass
  // a request's blocks last-first: its tail is evicted before its head.
  // REQUIRES: each block is held.
  void Free(absl::Span<const int32_t> blocks);

  // The block registered under `hash` for `tokens` after `parent`, or -1.
  int32_t Lookup(BlockHash hash, BlockHash parent, absl::Span<const int32_t> tokens) const;

  // Takes a reference to a block found by Lookup (taking it off the free queue if nobody
  // held it).
  void Touch(int32_t block);

  // Registers held block `block` as holding `tokens` after `parent`, under `hash`. A block
  // already registered, or a hash already taken by another block, is left as it is.
  void Register(int32_t block, BlockHash hash, BlockHash parent, absl::Span<const int32_t> tokens);

  int32_t ref_count(int32_t block) const { return blocks_[block].ref_count; }

 private:
  struct BlockState {
    int32_t ref_count = 0;
    bool registered = false;
    BlockHash hash = 0;
    BlockHash parent = 0;
    std::vector<int32_t> tokens;            // the contents it is registered for
    std::list<int32_t>::iterator free_pos;  // valid while ref_count == 0
  };

  void Evict(int32_t block);

  const int32_t num_blocks_;
  std::vector<BlockState> blocks_;  // [num_blocks]
  std::list<int32_t> free_;         // least recently freed first
  std::unordered_map<BlockHash, int32_t> cached_;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_BLOCK_POOL_H_
