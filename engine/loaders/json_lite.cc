#include "engine/loaders/json_lite.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/absl_strings.h"
#include "common/utf8.h"

namespace moeserve::json_lite {
namespace {

// Recursive descent over the text; every read is bounds-checked and recursion is bounded by
// max_depth, so no input can overrun the buffer or the stack.
class Parser {
 public:
  Parser(std::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

  absl::StatusOr<Value> ParseDocument() {
    Value value;
    SkipWhitespace();
    if (absl::Status s = ParseValue(0, &value); !s.ok()) return s;
    SkipWhitespace();
    if (pos_ != text_.size()) return Error("trailing characters after the JSON value");
    return value;
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(Cat("invalid JSON at byte ", pos_, ": ", what));
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }

  void SkipWhitespace() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t' || Peek() == '\n' || Peek() == '\r')) {
      ++pos_;
    }
  }

  bool Consume(std::string_view literal) {
    if (text_.substr(pos_, literal.size()) != literal) return false;
    pos_ += literal.size();
    return true;
  }

  absl::Status ParseValue(int depth, Value* out) {
    if (AtEnd()) return Error("unexpected end of input, expected a value");
    switch (Peek()) {
      case '{':
        return ParseObject(depth, out);
      case '[':
        return ParseArray(depth, out);
      case '"': {
        std::string s;
        if (absl::Status status = ParseString(&s); !status.ok()) return status;
        out->data = std::move(s);
        return absl::OkStatus();
      }
      case 't':
        if (!Consume("true")) return Error("invalid literal");
        out->data = true;
        return absl::OkStatus();
      case 'f':
        if (!Consume("false")) return Error("invalid literal");
        out->data = false;
        return absl::OkStatus();
      case 'n':
        if (!Consume("null")) return Error("invalid literal");
        out->data = nullptr;
        return absl::OkStatus();
      default:
        if (Peek() == '-' || IsDigit(Peek())) return ParseNumber(out);
        return Error(Cat("unexpected character '", std::string_view(&text_[pos_], 1), "'"));
    }
  }

  absl::Status EnterContainer(int depth) const {
    if (depth >= max_depth_) return Error(Cat("nesting deeper than ", max_depth_, " levels"));
    return absl::OkStatus();
  }

  absl::Status ParseObject(int depth, Value* out) {
    if (absl::Status s = EnterContainer(depth); !s.ok()) return s;
    ++pos_;  // '{'
    Object members;
    SkipWhitespace();
    if (!AtEnd() && Peek() == '}') {
      ++pos_;
      out->data = std::move(members);
      return absl::OkStatus();
    }
    while (true) {
      SkipWhitespace();
      if (AtEnd() || Peek() != '"') return Error("expected a string key");
      std::string key;
      if (absl::Status s = ParseString(&key); !s.ok()) return s;
      SkipWhitespace();
      if (AtEnd() || Peek() != ':') return Error("expected ':' after an object key");
      ++pos_;
      SkipWhitespace();
      Value value;
      if (absl::Status s = ParseValue(depth + 1, &value); !s.ok()) return s;
      members.emplace_back(std::move(key), std::move(value));
      SkipWhitespace();
      if (AtEnd()) return Error("unexpected end of input in an object");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        if (absl::Status s = CheckUniqueKeys(members); !s.ok()) return s;
        out->data = std::move(members);
        return absl::OkStatus();
      }
      return Error("expected ',' or '}' in an object");
    }
  }

  // Sorting views of the keys keeps this O(n log n): an index.json weight_map can hold
  // ~100k names, too many for a pairwise scan.
  absl::Status CheckUniqueKeys(const Object& members) const {
    std::vector<std::string_view> keys;
    keys.reserve(members.size());
    for (const auto& member : members) keys.push_back(member.first);
    std::sort(keys.begin(), keys.end());
    const auto duplicate = std::adjacent_find(keys.begin(), keys.end());
    if (duplicate != keys.end())
      return Error(Cat("duplicate key \"", *duplicate, "\" in an object"));
    return absl::OkStatus();
  }

