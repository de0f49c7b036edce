// The OpenAI error body, {"error": {"message", "type", "param", "code"}}, and the way a
// Status carries the two optional parts of it: the request field the error is about
// ("param") and a machine-readable code ("code"), both as Status payloads. Validation in
// proto/ attaches them; server/errors.cc reads them when it turns a Status into HTTP.
#ifndef MOESERVE_PROTO_ERROR_BODY_H_
#define MOESERVE_PROTO_ERROR_BODY_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace moeserve::proto {

struct ErrorInfo {
  std::string message;
  std::string type;                  // "invalid_request_error", "server_error", ...
  std::optional<std::string> param;  // e.g. "temperature", "messages[0].content"
  std::optional<std::string> code;   // e.g. "model_not_found"
};

// {"error": {...}}; absent param and code are written as null, as OpenAI does.
nlohmann::json ErrorBodyJson(const ErrorInfo& error);

// Returns `status` with the offending request field attached (no-op on OK).
absl::Status WithParam(absl::Status status, absl::string_view param);
std::optional<std::string> ParamOf(const absl::Status& status);

// Returns `status` with an error code attached (no-op on OK).
absl::Status WithErrorCode(absl::Status status, absl::string_view code);
std::optional<std::string> ErrorCodeOf(const absl::Status& status);

// InvalidArgument naming a request field: the message and the param both carry it.
absl::Status InvalidFieldError(absl::string_view param, absl::string_view message);

}  // namespace moeserve::proto

#endif  // MOESERVE_PROTO_ERROR_BODY_H_
