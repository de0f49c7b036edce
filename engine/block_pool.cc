#include "engine/block_pool.h"

#include "common/logging.h"

namespace moeserve {

BlockPool::BlockPool(int32_t num_blocks) : num_blocks_(num_blocks), in_use_(num_blocks, false) {
  CHECK(num_blocks > 0);
  free_.reserve(num_blocks);
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

bool BlockPool::Allocate(int32_t n, std::vector<int32_t>* blocks) {
  if (n > num_free()) return false;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t block = free_.back();
    free_.pop_back();
    in_use_[block] = true;
    blocks->push_back(block);
  }
  return true;
}

void BlockPool::Free(absl::Span<const int32_t> blocks) {
  for (int32_t block : blocks) {
    CHECK(block >= 0 && block < num_blocks_ && in_use_[block]);
    in_use_[block] = false;
    free_.push_back(block);
  }
}

}  // namespace moeserve
