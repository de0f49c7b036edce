#include "common/byte_size.h"

#include "gtest/gtest.h"

namespace moeserve {
namespace {

TEST(ByteSizeTest, ParsesPlainAndSuffixedSizes) {
  EXPECT_EQ(*ParseByteSize("1073741824"), 1073741824);
  EXPECT_EQ(*ParseByteSize("512MiB"), 512ll << 20);
  EXPECT_EQ(*ParseByteSize("2GiB"), 2ll << 30);
  EXPECT_EQ(*ParseByteSize("2g"), 2ll << 30);
  EXPECT_EQ(*ParseByteSize("1.5G"), 3ll << 29);
  EXPECT_EQ(*ParseByteSize("800MB"), 800'000'000);
  EXPECT_EQ(*ParseByteSize("64 KiB"), 65536);
  EXPECT_EQ(*ParseByteSize("0"), 0);
}

TEST(ByteSizeTest, RejectsWhatIsNotASize) {
  for (const char* bad : {"", "GiB", "-1G", "1.2.3G", "12XB", "1e3", "99999999999TiB", "nan"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace moeserve
