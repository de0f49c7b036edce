#include "proto/error_body.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace moeserve::proto {
namespace {

TEST(ErrorBodyTest, Shape) {
  EXPECT_EQ(ErrorBodyJson({"bad", "invalid_request_error", "temperature", std::nullopt}),
            nlohmann::json::parse(R"({"error": {"message": "bad",
                "type": "invalid_request_error", "param": "temperature", "code": null}})"));
  EXPECT_EQ(ErrorBodyJson({"gone", "not_found_error", std::nullopt, "model_not_found"}),
            nlohmann::json::parse(R"({"error": {"message": "gone", "type": "not_found_error",
                "param": null, "code": "model_not_found"}})"));
}

TEST(ErrorBodyTest, ParamAndCodeTravelWithTheStatus) {
  const absl::Status status =
      WithErrorCode(WithParam(absl::NotFoundError("no such model"), "model"), "model_not_found");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "no such model");
  EXPECT_EQ(ParamOf(status), "model");
  EXPECT_EQ(ErrorCodeOf(status), "model_not_found");
  EXPECT_FALSE(ParamOf(absl::InternalError("x")).has_value());
  EXPECT_FALSE(ErrorCodeOf(absl::InternalError("x")).has_value());
  EXPECT_TRUE(WithParam(absl::OkStatus(), "model").ok());
}

TEST(ErrorBodyTest, InvalidFieldError) {
  const absl::Status status = InvalidFieldError("top_p", "'top_p' must be ...");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParamOf(status), "top_p");
}

}  // namespace
}  // namespace moeserve::proto
