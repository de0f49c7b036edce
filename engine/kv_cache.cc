#include "engine/kv_cache.h"

namespace moeserve {

int64_t KvCache::BytesPerBlock(const ModelConfig& config, int32_t block_size, DType dtype) {
  return int64_t{2} * config.num_layers * block_size * config.num_kv_heads * config.head_dim *
         DTypeRowBytes(dtype, 1);
}

KvCache::KvCache(const ModelConfig& config, int32_t num_blocks, int32_t block_size,
                 Backend* backend, DType dtype)
    : num_blocks_(num_blocks), block_size_(block_size) {
  const int64_t per_layer =
      int64_t{num_blocks} * block_size * config.num_kv_heads * config.head_dim;
  const int64_t element_bytes = DTypeRowBytes(dtype, 1);
  // Uninitialised on purpose: a slot is always written before attention reads it.
  char* base;
  Device device = Device::kCpu;
  if (backend == nullptr) {
    CHECK(dtype == DType::kF32);
    host_storage_.reset(new float[2 * per_layer * config.num_layers]);
    base = reinterpret_cast<char*>(host_storage_.get());
  } else {
    storage_ = backend->Allocate(2 * per_layer * config.num_layers * element_bytes);
    base = static_cast<char*>(storage_->data());
    device = backend->device();
  }
  for (int32_t l = 0; l < config.num_layers; ++l) {
    char* k = base + 2 * l * per_layer * element_bytes;
    const std::initializer_list<int64_t> shape = {num_blocks, block_size, config.num_kv_heads,
                                                  config.head_dim};
    k_.emplace_back(k, dtype, shape, device);
    v_.emplace_back(k + per_layer * element_bytes, dtype, shape, device);
  }
}

}  // namespace moeserve
