#include "engine/block_pool.h"

#include <algorithm>

#include "common/logging.h"

namespace moeserve {

BlockHash HashBlock(BlockHash parent, absl::Span<const int32_t> tokens) {
  // FNV-1a over the parent hash and the token ids, then a final avalanche (splitmix64).
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ULL;
    }
  };
  mix(parent);
  for (int32_t t : tokens) mix(static_cast<uint32_t>(t));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

BlockPool::BlockPool(int32_t num_blocks) : num_blocks_(num_blocks), blocks_(num_blocks) {
  CHECK(num_blocks > 0);
  for (int32_t b = 0; b < num_blocks; ++b) {
    free_.push_back(b);
    blocks_[b].free_pos = std::prev(free_.end());
  }
}

bool BlockPool::Allocate(int32_t n, std::vector<int32_t>* blocks) {
  if (n > num_free()) return false;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t block = free_.front();
    free_.pop_front();
    BlockState& state = blocks_[block];
    CHECK(state.ref_count == 0);
    if (state.registered) Evict(block);
    state.ref_count = 1;
    blocks->push_back(block);
  }
  return true;
}

void BlockPool::Free(absl::Span<const int32_t> blocks) {
  for (int32_t block : blocks) {
    CHECK(block >= 0 && block < num_blocks_ && blocks_[block].ref_count > 0);
    BlockState& state = blocks_[block];
    if (--state.ref_count == 0) {
      free_.push_back(block);
      state.free_pos = std::prev(free_.end());
    }
  }
}

int32_t BlockPool::Lookup(BlockHash hash, BlockHash parent,
                          absl::Span<const int32_t> tokens) const {
  const auto it = cached_.find(hash);
  if (it == cached_.end()) return -1;
  const BlockState& state = blocks_[it->second];
  if (state.parent != parent ||
      !std::equal(state.tokens.begin(), state.tokens.end(), tokens.begin(), tokens.end())) {
    return -1;  // a collision: same hash, other contents
  }
  return it->second;
}

void BlockPool::Touch(int32_t block) {
  BlockState& state = blocks_[block];
  CHECK(state.registered);
  if (state.ref_count++ == 0) free_.erase(state.free_pos);
}

void BlockPool::Register(int32_t block, BlockHash hash, BlockHash parent,
                         absl::Span<const int32_t> tokens) {
  BlockState& state = blocks_[block];
  CHECK(state.ref_count > 0);
  if (state.registered || cached_.count(hash) > 0) return;
  state.registered = true;
  state.hash = hash;
  state.parent = parent;
  state.tokens.assign(tokens.begin(), tokens.end());
  cached_.emplace(hash, block);
}

void BlockPool::Evict(int32_t block) {
  BlockState& state = blocks_[block];
  cached_.erase(state.hash);
  state.registered = false;
  state.tokens.clear();
}

}  // namespace moeserve
