// Status helpers shared by every module. Recoverable failures travel as absl::Status /
// absl::StatusOr; these macros keep the early-return plumbing to one line.
#ifndef MOESERVE_COMMON_STATUS_H_
#define MOESERVE_COMMON_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MOESERVE_STATUS_CONCAT_INNER_(a, b) a##b
#define MOESERVE_STATUS_CONCAT_(a, b) MOESERVE_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define MOESERVE_RETURN_IF_ERROR(expr)                  \
  do {                                                  \
    if (::absl::Status _moeserve_status = (expr);       \
        !_moeserve_status.ok()) {                       \
      return _moeserve_status;                          \
    }                                                   \
  } while (0)

// `lhs` = value of `rexpr` (an absl::StatusOr<T>), or returns its error.
#define MOESERVE_ASSIGN_OR_RETURN(lhs, rexpr) \
  MOESERVE_ASSIGN_OR_RETURN_IMPL_(MOESERVE_STATUS_CONCAT_(_moeserve_statusor_, __LINE__), lhs, rexpr)

#define MOESERVE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                     \
  if (!statusor.ok()) return std::move(statusor).status();     \
  lhs = std::move(statusor).value()

#endif  // MOESERVE_COMMON_STATUS_H_
