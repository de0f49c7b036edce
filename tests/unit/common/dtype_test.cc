#include "common/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace moeserve {
namespace {

TEST(DTypeTest, F16KnownValues) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // rounds to +Inf
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // ties to even: zero
  EXPECT_EQ(F32ToF16(std::ldexp(3.0f, -26)), 0x0001);  // 0.75 ulp rounds up
  EXPECT_EQ(F16ToF32(0x3555), 0.333251953125f);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(F16ToF32(0xfc00)));
  EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DTypeTest, F16RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(F32ToF16(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(DTypeTest, F16RoundsToNearest) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-70000.0f, 70000.0f);
  for (int i = 0; i < 100000; ++i) {
    const float f = dist(rng) * (i % 2 ? 1.0f : 1e-4f);
    const uint16_t h = F32ToF16(f);
    const float back = F16ToF32(h);
    if (std::isinf(back)) {
      EXPECT_GE(std::fabs(f), 65520.0f);
      continue;
    }
    // Neighbours of h are no closer to f than h is.
    const float up = F16ToF32(static_cast<uint16_t>(h + 1));
    const float down = F16ToF32(static_cast<uint16_t>(h - 1));
    if (!std::isnan(up) && !std::isinf(up)) {
      EXPECT_LE(std::fabs(back - f), std::fabs(up - f)) << f;
    }
    if ((h & 0x7fff) != 0) {
      EXPECT_LE(std::fabs(back - f), std::fabs(down - f)) << f;
    }
  }
}

TEST(DTypeTest, BF16) {
  EXPECT_EQ(F32ToBF16(1.0f), 0x3f80);
  EXPECT_EQ(BF16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(F32ToBF16(1.00390625f), 0x3f80);   // halfway, ties to even (down)
  EXPECT_EQ(F32ToBF16(1.01171875f), 0x3f82);   // halfway, ties to even (up)
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DTypeTest, BlockSizes) {
  EXPECT_EQ(DTypeRowBytes(DType::kQ4_1, 64), 40);
  EXPECT_EQ(DTypeRowBytes(DType::kQ8_0, 32), 34);
  EXPECT_EQ(DTypeRowBytes(DType::kQ4_K, 256), 144);
  EXPECT_EQ(DTypeRowBytes(DType::kQ6_K, 512), 420);
  EXPECT_EQ(DTypeRowBytes(DType::kBF16, 3), 6);
  EXPECT_TRUE(DTypeIsQuantized(DType::kQ4_0));
  EXPECT_FALSE(DTypeIsQuantized(DType::kF16));
}

}  // namespace
}  // namespace moeserve
