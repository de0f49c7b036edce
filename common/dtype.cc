#include "common/dtype.h"

#include <bit>
#include <cstring>

#include "common/logging.h"

namespace moeserve {

std::string_view DTypeName(DType type) {
  switch (type) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
    case DType::kQ8_0: return "q8_0";
    case DType::kQ4_0: return "q4_0";
    case DType::kQ4_1: return "q4_1";
    case DType::kQ4_K: return "q4_k";
    case DType::kQ6_K: return "q6_k";
  }
  return "unknown";
}

int64_t DTypeBlockSize(DType type) {
  switch (type) {
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1: return 32;
    case DType::kQ4_K:
    case DType::kQ6_K: return 256;
    default: return 1;
  }
}

int64_t DTypeBlockBytes(DType type) {
  switch (type) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
    case DType::kQ8_0: return 2 + 32;
    case DType::kQ4_0: return 2 + 16;
    case DType::kQ4_1: return 2 + 2 + 16;
    case DType::kQ4_K: return 2 + 2 + 12 + 128;
    case DType::kQ6_K: return 128 + 64 + 16 + 2;
  }
  return 0;
}

int64_t DTypeRowBytes(DType type, int64_t num_elements) {
  const int64_t block = DTypeBlockSize(type);
  CHECK(num_elements % block == 0);
  return num_elements / block * DTypeBlockBytes(type);
}

bool DTypeIsQuantized(DType type) { return DTypeBlockSize(type) > 1; }

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      mantissa &= 0x3ff;
      bits = sign | (exponent << 23) | (mantissa << 13);
    }
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t F32ToF16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000u) {  // Inf or NaN
    return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
  }
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // rounds to Inf (>= 65520)
  if (abs < 0x38800000u) {                        // result is subnormal or zero
    if (abs < 0x33000000u) return sign;           // below half the smallest subnormal
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7fffff) | 0x800000;
    // value = mantissa * 2^(exponent - 150); in units of the f16 subnormal step 2^-24
    // that is a right shift by (126 - exponent), 14..24 here.
    const uint32_t shift = 126 - exponent;
    const uint32_t kept = mantissa >> shift;
    const uint32_t rem = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    uint32_t result = kept;
    if (rem > halfway || (rem == halfway && (kept & 1))) ++result;
    return sign | static_cast<uint16_t>(result);
  }
  // Normal: rebias the exponent and round the mantissa to 10 bits.
  uint32_t result = ((abs >> 23) - 127 + 15) << 10 | ((abs >> 13) & 0x3ff);
  const uint32_t rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (result & 1))) ++result;  // may carry into Inf
  return sign | static_cast<uint16_t>(result);
}

float BF16ToF32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t F32ToBF16(float f) {
  uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffff) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

}  // namespace moeserve
