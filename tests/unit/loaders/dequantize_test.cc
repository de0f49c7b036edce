// Dequantization checked against values built the other way round: each test picks the
// logical quants and scales, packs them into blocks as the format describes, and expects
// the formula ggml's reference uses (same float operations, so bit-exact equality).
#include "engine/loaders/dequantize.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace moeserve {
namespace {

template <typename T>
void Put(std::vector<uint8_t>* block, size_t at, T value) {
  std::memcpy(block->data() + at, &value, sizeof(T));
}

// An f16 scale drawn from [lo, hi], and its exact f32 value.
struct Half {
  uint16_t bits;
  float value;
};
Half RandomHalf(std::mt19937& rng, float lo, float hi) {
  const uint16_t bits = F32ToF16(std::uniform_real_distribution<float>(lo, hi)(rng));
  return {bits, F16ToF32(bits)};
}

int RandomInt(std::mt19937& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// Dequantizes `bytes` with the code under test; the output is poisoned first.
std::vector<float> Dequantize(DType type, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(n, std::nanf(""));
  const absl::Status status = DequantizeRow(type, bytes.data(), out.data(), n);
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

void ExpectBitEqual(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(actual[i]), std::bit_cast<uint32_t>(expected[i]))
        << "element " << i << ": " << actual[i] << " vs " << expected[i];
  }
}

TEST(DequantizeTest, F32CopiesAndF16Bf16ConvertEveryBitPattern) {
  const std::vector<float> f32 = {1.0f, -0.0f, 3.5e-30f, INFINITY};
  std::vector<uint8_t> bytes(f32.size() * 4);
  std::memcpy(bytes.data(), f32.data(), bytes.size());
  ExpectBitEqual(Dequantize(DType::kF32, bytes, 4), f32);

  std::vector<uint8_t> halves(2 << 16);
  std::vector<float> f16_expected(1 << 16);
  std::vector<float> bf16_expected(1 << 16);
  for (uint32_t h = 0; h < (1u << 16); ++h) {
    Put<uint16_t>(&halves, 2 * h, static_cast<uint16_t>(h));
    f16_expected[h] = F16ToF32(static_cast<uint16_t>(h));
    bf16_expected[h] = std::bit_cast<float>(h << 16);  // bf16 is the top half of an f32
  }
  ExpectBitEqual(Dequantize(DType::kF16, halves, 1 << 16), f16_expected);
  ExpectBitEqual(Dequantize(DType::kBF16, halves, 1 << 16), bf16_expected);
  // Spot checks independent of F16ToF32.
  const std::vector<float> f16 = Dequantize(DType::kF16, halves, 1 << 16);
  EXPECT_EQ(f16[0x3c00], 1.0f);
  EXPECT_EQ(f16[0xc000], -2.0f);
  EXPECT_EQ(f16[0x0001], std::ldexp(1.0f, -24));
  EXPECT_EQ(f16[0x7bff], 65504.0f);
  EXPECT_TRUE(std::isinf(f16[0x7c00]));
  EXPECT_TRUE(std::isnan(f16[0x7e00]));
}

TEST(DequantizeTest, Q8_0) {
  std::mt19937 rng(1);
  constexpr int kBlocks = 5;
  std::vector<uint8_t> bytes(kBlocks * 34);
  std::vector<float> expected;
  for (int b = 0; b < kBlocks; ++b) {
    const Half d = RandomHalf(rng, -0.05f, 0.05f);
    Put(&bytes, b * 34, d.bits);
    for (int j = 0; j < 32; ++j) {
      const int8_t q = static_cast<int8_t>(RandomInt(rng, -128, 127));
      Put(&bytes, b * 34 + 2 + j, q);
      expected.push_back(static_cast<float>(q) * d.value);
    }
  }
  ExpectBitEqual(Dequantize(DType::kQ8_0, bytes, kBlocks * 32), expected);
}

// Q4_0 / Q4_1 nibbles: element j < 16 is the low nibble of qs[j], j >= 16 the high nibble
// of qs[j - 16].
void PackNibbles(const int (&q)[32], std::vector<uint8_t>* bytes, size_t at) {
  for (int j = 0; j < 16; ++j) (*bytes)[at + j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
}

TEST(DequantizeTest, Q4_0) {
  std::mt19937 rng(2);
  constexpr int kBlocks = 6;
  std::vector<uint8_t> bytes(kBlocks * 18);
  std::vector<float> expected;
  for (int b = 0; b < kBlocks; ++b) {
    const Half d = RandomHalf(rng, -0.2f, 0.2f);
    Put(&bytes, b * 18, d.bits);
    int q[32];
    for (int& v : q) v = RandomInt(rng, 0, 15);
    PackNibbles(q, &bytes, b * 18 + 2);
    for (const int v : q) expected.push_back(static_cast<float>(v - 8) * d.value);
  }
  ExpectBitEqual(Dequantize(DType::kQ4_0, bytes, kBlocks * 32), expected);
}

TEST(DequantizeTest, Q4_1WithNegativeScalesAndMins) {
  std::mt19937 rng(3);
  constexpr int kBlocks = 8;
  std::vector<uint8_t> bytes(kBlocks * 20);
  std::vector<float> expected;
  int negative_scales = 0;
  int negative_mins = 0;
  for (int b = 0; b < kBlocks; ++b) {
    const Half d = RandomHalf(rng, -0.3f, 0.3f);
    const Half m = RandomHalf(rng, -2.0f, 2.0f);
    negative_scales += d.value < 0;
    negative_mins += m.value < 0;
    Put(&bytes, b * 20, d.bits);
    Put(&bytes, b * 20 + 2, m.bits);
    int q[32];
    for (int& v : q) v = RandomInt(rng, 0, 15);
    PackNibbles(q, &bytes, b * 20 + 4);
    for (const int v : q) expected.push_back(static_cast<float>(v) * d.value + m.value);
  }
  ASSERT_GT(negative_scales, 0);
  ASSERT_GT(negative_mins, 0);
  ExpectBitEqual(Dequantize(DType::kQ4_1, bytes, kBlocks * 32), expected);
}

// Q4_K scales: 8 sub-blocks of 32, each a 6-bit scale and 6-bit min packed in 12 bytes.
// Sub-blocks 0..3 keep theirs in the low 6 bits of bytes 0..3 (scales) and 4..7 (mins);
// sub-blocks 4..7 keep the low 4 bits in bytes 8..11 (scale low nibble, min high nibble)
// and the top 2 bits in the top 2 bits of bytes 0..3 (scales) and 4..7 (mins).
void PackQ4KScales(const int (&scale)[8], const int (&min)[8], uint8_t* out) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(scale[j] | ((scale[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>(min[j] | ((min[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((scale[j + 4] & 0x0F) | ((min[j + 4] & 0x0F) << 4));
  }
}

// One Q4_K block from logical values; appends the expected output.
void BuildQ4K(const Half& d, const Half& dmin, const int (&scale)[8], const int (&min)[8],
              const int (&q)[256], std::vector<uint8_t>* bytes, std::vector<float>* expected) {
  const size_t at = bytes->size();
  bytes->resize(at + 144);
  Put(bytes, at, d.bits);
  Put(bytes, at + 2, dmin.bits);
  PackQ4KScales(scale, min, bytes->data() + at + 4);
  // Sub-blocks 2p and 2p+1 share qs[32p .. 32p+31]: the first in low nibbles.
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32;
    const int byte = 32 * (sub / 2) + e % 32;
    (*bytes)[at + 16 + byte] |= static_cast<uint8_t>(sub % 2 == 0 ? q[e] : q[e] << 4);
    const float scaled = d.value * static_cast<float>(scale[sub]);
    const float offset = dmin.value * static_cast<float>(min[sub]);
    expected->push_back(scaled * static_cast<float>(q[e]) - offset);
  }
}

TEST(DequantizeTest, Q4_KHandBuiltBlock) {
  // Scales and mins written out by hand from the layout, including sub-blocks 4..7 whose top
  // bits sit in bytes 0..7.
  std::vector<uint8_t> bytes(144, 0);
  Put<uint16_t>(&bytes, 0, 0x3c00);  // d = 1
  Put<uint16_t>(&bytes, 2, 0x3400);  // dmin = 0.25
  const uint8_t scales[12] = {0x41, 0x02, 0x03, 0x04, 0x85, 0x06,
                              0x07, 0x08, 0x21, 0x43, 0x65, 0x87};
  std::memcpy(bytes.data() + 4, scales, 12);
  std::memset(bytes.data() + 16, 0x21, 128);  // low nibbles 1, high nibbles 2
  // Sub-block: (scale, min, q) -> scale * q - 0.25 * min.
  //   0: (1, 5, 1) -0.25    1: (2, 6, 2) 2.5    2: (3, 7, 1) 1.25   3: (4, 8, 2) 6
  //   4: (1 | 1 << 4 = 17, 2 | 2 << 4 = 34, 1) 8.5    5: (3, 4, 2) 5
  //   6: (5, 6, 1) 3.5      7: (7, 8, 2) 12
  const float per_sub_block[8] = {-0.25f, 2.5f, 1.25f, 6.0f, 8.5f, 5.0f, 3.5f, 12.0f};
  std::vector<float> expected;
  for (int e = 0; e < 256; ++e) expected.push_back(per_sub_block[e / 32]);
  ExpectBitEqual(Dequantize(DType::kQ4_K, bytes, 256), expected);
}

TEST(DequantizeTest, Q4_KRandom) {
  std::mt19937 rng(4);
  std::vector<uint8_t> bytes;
  std::vector<float> expected;
  for (int b = 0; b < 6; ++b) {
    int scale[8];
    int min[8];
    int q[256];
    for (int j = 0; j < 8; ++j) {
      scale[j] = RandomInt(rng, 0, 63);
      min[j] = RandomInt(rng, 0, 63);
    }
    if (b == 0) {  // make sure the high bits of sub-blocks 4..7 are exercised
      for (int j = 4; j < 8; ++j) {
        scale[j] = 48 + j;
        min[j] = 32 + j;
      }
    }
    for (int& v : q) v = RandomInt(rng, 0, 15);
    BuildQ4K(RandomHalf(rng, 0.0f, 0.01f), RandomHalf(rng, 0.0f, 0.02f), scale, min, q, &bytes,
             &expected);
  }
  ExpectBitEqual(Dequantize(DType::kQ4_K, bytes, 6 * 256), expected);
}

// Q6_K: 16 sub-blocks of 16 with int8 scales; a 6-bit quant q (value q - 32) is split into
// a low nibble in ql and 2 high bits in qh. Within each half of 128 elements (ql advances
// by 64, qh by 32), element r = 32k + l (k = 0..3, l = 0..31) takes its nibble from
// ql[l + 32 * (k % 2)] (low for k < 2, high for k >= 2) and its high bits from bits
// 2k..2k+1 of qh[l]; its scale is scales[e / 16].
void BuildQ6K(const Half& d, const int (&scale)[16], const int (&q)[256],
              std::vector<uint8_t>* bytes, std::vector<float>* expected) {
  const size_t at = bytes->size();
  bytes->resize(at + 210);
  uint8_t* ql = bytes->data() + at;
  uint8_t* qh = ql + 128;
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128;
    const int k = (e % 128) / 32;
    const int l = e % 32;
    uint8_t& low = ql[64 * half + l + 32 * (k % 2)];
    low |= static_cast<uint8_t>(k < 2 ? (q[e] & 0x0F) : (q[e] & 0x0F) << 4);
    qh[32 * half + l] |= static_cast<uint8_t>((q[e] >> 4) << (2 * k));
    expected->push_back(d.value * static_cast<float>(scale[e / 16]) *
                        static_cast<float>(q[e] - 32));
  }
  for (int s = 0; s < 16; ++s) Put(bytes, at + 192 + s, static_cast<int8_t>(scale[s]));
  Put(bytes, at + 208, d.bits);
}

TEST(DequantizeTest, Q6_KHandBuiltBlock) {
  std::vector<uint8_t> bytes(210, 0);
  std::memset(bytes.data(), 0x21, 128);       // low nibbles 1, high nibbles 2
  std::memset(bytes.data() + 128, 0xe4, 64);  // 2-bit fields 0, 1, 2, 3 from the bottom
  const int8_t scales[16] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 127, -128};
  std::memcpy(bytes.data() + 192, scales, 16);
  Put<uint16_t>(&bytes, 208, 0x3800);  // d = 0.5
  // Quarter k of each half: k=0 low nibble 1, high bits 0 -> 1 - 32 = -31;
  // k=1: 1 | 1 << 4 = 17 -> -15; k=2: 2 | 2 << 4 = 34 -> 2; k=3: 2 | 3 << 4 = 50 -> 18.
  const float quarter_q[4] = {-31, -15, 2, 18};
  std::vector<float> expected;
  for (int e = 0; e < 256; ++e) {
    expected.push_back(0.5f * scales[e / 16] * quarter_q[(e % 128) / 32]);
  }
  ExpectBitEqual(Dequantize(DType::kQ6_K, bytes, 256), expected);
}

TEST(DequantizeTest, Q6_KRandomWithNegativeScales) {
  std::mt19937 rng(6);
  std::vector<uint8_t> bytes;
  std::vector<float> expected;
  for (int b = 0; b < 5; ++b) {
    int scale[16];
    int q[256];
    for (int& s : scale) s = RandomInt(rng, -128, 127);
    for (int& v : q) v = RandomInt(rng, 0, 63);
    BuildQ6K(RandomHalf(rng, -0.01f, 0.01f), scale, q, &bytes, &expected);
  }
  ExpectBitEqual(Dequantize(DType::kQ6_K, bytes, 5 * 256), expected);
}

TEST(DequantizeTest, RejectsPartialBlocksAndI32) {
  std::vector<uint8_t> bytes(1024);
  std::vector<float> out(512);
  EXPECT_EQ(DequantizeRow(DType::kQ8_0, bytes.data(), out.data(), 33).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeRow(DType::kQ4_K, bytes.data(), out.data(), 128).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeRow(DType::kF32, bytes.data(), out.data(), -1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeRow(DType::kI32, bytes.data(), out.data(), 4).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(DequantizeRow(DType::kQ6_K, nullptr, nullptr, 0).ok());
}

}  // namespace
}  // namespace moeserve
