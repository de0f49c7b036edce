#include "engine/kv_cache_manager.h"

namespace moeserve {

bool KvCacheManager::AllocateSlots(Sequence& seq, int32_t total_tokens) {
  const int32_t needed = BlocksFor(total_tokens) - static_cast<int32_t>(seq.blocks.size());
  if (needed <= 0) return true;
  return pool_.Allocate(needed, &seq.blocks);
}

void KvCacheManager::Free(Sequence& seq) {
  pool_.Free(seq.blocks);
  seq.blocks.clear();
}

}  // namespace moeserve
