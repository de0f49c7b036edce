// Logging for every module: spdlog behind a few macros, so call sites do not depend on
// spdlog directly and the level is set in one place. CHECK is for broken invariants only:
// it logs and aborts.
#ifndef MOESERVE_COMMON_LOGGING_H_
#define MOESERVE_COMMON_LOGGING_H_

#include <string_view>

#include "spdlog/spdlog.h"

namespace moeserve {

// Sets the process-wide level from a name: trace, debug, info, warn, error, off.
// Returns false for an unknown name (the level is left unchanged).
bool SetLogLevel(std::string_view level);

[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              std::string_view message);

}  // namespace moeserve

#define MOESERVE_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define MOESERVE_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define MOESERVE_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define MOESERVE_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) ::moeserve::CheckFailed(__FILE__, __LINE__, #cond, ""); \
  } while (0)

#define CHECK_MSG(cond, msg)                                                 \
  do {                                                                       \
    if (!(cond)) ::moeserve::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

#endif  // MOESERVE_COMMON_LOGGING_H_
