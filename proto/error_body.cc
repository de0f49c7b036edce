#include "proto/error_body.h"

#include <utility>

#include "absl/strings/cord.h"

namespace moeserve::proto {
namespace {

// Payload type URLs; private to this file, read back only through ParamOf / ErrorCodeOf.
constexpr absl::string_view kParamPayload = "type.moeserve/proto.ErrorParam";
constexpr absl::string_view kCodePayload = "type.moeserve/proto.ErrorCode";

absl::Status WithPayload(absl::Status status, absl::string_view url, absl::string_view value) {
  if (!status.ok()) status.SetPayload(url, absl::Cord(value));
  return status;
}

std::optional<std::string> PayloadOf(const absl::Status& status, absl::string_view url) {
  absl::optional<absl::Cord> payload = status.GetPayload(url);
  if (!payload.has_value()) return std::nullopt;
  return std::string(*payload);
}

nlohmann::json StringOrNull(const std::optional<std::string>& value) {
  return value.has_value() ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json ErrorBodyJson(const ErrorInfo& error) {
  return {{"error",
           {{"message", error.message},
            {"type", error.type},
            {"param", StringOrNull(error.param)},
            {"code", StringOrNull(error.code)}}}};
}

absl::Status WithParam(absl::Status status, absl::string_view param) {
  return WithPayload(std::move(status), kParamPayload, param);
}

std::optional<std::string> ParamOf(const absl::Status& status) {
  return PayloadOf(status, kParamPayload);
}

absl::Status WithErrorCode(absl::Status status, absl::string_view code) {
  return WithPayload(std::move(status), kCodePayload, code);
}

std::optional<std::string> ErrorCodeOf(const absl::Status& status) {
  return PayloadOf(status, kCodePayload);
}

absl::Status InvalidFieldError(absl::string_view param, absl::string_view message) {
  return WithParam(absl::InvalidArgumentError(message), param);
}

}  // namespace moeserve::proto
