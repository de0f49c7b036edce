#include "engine/kv_cache_manager.h"

#include <vector>

#include "common/logging.h"

namespace moeserve {

int32_t KvCacheManager::AcquireCachedPrefix(Sequence& seq) {
  CHECK(seq.blocks.empty() && seq.num_computed == 0);
  seq.block_hashes.clear();
  if (!prefix_caching_) return 0;
  // Full blocks only, and never the last token: its logits are the step's output.
  const int32_t lookup_blocks = (seq.num_tokens() - 1) / block_size_;
  queries_ += seq.num_tokens();
  BlockHash parent = 0;
  for (int32_t b = 0; b < lookup_blocks; ++b) {
    const absl::Span<const int32_t> tokens(seq.tokens.data() + b * block_size_, block_size_);
    const BlockHash hash = HashBlock(parent, tokens);
    const int32_t block = pool_.Lookup(hash, parent, tokens);
    if (block < 0) break;
    pool_.Touch(block);
    seq.blocks.push_back(block);
    seq.block_hashes.push_back(hash);
    parent = hash;
  }
  seq.num_computed = static_cast<int32_t>(seq.blocks.size()) * block_size_;
  hits_ += seq.num_computed;
  return seq.num_computed;
}

bool KvCacheManager::AllocateSlots(Sequence& seq, int32_t total_tokens) {
  const int32_t needed = BlocksFor(total_tokens) - static_cast<int32_t>(seq.blocks.size());
  if (needed <= 0) return true;
  return pool_.Allocate(needed, &seq.blocks);
}

void KvCacheManager::CacheFullBlocks(Sequence& seq, int32_t num_tokens) {
  if (!prefix_caching_) return;
  CHECK(num_tokens <= seq.num_tokens() &&
        BlocksFor(num_tokens) <= static_cast<int32_t>(seq.blocks.size()));
  const int32_t full = num_tokens / block_size_;
  for (int32_t b = static_cast<int32_t>(seq.block_hashes.size()); b < full; ++b) {
    const BlockHash parent = b == 0 ? 0 : seq.block_hashes[b - 1];
    const absl::Span<const int32_t> tokens(seq.tokens.data() + b * block_size_, block_size_);
    const BlockHash hash = HashBlock(parent, tokens);
    pool_.Register(seq.blocks[b], hash, parent, tokens);
    seq.block_hashes.push_back(hash);
  }
}

void KvCacheManager::Free(Sequence& seq) {
  // Last block first: a request's tail is evicted before its head, which others share.
  const std::vector<int32_t> reversed(seq.blocks.rbegin(), seq.blocks.rend());
  pool_.Free(reversed);
  seq.blocks.clear();
  seq.block_hashes.clear();
}

}  // namespace moeserve
