// JSON at the edge of the server: parsing request bodies and serializing responses without
// exceptions. nlohmann::json throws on malformed input and on invalid UTF-8 when dumping;
// these wrappers turn the first into a Status and the second into U+FFFD replacements, so
// nothing thrown by the JSON library escapes proto/.
#ifndef MOESERVE_PROTO_JSON_UTIL_H_
#define MOESERVE_PROTO_JSON_UTIL_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace moeserve::proto {

// Parses `text` as one JSON value. InvalidArgument with the parser's line and column on
// malformed input, e.g. "Malformed JSON in request body: ... at line 1, column 9: ...".
absl::StatusOr<nlohmann::json> ParseJson(std::string_view text);

// Compact serialization; invalid UTF-8 in strings is replaced with U+FFFD.
std::string DumpJson(const nlohmann::json& value);

// `value` as it appears in an error message: compact JSON, cut to about 60 characters.
std::string DescribeJsonValue(const nlohmann::json& value);

}  // namespace moeserve::proto

#endif  // MOESERVE_PROTO_JSON_UTIL_H_
