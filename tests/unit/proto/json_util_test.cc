#include "proto/json_util.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moeserve::proto {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ParseJsonTest, ParsesValues) {
  absl::StatusOr<nlohmann::json> value = ParseJson(R"({"a": [1, 2.5, "x", null, true]})");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ((*value)["a"][2], "x");
}

TEST(ParseJsonTest, MalformedIsInvalidArgumentWithPosition) {
  for (const char* text : {"{bad", "", "{\"a\": 1,}", "{} trailing", "[1, 2", "\"\xff\""}) {
    absl::StatusOr<nlohmann::json> value = ParseJson(text);
    ASSERT_FALSE(value.ok()) << text;
    EXPECT_EQ(value.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(value.status().message()),
                StartsWith("Malformed JSON in request body: parse error at line 1, column"))
        << text;
  }
}

TEST(ParseJsonTest, NestingIsBoundedWithoutCrashing) {
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(ParseJson(nested(128)).ok());
  for (int depth : {129, 200000}) {
    absl::StatusOr<nlohmann::json> value = ParseJson(nested(depth));
    ASSERT_FALSE(value.ok()) << depth;
    EXPECT_THAT(std::string(value.status().message()), HasSubstr("nested deeper than 128"));
  }
  EXPECT_FALSE(ParseJson(std::string(200000, '{')).ok());
  EXPECT_FALSE(ParseJson(std::string(100000, '[')).ok());
}

TEST(DescribeJsonValueTest, NamesContainersInsteadOfPrintingThem) {
  EXPECT_EQ(DescribeJsonValue(nlohmann::json::array({1, 2})), "an array");
  EXPECT_EQ(DescribeJsonValue(nlohmann::json::object()), "an object");
}

TEST(DumpJsonTest, ReplacesInvalidUtf8) {
  nlohmann::json value = {{"text", std::string("ok\xff")}};
  EXPECT_EQ(DumpJson(value), "{\"text\":\"ok\xEF\xBF\xBD\"}");
}

TEST(DescribeJsonValueTest, CutsLongValuesOnCharacterBoundaries) {
  EXPECT_EQ(DescribeJsonValue("hot"), "\"hot\"");
  EXPECT_EQ(DescribeJsonValue(2.5), "2.5");
  std::string euros;
  for (int i = 0; i < 40; ++i) euros += "\xE2\x82\xAC";  // 3 bytes each
  const std::string described = DescribeJsonValue(euros);
  EXPECT_THAT(described, HasSubstr("..."));
  EXPECT_LE(described.size(), 64u);
  EXPECT_EQ(DumpJson(described), nlohmann::json(described).dump()) << "valid UTF-8";
}

}  // namespace
}  // namespace moeserve::proto
