// Python's json.dumps over template values: what transformers' |tojson filter produces
// (ensure_ascii=False by default, no HTML escaping), byte for byte.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_JSON_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_JSON_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja/value.h"

namespace moeserve::jinja {

struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // json.dumps(indent=...): nullopt is single-line
  std::string item_separator = ", ";  // json.dumps picks "," when indent is set
  std::string key_separator = ": ";
  bool sort_keys = false;
};

absl::StatusOr<std::string> ToJson(const Value& value, const JsonOptions& options);

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_JSON_H_
