// Debian's Abseil keeps its own string_view type (ABSL_OPTION_USE_STD_STRING_VIEW is 0):
// StrCat, Status and heterogeneous hash-map lookups take absl::string_view. Our code uses
// std::string_view and converts at those calls through these helpers.
#ifndef MOESERVE_COMMON_ABSL_STRINGS_H_
#define MOESERVE_COMMON_ABSL_STRINGS_H_

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace moeserve {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

namespace internal {
inline absl::string_view CatArg(std::string_view s) { return Sv(s); }
template <typename T>
const T& CatArg(const T& v) {
  return v;
}
}  // namespace internal

// absl::StrCat / absl::StrAppend that also take std::string_view.
template <typename... Args>
std::string Cat(const Args&... args) {
  return absl::StrCat(internal::CatArg(args)...);
}
template <typename... Args>
void CatAppend(std::string* out, const Args&... args) {
  absl::StrAppend(out, internal::CatArg(args)...);
}

}  // namespace moeserve

#endif  // MOESERVE_COMMON_ABSL_STRINGS_H_
