// The one place where errors become HTTP: absl::Status -> HTTP status code + OpenAI error
// body {"error": {"message", "type", "param", "code"}}. Routes return Statuses; the HTTP
// layer's own errors (unknown path, wrong method, ...) come here with their status code.
//
//   InvalidArgument, FailedPrecondition, OutOfRange -> 400 invalid_request_error
//   Unauthenticated -> 401 invalid_request_error    PermissionDenied -> 403 permission_error
//   NotFound -> 404 invalid_request_error           ResourceExhausted -> 429 rate_limit_error
//   Unavailable -> 503 service_unavailable_error    anything else -> 500 server_error
#ifndef MOESERVE_SERVER_ERRORS_H_
#define MOESERVE_SERVER_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/http_server.h"

namespace moeserve {

// REQUIRES: !status.ok().
int HttpStatusFor(const absl::Status& status);

// The OpenAI error "type" for an HTTP status code.
absl::string_view ErrorTypeFor(int http_status);

// The JSON error body for `status`: its message, the "param" and "code" attached with
// proto::WithParam / proto::WithErrorCode (null otherwise).
std::string ErrorBody(const absl::Status& status);

// {HttpStatusFor(status), "application/json", ErrorBody(status)}, plus "Retry-After: 1" on a
// 429. REQUIRES: !status.ok().
HttpResponse ErrorResponse(const absl::Status& status);

// An error that is not a Status: the HTTP layer's own 404, 405, 413, ...
HttpResponse ErrorResponse(int http_status, absl::string_view message);

}  // namespace moeserve

#endif  // MOESERVE_SERVER_ERRORS_H_