  absl::Status ParseArray(int depth, Value* out) {
    if (absl::Status s = EnterContainer(depth); !s.ok()) return s;
    ++pos_;  // '['
    Array elements;
    SkipWhitespace();
    if (!AtEnd() && Peek() == ']') {
      ++pos_;
      out->data = std::move(elements);
      return absl::OkStatus();
    }
    while (true) {
      SkipWhitespace();
      Value value;
      if (absl::Status s = ParseValue(depth + 1, &value); !s.ok()) return s;
      elements.push_back(std::move(value));
      SkipWhitespace();
      if (AtEnd()) return Error("unexpected end of input in an array");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') {
        ++pos_;
        out->data = std::move(elements);
        return absl::OkStatus();
      }
      return Error("expected ',' or ']' in an array");
    }
  }

  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. Integers are range-checked into int64
  // rather than rounded through a double, so sizes and offsets stay exact.
  absl::Status ParseNumber(Value* out) {
    const size_t start = pos_;
    if (Peek() == '-') ++pos_;
    if (AtEnd() || !IsDigit(Peek())) return Error("expected a digit");
    if (Peek() == '0' && pos_ + 1 < text_.size() && IsDigit(text_[pos_ + 1])) {
      return Error("leading zero in a number");
    }
    SkipDigits();
    bool is_integer = true;
    if (!AtEnd() && Peek() == '.') {
      is_integer = false;
      ++pos_;
      if (AtEnd() || !IsDigit(Peek())) return Error("expected a digit after '.'");
      SkipDigits();
    }
    if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
      is_integer = false;
      ++pos_;
      if (!AtEnd() && (Peek() == '+' || Peek() == '-')) ++pos_;
      if (AtEnd() || !IsDigit(Peek())) return Error("expected a digit in an exponent");
      SkipDigits();
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (is_integer) {
      int64_t value = 0;
      const auto [ptr, ec] = std::from_chars(first, last, value);
      if (ec == std::errc() && ptr == last) {
        out->data = value;
        return absl::OkStatus();
      }
      // Integers beyond int64 become doubles, as Python's json and nlohmann read them:
      // transformers writes model_max_length = int(1e30) into most tokenizer_config.json.
    }
    {
      double value = 0;
      const auto [ptr, ec] = std::from_chars(first, last, value);
      if (ec != std::errc() || ptr != last) {
        pos_ = start;
        return Error("number out of the double range");
      }
      out->data = value;
    }
    return absl::OkStatus();
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
  void SkipDigits() {
    while (!AtEnd() && IsDigit(Peek())) ++pos_;
  }

  absl::Status ParseHex4(uint32_t* out) {
    if (text_.size() - pos_ < 4) return Error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return Error("invalid hex digit in a \\u escape");
      }
    }
    pos_ += 4;
    *out = v;
    return absl::OkStatus();
  }

  absl::Status ParseEscape(std::string* out) {
    if (AtEnd()) return Error("unterminated string");
    const char c = text_[pos_++];
    switch (c) {
      case '"':
      case '\\':
      case '/':
        out->push_back(c);
        return absl::OkStatus();
      case 'b':
        out->push_back('\b');
        return absl::OkStatus();
      case 'f':
        out->push_back('\f');
        return absl::OkStatus();
      case 'n':
        out->push_back('\n');
        return absl::OkStatus();
      case 'r':
        out->push_back('\r');
        return absl::OkStatus();
      case 't':
        out->push_back('\t');
        return absl::OkStatus();
      case 'u':
        break;
      default:
        --pos_;
        return Error("invalid escape in a string");
    }
    uint32_t cp = 0;
    if (absl::Status s = ParseHex4(&cp); !s.ok()) return s;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return Error("unpaired low surrogate in a \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (!Consume("\\u")) return Error("unpaired high surrogate in a \\u escape");
      uint32_t low = 0;
      if (absl::Status s = ParseHex4(&low); !s.ok()) return s;
      if (low < 0xDC00 || low > 0xDFFF) return Error("high surrogate not followed by a low one");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    AppendUtf8(cp, out);
    return absl::OkStatus();
  }

  // One UTF-8 encoded code point starting at pos_ (a byte >= 0x80); rejects overlong
  // forms, surrogates and values past U+10FFFF.
  absl::Status CopyUtf8(std::string* out) {
    const auto b0 = static_cast<uint8_t>(text_[pos_]);
    int length = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      length = 2, cp = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      length = 3, cp = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      length = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
      return Error("invalid UTF-8 in a string");
    }
    if (text_.size() - pos_ < static_cast<size_t>(length)) return Error("truncated UTF-8");
    for (int i = 1; i < length; ++i) {
      const auto b = static_cast<uint8_t>(text_[pos_ + i]);
      if ((b & 0xC0) != 0x80) return Error("invalid UTF-8 in a string");
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return Error("invalid UTF-8 in a string");
    }
    out->append(text_.substr(pos_, length));
    pos_ += length;
    return absl::OkStatus();
  }

  absl::Status ParseString(std::string* out) {
    ++pos_;  // opening quote
    while (true) {
      if (AtEnd()) return Error("unterminated string");
      const auto c = static_cast<uint8_t>(Peek());
      if (c == '"') {
        ++pos_;
        return absl::OkStatus();
      }
      if (c == '\\') {
        ++pos_;
        if (absl::Status s = ParseEscape(out); !s.ok()) return s;
      } else if (c < 0x20) {
        return Error("control character in a string");
      } else if (c >= 0x80) {
        if (absl::Status s = CopyUtf8(out); !s.ok()) return s;
      } else {
        out->push_back(static_cast<char>(c));
        ++pos_;
      }
    }
  }

  std::string_view text_;
  int max_depth_;
  size_t pos_ = 0;
};

}  // namespace

const Value* Value::Find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& [name, value] : as_object()) {
    if (name == key) return &value;
  }
  return nullptr;
}

std::string_view TypeName(const Value& value) {
  if (value.is_null()) return "null";
  if (value.is_bool()) return "boolean";
  if (value.is_int()) return "integer";
  if (value.is_double()) return "number";
  if (value.is_string()) return "string";
  if (value.is_array()) return "array";
  return "object";
}

absl::StatusOr<Value> Parse(std::string_view text, int max_depth) {
  return Parser(text, max_depth).ParseDocument();
}

}  // namespace moeserve::json_lite
