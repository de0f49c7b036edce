// Writes a step's new keys and values into the paged KV cache on the device (the layout
// of kernels/cpu/attention.h: [num_blocks, block_size, num_kv_heads, head_dim], slot =
// block * block_size + offset).
#ifndef MOESERVE_KERNELS_CUDA_KV_WRITE_H_
#define MOESERVE_KERNELS_CUDA_KV_WRITE_H_

#include <cstdint>

#include "common/dtype.h"
#include "kernels/cuda/stream.h"

namespace moeserve::cuda {

// k, v: [n, kv_width] of src_type; slots: [n] on the device; caches of cache_type with
// kv_width elements per slot. A negative slot skips its token (padding).
void WriteKv(const void* k, const void* v, DType src_type, const int32_t* slots, int64_t n,
             int64_t kv_width, void* k_cache, void* v_cache, DType cache_type, Stream stream);

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_KV_WRITE_H_
