// A small strict JSON parser for checkpoint headers (safetensors headers,
// model.safetensors.index.json) and other small files the loaders read. It accepts RFC 8259
// JSON: objects, arrays, strings (all escapes, \uXXXX with surrogate pairs, UTF-8
// validated), numbers, true, false and null. Integers (no fraction or exponent) must fit
// int64 and stay exact; other numbers become doubles (an overflow to infinity is an error).
// Duplicate object keys and nesting deeper than a limit are errors, so hostile input
// neither crashes nor recurses without bound. nlohmann/json is kept to proto/ and server/
// by the module rules; this is the loaders' own.
#ifndef MOESERVE_ENGINE_LOADERS_JSON_LITE_H_
#define MOESERVE_ENGINE_LOADERS_JSON_LITE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace moeserve::json_lite {

struct Value;
using Array = std::vector<Value>;
// Members in file order; keys are unique (the parser rejects duplicates).
using Object = std::vector<std::pair<std::string, Value>>;

struct Value {
  std::variant<std::nullptr_t, bool, int64_t, double, std::string, Array, Object> data;

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(data); }
  bool is_bool() const { return std::holds_alternative<bool>(data); }
  bool is_int() const { return std::holds_alternative<int64_t>(data); }
  bool is_double() const { return std::holds_alternative<double>(data); }
  bool is_string() const { return std::holds_alternative<std::string>(data); }
  bool is_array() const { return std::holds_alternative<Array>(data); }
  bool is_object() const { return std::holds_alternative<Object>(data); }
  // REQUIRES: the matching is_*() is true.
  int64_t as_int() const { return std::get<int64_t>(data); }
  double as_double() const { return std::get<double>(data); }
  // REQUIRES: is_int() or is_double().
  double as_number() const { return is_int() ? static_cast<double>(as_int()) : as_double(); }
  const std::string& as_string() const { return std::get<std::string>(data); }
  const Array& as_array() const { return std::get<Array>(data); }
  const Object& as_object() const { return std::get<Object>(data); }

  // For objects: the member named `key`, or nullptr (also for non-objects).
  const Value* Find(std::string_view key) const;
};

// "string", "integer", "number", ... for error messages.
std::string_view TypeName(const Value& value);

inline constexpr int kDefaultMaxDepth = 64;

// Parses exactly one JSON value surrounded by optional whitespace. Errors are
// InvalidArgument with the byte offset of the problem; callers prefix the file name.
absl::StatusOr<Value> Parse(std::string_view text, int max_depth = kDefaultMaxDepth);

}  // namespace moeserve::json_lite

#endif  // MOESERVE_ENGINE_LOADERS_JSON_LITE_H_
