#include "tools/convert/json_writer.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/logging.h"

namespace moeserve::convert {
namespace {

// Shortest round-trip text of a float or double as Python's repr() writes it: fixed
// notation for decimal exponents in [-4, 16), else scientific ("1e-05", "100000.0",
// "0.02", "1e+16"), so config.json reads like one transformers wrote.
template <typename T>
std::string NumberText(T value) {
  char buffer[64];
  const std::to_chars_result result =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  const std::string text(buffer, result.ptr);  // "-1.2345e+05"
  const size_t e = text.find('e');
  const int exponent = std::stoi(text.substr(e + 1));
  if (exponent < -4 || exponent >= 16) return text;
  const bool negative = text[0] == '-';
  std::string digits;
  for (const char c : text.substr(negative ? 1 : 0, e - (negative ? 1 : 0))) {
    if (c != '.') digits += c;
  }
  std::string out = negative ? "-" : "";
  if (exponent < 0) {
    out += "0." + std::string(-exponent - 1, '0') + digits;
  } else {
    if (digits.size() < static_cast<size_t>(exponent) + 1) digits.resize(exponent + 1, '0');
    out += digits.substr(0, exponent + 1) + ".";
    out += digits.size() > static_cast<size_t>(exponent) + 1 ? digits.substr(exponent + 1) : "0";
  }
  return out;
}

}  // namespace

std::string JsonQuote(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  out += '"';
  for (const char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof(escape), "\\u%04x", static_cast<unsigned char>(c));
          out += escape;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

void JsonWriter::Newline() {
  if (indent_ == 0) return;
  out_ += '\n';
  out_.append(counts_.size() * indent_, ' ');
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (counts_.empty()) {
    CHECK_MSG(out_.empty(), "JsonWriter: a second top-level value");
    return;
  }
  if (counts_.back() > 0) out_ += ',';
  ++counts_.back();
  Newline();
}

JsonWriter& JsonWriter::BeginObject() {
  BeforeValue();
  out_ += '{';
  counts_.push_back(0);
  return *this;
}

void JsonWriter::Close(char bracket) {
  CHECK(!counts_.empty() && !after_key_);
  const bool empty = counts_.back() == 0;
  counts_.pop_back();
  if (!empty) Newline();
  out_ += bracket;
}

JsonWriter& JsonWriter::EndObject() {
  Close('}');
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  BeforeValue();
  out_ += '[';
  counts_.push_back(0);
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  Close(']');
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  CHECK(!after_key_);
  BeforeValue();
  out_ += JsonQuote(key);
  out_ += indent_ == 0 ? ":" : ": ";
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view value) {
  BeforeValue();
  out_ += JsonQuote(value);
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t value) {
  BeforeValue();
  out_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::Float(float value) {
  CHECK_MSG(std::isfinite(value), "JsonWriter: NaN and infinities are not JSON numbers");
  BeforeValue();
  out_ += NumberText(value);
  return *this;
}

JsonWriter& JsonWriter::Double(double value) {
  CHECK_MSG(std::isfinite(value), "JsonWriter: NaN and infinities are not JSON numbers");
  BeforeValue();
  out_ += NumberText(value);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  BeforeValue();
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::Null() {
  BeforeValue();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::Raw(std::string_view json) {
  BeforeValue();
  out_ += json;
  return *this;
}

const std::string& JsonWriter::str() const {
  CHECK_MSG(counts_.empty() && !after_key_, "JsonWriter: unclosed object or array");
  return out_;
}

}  // namespace moeserve::convert
