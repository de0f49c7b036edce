// Dequantization of GGUF block types to f32: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K,
// bit-exact with ggml's reference dequantize_row_* functions.
#ifndef MOESERVE_ENGINE_LOADERS_DEQUANTIZE_H_
#define MOESERVE_ENGINE_LOADERS_DEQUANTIZE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "common/dtype.h"

namespace moeserve {

// Writes `n` floats to `dst` from `src` holding DTypeRowBytes(type, n) bytes.
// InvalidArgument if n is not a multiple of the type's block size or the type is not a
// storage type (kI32).
absl::Status DequantizeRow(DType type, const void* src, float* dst, int64_t n);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_LOADERS_DEQUANTIZE_H_
