// Element types of tensors: the float types the backends compute in and the GGUF block
// quantization types the loaders read. Conversions between f16/bf16 and f32 live here so
// every module rounds the same way.
#ifndef MOESERVE_COMMON_DTYPE_H_
#define MOESERVE_COMMON_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace moeserve {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kI32,
  kQ8_0,  // blocks of 32: f16 scale + 32 x int8
  kQ4_0,  // blocks of 32: f16 scale + 16 bytes of nibbles, value = (q - 8) * d
  kQ4_1,  // blocks of 32: f16 scale, f16 min + 16 bytes of nibbles, value = q * d + m
  kQ4_K,  // super-blocks of 256: 8 sub-blocks with 6-bit scales and mins
  kQ6_K,  // super-blocks of 256: 16 sub-blocks with int8 scales, 6-bit quants
};

std::string_view DTypeName(DType type);

// Elements per block (1 for plain types) and bytes per block.
int64_t DTypeBlockSize(DType type);
int64_t DTypeBlockBytes(DType type);

// Bytes taken by `num_elements` elements; REQUIRES: num_elements % DTypeBlockSize == 0.
int64_t DTypeRowBytes(DType type, int64_t num_elements);

bool DTypeIsQuantized(DType type);

// IEEE half and bfloat16 conversions, round-to-nearest-even, NaN and Inf preserved.
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);
float BF16ToF32(uint16_t b);
uint16_t F32ToBF16(float f);

}  // namespace moeserve

#endif  // MOESERVE_COMMON_DTYPE_H_
