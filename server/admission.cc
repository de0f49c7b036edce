#include "server/admission.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/absl_strings.h"
#include "common/logging.h"
#include "proto/error_body.h"
#include "server/errors.h"

namespace moeserve {
namespace {

// Routes an orchestrator probes without credentials, as in vLLM.
bool IsOpenRoute(std::string_view path) { return path == "/health" || path == "/metrics"; }

// The credential of "Authorization: Bearer <token>" (scheme case-insensitive), or nullopt
// when the header is absent or uses another scheme.
std::optional<std::string_view> BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(Sv(header.substr(0, kScheme.size())), Sv(kScheme))) {
    return std::nullopt;
  }
  header.remove_prefix(kScheme.size());
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) {
    header.remove_prefix(1);
  }
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) {
    header.remove_suffix(1);
  }
  return header;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Every byte of the longer string is looked at; a length difference alone already fails.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  // volatile keeps the compiler from turning the loop into an early-exit comparison.
  volatile unsigned char result = diff;
  return result == 0;
}

std::optional<HttpResponse> RequestGate::Check(const HttpRequest& request) const {
  if (draining()) {
    HttpResponse response = ErrorResponse(absl::UnavailableError("The server is shutting down."));
    response.headers.emplace_back("Connection", "close");
    return response;
  }
  if (!api_key_.empty() && !IsOpenRoute(request.path)) {
    if (std::optional<HttpResponse> refusal = CheckApiKey(request); refusal.has_value()) {
      return refusal;
    }
  }
  return CheckContentType(request);
}

std::optional<HttpResponse> RequestGate::CheckApiKey(const HttpRequest& request) const {
  // OpenAI's own 401s: type invalid_request_error; code invalid_api_key for a wrong key.
  const std::optional<std::string_view> token = BearerToken(request.Header("Authorization"));
  if (!token.has_value() || token->empty()) {
    return ErrorResponse(absl::UnauthenticatedError(
        "You didn't provide an API key. You need to provide your API key in an "
        "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."));
  }
  if (!ConstantTimeEquals(*token, api_key_)) {
    return ErrorResponse(proto::WithErrorCode(
        absl::UnauthenticatedError("Incorrect API key provided."), "invalid_api_key"));
  }
  return std::nullopt;
}

std::optional<HttpResponse> RequestGate::CheckContentType(const HttpRequest& request) {
  if (request.method != "POST") return std::nullopt;
  const std::string_view content_type = request.Header("Content-Type");
  if (content_type.empty()) return std::nullopt;  // lenient: bare `curl --data-binary`
  std::string_view media_type = content_type.substr(0, content_type.find(';'));
  while (!media_type.empty() && media_type.back() == ' ') media_type.remove_suffix(1);
  if (absl::EqualsIgnoreCase(Sv(media_type), "application/json")) {
    return std::nullopt;
  }
  return ErrorResponse(absl::InvalidArgumentError(
      Cat("Unsupported Content-Type '", content_type,
          "': the request body must be JSON (Content-Type: application/json).")));
}

QueueLimitedEngine::QueueLimitedEngine(Engine* engine, int32_t max_queued)
    : engine_(engine), max_queued_(max_queued) {
  CHECK(engine_ != nullptr);
  CHECK(max_queued_ > 0);
}

absl::StatusOr<std::shared_ptr<RequestHandle>> QueueLimitedEngine::Submit(Request request) {
  std::lock_guard<std::mutex> lock(submit_mutex_);
  const int32_t waiting = engine_->stats().num_waiting;
  if (waiting >= max_queued_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "The server is overloaded: ", waiting,
        " requests are already waiting (--max-queued-requests ", max_queued_, "). Retry later."));
  }
  return engine_->Submit(std::move(request));
}

}  // namespace moeserve
