// Row gather on the device: embedding lookup and GatherRows, converting the element type
// on the way (a bf16 embedding table into an f32 residual stream, say).
#ifndef MOESERVE_KERNELS_CUDA_GATHER_H_
#define MOESERVE_KERNELS_CUDA_GATHER_H_

#include <cstdint>

#include "common/dtype.h"
#include "kernels/cuda/stream.h"

namespace moeserve::cuda {

// dst[i] = src[rows[i]] for i < n. src: [src_rows, dim] of src_type; rows: [n] on the
// device, each in [0, src_rows); dst: [n, dim] of dst_type. Types: f32 or bf16.
void GatherRows(const void* src, DType src_type, const int32_t* rows, int64_t n, int64_t dim,
                void* dst, DType dst_type, Stream stream);

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_GATHER_H_
