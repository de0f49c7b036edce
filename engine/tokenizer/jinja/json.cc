#include "engine/tokenizer/jinja/json.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/operators.h"
#include "engine/tokenizer/jinja/unicode.h"

namespace moeserve::jinja {
namespace {

constexpr int kMaxDepth = 128;

void AppendEscaped(std::string_view s, bool ensure_ascii, std::string* out) {
  out->push_back('"');
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const char32_t c = unicode::DecodeNext(s, &pos);
    switch (c) {
      case '"':
        out->append("\\\"");
        continue;
      case '\\':
        out->append("\\\\");
        continue;
      case '\n':
        out->append("\\n");
        continue;
      case '\r':
        out->append("\\r");
        continue;
      case '\t':
        out->append("\\t");
        continue;
      case '\b':
        out->append("\\b");
        continue;
      case '\f':
        out->append("\\f");
        continue;
      default:
        break;
    }
    if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c >= 0x10000) {
        const char32_t v = c - 0x10000;
        CatAppend(out, absl::StrFormat("\\u%04x\\u%04x", 0xD800 | (v >> 10), 0xDC00 | (v & 0x3FF)));
      } else {
        CatAppend(out, absl::StrFormat("\\u%04x", static_cast<unsigned>(c)));
      }
      continue;
    }
    out->append(s.substr(start, pos - start));
  }
  out->push_back('"');
}

std::string FloatJson(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return FormatFloat(d);
}

class Encoder {
 public:
  explicit Encoder(const JsonOptions& options) : options_(options) {}

  absl::Status Encode(const Value& v, int depth, std::string* out) {
    if (depth > kMaxDepth) return RenderError("value nested too deeply for tojson");
    switch (v.kind()) {
      case Value::Kind::kNone:
        out->append("null");
        return absl::OkStatus();
      case Value::Kind::kBool:
        out->append(v.bool_value() ? "true" : "false");
        return absl::OkStatus();
      case Value::Kind::kInt:
        CatAppend(out, v.int_value());
        return absl::OkStatus();
      case Value::Kind::kFloat:
        out->append(FloatJson(v.float_value()));
        return absl::OkStatus();
      case Value::Kind::kString:
        AppendEscaped(v.str(), options_.ensure_ascii, out);
        return absl::OkStatus();
      case Value::Kind::kSequence:
        if (v.seq().kind == SeqKind::kList || v.seq().kind == SeqKind::kTuple) {
          return EncodeList(v.items(), depth, out);
        }
        break;
      case Value::Kind::kDict:
        return EncodeDict(v.dict(), depth, out);
      default:
        break;
    }
    return RenderError(Cat("Object of type ", TypeName(v), " is not JSON serializable"));
  }

 private:
  void Newline(int depth, std::string* out) const {
    out->push_back('\n');
    for (int i = 0; i < depth; ++i) out->append(*options_.indent);
  }

  absl::Status EncodeList(const std::vector<Value>& items, int depth, std::string* out) {
    if (items.empty()) {
      out->append("[]");
      return absl::OkStatus();
    }
    out->push_back('[');
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out->append(options_.item_separator);
      if (options_.indent.has_value()) Newline(depth + 1, out);
      if (absl::Status s = Encode(items[i], depth + 1, out); !s.ok()) return s;
    }
    if (options_.indent.has_value()) Newline(depth, out);
    out->push_back(']');
    return absl::OkStatus();
  }

  static absl::StatusOr<std::string> Key(const Value& key) {
    switch (key.kind()) {
      case Value::Kind::kString:
        return key.str();
      case Value::Kind::kNone:
        return std::string("null");
      case Value::Kind::kBool:
        return std::string(key.bool_value() ? "true" : "false");
      case Value::Kind::kInt:
        return Cat(key.int_value());
      case Value::Kind::kFloat:
        return FloatJson(key.float_value());
      default:
        return RenderError(Cat("keys must be str, int, float, bool or None, not ", TypeName(key)));
    }
  }

  absl::Status EncodeDict(const Dict& dict, int depth, std::string* out) {
    if (dict.empty()) {
      out->append("{}");
      return absl::OkStatus();
    }
    std::vector<const Dict::Entry*> entries;
    for (const Dict::Entry& entry : dict.entries()) entries.push_back(&entry);
    if (options_.sort_keys) {
      absl::Status error;
      std::stable_sort(entries.begin(), entries.end(),
                       [&](const Dict::Entry* a, const Dict::Entry* b) {
                         absl::StatusOr<int> order = Order(a->first, b->first);
                         if (!order.ok()) {
                           error = order.status();
                           return false;
                         }
                         return *order < 0;
                       });
      if (!error.ok()) return error;
    }
    out->push_back('{');
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out->append(options_.item_separator);
      if (options_.indent.has_value()) Newline(depth + 1, out);
      absl::StatusOr<std::string> key = Key(entries[i]->first);
      if (!key.ok()) return key.status();
      AppendEscaped(*key, options_.ensure_ascii, out);
      out->append(options_.key_separator);
      if (absl::Status s = Encode(entries[i]->second, depth + 1, out); !s.ok()) return s;
    }
    if (options_.indent.has_value()) Newline(depth, out);
    out->push_back('}');
    return absl::OkStatus();
  }

  const JsonOptions& options_;
};

}  // namespace

absl::StatusOr<std::string> ToJson(const Value& value, const JsonOptions& options) {
  std::string out;
  if (absl::Status s = Encoder(options).Encode(value, 0, &out); !s.ok()) return s;
  return out;
}

}  // namespace moeserve::jinja
