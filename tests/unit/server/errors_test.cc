#include "server/errors.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/error_body.h"

namespace moeserve {
namespace {

struct Mapping {
  absl::Status status;
  int http_status;
  const char* type;
};

TEST(ErrorsTest, StatusToHttp) {
  const Mapping mappings[] = {
      {absl::InvalidArgumentError("x"), 400, "invalid_request_error"},
      {absl::FailedPreconditionError("x"), 400, "invalid_request_error"},
      {absl::OutOfRangeError("x"), 400, "invalid_request_error"},
      {absl::UnauthenticatedError("x"), 401, "invalid_request_error"},
      {absl::PermissionDeniedError("x"), 403, "permission_error"},
      {absl::NotFoundError("x"), 404, "invalid_request_error"},
      {absl::ResourceExhaustedError("x"), 429, "rate_limit_error"},
      {absl::UnavailableError("x"), 503, "service_unavailable_error"},
      {absl::InternalError("x"), 500, "server_error"},
      {absl::UnknownError("x"), 500, "server_error"},
      {absl::DataLossError("x"), 500, "server_error"},
      {absl::UnimplementedError("x"), 500, "server_error"},
  };
  for (const Mapping& m : mappings) {
    EXPECT_EQ(HttpStatusFor(m.status), m.http_status) << m.status;
    const HttpResponse response = ErrorResponse(m.status);
    EXPECT_EQ(response.status, m.http_status) << m.status;
    EXPECT_EQ(response.content_type, "application/json");
    EXPECT_EQ(response.stream, nullptr);
    const nlohmann::json body = nlohmann::json::parse(response.body);
    EXPECT_EQ(body["error"]["type"], m.type) << m.status;
    EXPECT_EQ(body["error"]["message"], "x");
    EXPECT_TRUE(body["error"]["param"].is_null());
    EXPECT_TRUE(body["error"]["code"].is_null());
  }
}

TEST(ErrorsTest, BodyCarriesParamAndCode) {
  const absl::Status status = proto::WithErrorCode(
      proto::WithParam(absl::NotFoundError("The model `x` does not exist."), "model"),
      "model_not_found");
  EXPECT_EQ(nlohmann::json::parse(ErrorBody(status)), nlohmann::json::parse(R"({"error": {
      "message": "The model `x` does not exist.", "type": "invalid_request_error",
      "param": "model", "code": "model_not_found"}})"));
}

TEST(ErrorsTest, HttpLayerErrors) {
  const HttpResponse response = ErrorResponse(405, "Method PUT is not allowed");
  EXPECT_EQ(response.status, 405);
  const nlohmann::json body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["error"]["message"], "Method PUT is not allowed");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(ErrorTypeFor(413), "invalid_request_error");
  EXPECT_EQ(ErrorTypeFor(502), "server_error");
}

TEST(ErrorsTest, TooManyRequestsSaysWhenToRetry) {
  const HttpResponse busy = ErrorResponse(absl::ResourceExhaustedError("busy"));
  EXPECT_EQ(busy.status, 429);
  EXPECT_EQ(busy.headers, (std::vector<std::pair<std::string, std::string>>{{"Retry-After", "1"}}));
  EXPECT_TRUE(ErrorResponse(absl::InvalidArgumentError("x")).headers.empty());
}

TEST(ErrorsTest, InvalidUtf8InMessagesStaysValidJson) {
  const HttpResponse response = ErrorResponse(absl::InvalidArgumentError("bad \xff byte"));
  EXPECT_NO_THROW(nlohmann::json::parse(response.body));
}

}  // namespace
}  // namespace moeserve
