// Physical KV-cache storage on the backend's device: per layer, K and V of shape
// [num_blocks, block_size, num_kv_heads, head_dim]. Which request owns which block is
// the BlockPool's and the requests' business, not this class's.
#ifndef MOESERVE_ENGINE_KV_CACHE_H_
#define MOESERVE_ENGINE_KV_CACHE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "common/tensor.h"
#include "engine/backend.h"
#include "engine/model_config.h"

namespace moeserve {

class KvCache {
 public:
  // The cache in `dtype` on `backend`'s device; host f32 memory when backend is null.
  KvCache(const ModelConfig& config, int32_t num_blocks, int32_t block_size,
          Backend* backend = nullptr, DType dtype = DType::kF32);
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int32_t num_blocks() const { return num_blocks_; }
  int32_t block_size() const { return block_size_; }
  Tensor k(int layer) const { return k_[layer]; }  // [num_blocks, block_size, kv_heads, hd]
  Tensor v(int layer) const { return v_[layer]; }

  // Bytes of K and V for one block across all layers, for sizing from a memory budget.
  static int64_t BytesPerBlock(const ModelConfig& config, int32_t block_size,
                               DType dtype = DType::kF32);

 private:
  int32_t num_blocks_;
  int32_t block_size_;
  std::unique_ptr<float[]> host_storage_;
  std::unique_ptr<BackendBuffer> storage_;
  std::vector<Tensor> k_;
  std::vector<Tensor> v_;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_KV_CACHE_H_
