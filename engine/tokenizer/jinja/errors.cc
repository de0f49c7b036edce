#include "engine/tokenizer/jinja/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/absl_strings.h"

namespace moeserve::jinja {
namespace {

// Marks a status whose message is final (positioned, or verbatim from the template).
constexpr std::string_view kPositionedPayload = "moeserve.jinja/positioned";

absl::Status Positioned(absl::StatusCode code, std::string_view message) {
  absl::Status status(code, Sv(message));
  status.SetPayload(Sv(kPositionedPayload), absl::Cord("1"));
  return status;
}

std::string Prefix(Location loc) { return Cat("line ", loc.line, ", column ", loc.column, ": "); }

}  // namespace

absl::Status SyntaxError(Location loc, std::string_view message) {
  return Positioned(absl::StatusCode::kInvalidArgument, Prefix(loc) + std::string(message));
}

absl::Status Unsupported(Location loc, std::string_view what) {
  return Positioned(absl::StatusCode::kUnimplemented, Cat(Prefix(loc), "unsupported ", what));
}

absl::Status RenderError(std::string_view message) {
  return absl::InvalidArgumentError(Sv(message));
}

absl::Status RenderUnsupported(std::string_view what) {
  return absl::UnimplementedError(Cat("unsupported ", what));
}

absl::Status WithLocation(absl::Status status, Location loc) {
  if (status.ok() || status.GetPayload(Sv(kPositionedPayload)).has_value()) return status;
  return Positioned(status.code(), Prefix(loc) + std::string(status.message()));
}

absl::Status TemplateRaised(std::string_view message) {
  return Positioned(absl::StatusCode::kInvalidArgument, message);
}

}  // namespace moeserve::jinja
