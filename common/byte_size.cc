#include "common/byte_size.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace moeserve {

absl::StatusOr<int64_t> ParseByteSize(std::string_view text) {
  const std::string s(text);
  auto invalid = [&s] {
    return absl::InvalidArgumentError(
        absl::StrCat("'", s, "' is not a size (examples: 1073741824, 512MiB, 2GiB, 800MB)"));
  };
  size_t number_end = 0;
  while (number_end < s.size() && (std::isdigit(static_cast<unsigned char>(s[number_end])) ||
                                   s[number_end] == '.')) {
    ++number_end;
  }
  if (number_end == 0) return invalid();
  char* parse_end = nullptr;
  const std::string number = s.substr(0, number_end);
  const double value = std::strtod(number.c_str(), &parse_end);
  if (parse_end != number.c_str() + number.size() || !std::isfinite(value)) return invalid();

  std::string suffix;
  for (char c : s.substr(number_end)) {
    if (c != ' ') suffix += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  static const std::pair<const char*, double> kSuffixes[] = {
      {"", 1.0},          {"b", 1.0},         {"k", 0x1p10},     {"kib", 0x1p10},
      {"m", 0x1p20},      {"mib", 0x1p20},    {"g", 0x1p30},     {"gib", 0x1p30},
      {"t", 0x1p40},      {"tib", 0x1p40},    {"kb", 1e3},       {"mb", 1e6},
      {"gb", 1e9},        {"tb", 1e12},
  };
  for (const auto& [name, multiplier] : kSuffixes) {
    if (suffix == name) {
      const double bytes = value * multiplier;
      if (bytes >= 0x1p62) return invalid();
      return static_cast<int64_t>(bytes);
    }
  }
  return invalid();
}

}  // namespace moeserve
