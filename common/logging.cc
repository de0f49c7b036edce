#include "common/logging.h"

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
  spdlog::critical("CHECK failed at {}:{}: {} {}", file, line, condition, message);
  spdlog::shutdown();
  std::abort();
}

}  // namespace moeserve
