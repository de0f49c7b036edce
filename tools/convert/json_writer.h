// A small streaming JSON writer for the files moeserve-convert produces (config.json,
// tokenizer.json, safetensors headers). nlohmann/json stays in proto/ and server/ by the
// module rules, so tools write JSON with this. Keys are written in the order given (the
// caller decides; HF's save_pretrained sorts config keys, we do the same where it matters).
// Strings are escaped as RFC 8259 requires (quotes, backslashes, control characters);
// other UTF-8 is written as is. Floats are written in the shortest form that reads back to
// the same float, with ".0" added to whole numbers so Python reads a float.
#ifndef MOESERVE_TOOLS_CONVERT_JSON_WRITER_H_
#define MOESERVE_TOOLS_CONVERT_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moeserve::convert {

class JsonWriter {
 public:
  // indent 0: compact (no spaces); otherwise newlines and `indent` spaces per level.
  explicit JsonWriter(int indent = 0) : indent_(indent) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The next value's key. REQUIRES: inside an object.
  JsonWriter& Key(std::string_view key);

  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Float(float value);    // shortest repr of the float
  JsonWriter& Double(double value);  // shortest repr of the double
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // Inserts already-serialised JSON as one value.
  JsonWriter& Raw(std::string_view json);

  // The document. REQUIRES: every object and array is closed.
  const std::string& str() const;

 private:
  // Writes the separator and indentation before a value or key.
  void BeforeValue();
  void Newline();
  // Ends the innermost container with `bracket`.
  void Close(char bracket);

  int indent_;
  std::string out_;
  // One entry per open container: the number of items written in it so far.
  std::vector<int> counts_;
  bool after_key_ = false;
};

// `value` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view value);

}  // namespace moeserve::convert

#endif  // MOESERVE_TOOLS_CONVERT_JSON_WRITER_H_
