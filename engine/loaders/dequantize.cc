#include "engine/loaders/dequantize.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace moeserve {
namespace {

// Block layouts (bytes), as ggml-common.h lays out block_q*:
//   Q8_0: d f16 | qs int8[32]
//   Q4_0: d f16 | qs uint8[16]          element j: low nibble of qs[j] (j < 16), high of qs[j-16]
//   Q4_1: d f16 | m f16 | qs uint8[16]  same nibble order
//   Q4_K: d f16 | dmin f16 | scales uint8[12] (8 x 6-bit scale + 8 x 6-bit min) | qs uint8[128]
//   Q6_K: ql uint8[128] | qh uint8[64] | scales int8[16] | d f16
// The arithmetic below follows ggml's reference dequantize_row_* operation for operation
// (same operand order, float throughout) so results match bit for bit.

// f16 -> f32 for every bit pattern. F16 tensors convert per element and every quantized
// block starts with f16 scales; a 256 KiB table lookup is several times faster than the
// bit-twiddling conversion and gives the same bits (it is built with F16ToF32).
const float* F16Table() {
  static const std::vector<float>* const table = [] {
    auto* t = new std::vector<float>(1 << 16);
    for (uint32_t h = 0; h < (1u << 16); ++h) (*t)[h] = F16ToF32(static_cast<uint16_t>(h));
    return t;
  }();
  return table->data();
}

inline float HalfAt(const float* table, const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return table[h];
}

void DequantizeF16(const uint8_t* __restrict src, float* __restrict dst, int64_t n) {
  const float* table = F16Table();
  for (int64_t i = 0; i < n; ++i) dst[i] = HalfAt(table, src + 2 * i);
}

void DequantizeBF16(const uint8_t* __restrict src, float* __restrict dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t b;
    std::memcpy(&b, src + 2 * i, sizeof(b));
    dst[i] = BF16ToF32(b);
  }
}

void DequantizeQ8_0(const uint8_t* __restrict src, float* __restrict dst, int64_t blocks) {
  const float* table = F16Table();
  for (int64_t b = 0; b < blocks; ++b, src += 34, dst += 32) {
    const float d = HalfAt(table, src);
    const auto* qs = reinterpret_cast<const int8_t*>(src + 2);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(qs[j]) * d;
  }
}

void DequantizeQ4_0(const uint8_t* __restrict src, float* __restrict dst, int64_t blocks) {
  const float* table = F16Table();
  for (int64_t b = 0; b < blocks; ++b, src += 18, dst += 32) {
    const float d = HalfAt(table, src);
    const uint8_t* qs = src + 2;
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
      dst[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

void DequantizeQ4_1(const uint8_t* __restrict src, float* __restrict dst, int64_t blocks) {
  const float* table = F16Table();
  for (int64_t b = 0; b < blocks; ++b, src += 20, dst += 32) {
    const float d = HalfAt(table, src);
    const float m = HalfAt(table, src + 2);
    const uint8_t* qs = src + 4;
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
      dst[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K block (ggml's get_scale_min_k4):
// bytes 0..3 hold scales 0..3 and bytes 4..7 mins 0..3 in their low 6 bits; sub-blocks 4..7
// keep their low 4 bits in the nibbles of bytes 8..11 and their top 2 bits in the top bits
// of bytes 0..3 (scales) and 4..7 (mins).
inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void DequantizeQ4_K(const uint8_t* __restrict src, float* __restrict dst, int64_t blocks) {
  const float* table = F16Table();
  for (int64_t b = 0; b < blocks; ++b, src += 144) {
    const float d = HalfAt(table, src);
    const float dmin = HalfAt(table, src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* q = src + 16;
    // Sub-blocks 2p and 2p+1 (32 elements each) share 32 bytes: low then high nibbles.
    for (int p = 0; p < 4; ++p, q += 32, dst += 64) {
      uint8_t sc;
      uint8_t mn;
      ScaleMinK4(2 * p, scales, &sc, &mn);
      const float d1 = d * sc;
      const float m1 = dmin * mn;
      ScaleMinK4(2 * p + 1, scales, &sc, &mn);
      const float d2 = d * sc;
      const float m2 = dmin * mn;
      for (int l = 0; l < 32; ++l) dst[l] = d1 * static_cast<float>(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) dst[l + 32] = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void DequantizeQ6_K(const uint8_t* __restrict src, float* __restrict dst, int64_t blocks) {
  const float* table = F16Table();
  for (int64_t b = 0; b < blocks; ++b, src += 210) {
    const float d = HalfAt(table, src + 208);
    const uint8_t* ql = src;
    const uint8_t* qh = src + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(src + 192);
    // Each half of 128 elements uses 64 bytes of low nibbles, 32 bytes of 2-bit highs and
    // 8 scales (one per 16 elements).
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, dst += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = static_cast<int8_t>((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = static_cast<int8_t>((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        dst[l] = d * sc[is] * static_cast<float>(q1);
        dst[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
        dst[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
        dst[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
      }
    }
  }
}

}  // namespace

absl::Status DequantizeRow(DType type, const void* src, float* dst, int64_t n) {
  if (type == DType::kI32) {
    return absl::InvalidArgumentError("DequantizeRow: i32 is not a float storage type");
  }
  const int64_t block = DTypeBlockSize(type);
  if (n < 0 || n % block != 0) {
    return absl::InvalidArgumentError(absl::StrCat("DequantizeRow: ", n, " elements of ",
                                                   std::string(DTypeName(type)),
                                                   " is not a whole number of blocks of ", block));
  }
  if (n == 0) return absl::OkStatus();  // src and dst may be null
  const auto* bytes = static_cast<const uint8_t*>(src);
  const int64_t blocks = n / block;
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case DType::kF16:
      DequantizeF16(bytes, dst, n);
      break;
    case DType::kBF16:
      DequantizeBF16(bytes, dst, n);
      break;
    case DType::kQ8_0:
      DequantizeQ8_0(bytes, dst, blocks);
      break;
    case DType::kQ4_0:
      DequantizeQ4_0(bytes, dst, blocks);
      break;
    case DType::kQ4_1:
      DequantizeQ4_1(bytes, dst, blocks);
      break;
    case DType::kQ4_K:
      DequantizeQ4_K(bytes, dst, blocks);
      break;
    case DType::kQ6_K:
      DequantizeQ6_K(bytes, dst, blocks);
      break;
    case DType::kI32:
      break;  // rejected above
  }
  return absl::OkStatus();
}

}  // namespace moeserve
