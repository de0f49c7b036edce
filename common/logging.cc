#include "common/logging.h"

#include <cstdio>
#include <cstdlib>

namespace moeserve {

bool SetLogLevel(std::string_view level) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(std::string(level));
  // from_str returns `off` for unknown names; only accept "off" when it was asked for.
  if (parsed == spdlog::level::off && level != "off") return false;
  spdlog::set_level(parsed);
  return true;
}

void CheckFailed(const char* file, int line, const char* condition, std::string_view message) {
  // Straight to stderr as well: the process is about to die and the logger may be anywhere.
  std::fprintf(stderr, "CHECK failed at %s:%d: %s %.*s\n", file, line, condition,
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  spdlog::critical("CHECK failed at {}:{}: {} {}", file, line, condition, message);
  spdlog::shutdown();
  std::abort();
}

}  // namespace moeserve
