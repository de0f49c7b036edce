#include "engine/kv_cache.h"

namespace moeserve {

int64_t KvCache::BytesPerBlock(const ModelConfig& config, int32_t block_size) {
  return int64_t{2} * config.num_layers * block_size * config.num_kv_heads * config.head_dim *
         static_cast<int64_t>(sizeof(float));
}

KvCache::KvCache(const ModelConfig& config, int32_t num_blocks, int32_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  const int64_t per_layer =
      int64_t{num_blocks} * block_size * config.num_kv_heads * config.head_dim;
  // Uninitialised on purpose: a slot is always written before attention reads it.
  storage_.reset(new float[2 * per_layer * config.num_layers]);
  for (int32_t l = 0; l < config.num_layers; ++l) {
    float* base = storage_.get() + 2 * l * per_layer;
    k_.emplace_back(base, DType::kF32,
                    std::initializer_list<int64_t>{num_blocks, block_size, config.num_kv_heads,
                                                   config.head_dim});
    v_.emplace_back(base + per_layer, DType::kF32,
                    std::initializer_list<int64_t>{num_blocks, block_size, config.num_kv_heads,
                                                   config.head_dim});
  }
}

}  // namespace moeserve
