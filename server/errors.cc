#include "server/errors.h"

#include "proto/error_body.h"
#include "proto/json_util.h"

namespace moeserve {
namespace {

constexpr char kRetryAfterSeconds[] = "1";

std::string Body(int http_status, const absl::Status& status) {
  proto::ErrorInfo error;
  error.message = std::string(status.message());
  error.type = std::string(ErrorTypeFor(http_status));
  error.param = proto::ParamOf(status);
  error.code = proto::ErrorCodeOf(status);
  return proto::DumpJson(proto::ErrorBodyJson(error));
}

}  // namespace

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

absl::string_view ErrorTypeFor(int http_status) {
  switch (http_status) {
    case 401:  // what OpenAI sends for a missing or wrong key
      return "invalid_request_error";
    case 403:
      return "permission_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    default:
      return http_status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string ErrorBody(const absl::Status& status) { return Body(HttpStatusFor(status), status); }

HttpResponse ErrorResponse(const absl::Status& status) {
  HttpResponse response;
  response.status = HttpStatusFor(status);
  response.body = Body(response.status, status);
  // vLLM-style overload: the client may try again shortly.
  if (response.status == 429) response.headers.emplace_back("Retry-After", kRetryAfterSeconds);
  return response;
}

HttpResponse ErrorResponse(int http_status, absl::string_view message) {
  HttpResponse response;
  response.status = http_status;
  response.body = Body(http_status, absl::UnknownError(message));
  return response;
}

}  // namespace moeserve
