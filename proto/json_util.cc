#include "proto/json_util.h"

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace moeserve::proto {
namespace {

using Json = nlohmann::json;

// No request needs more; deeper values would only reach code that recurses (dump(),
// comparisons) and could exhaust a worker thread's stack.
constexpr int kMaxDepth = 128;

// Builds the DOM like json::parse does, but keeps the parse error's message instead of
// throwing it and stops at kMaxDepth. sax_parse is a template over the handler type, so
// these members hide the base ones without virtual dispatch.
class CapturingDomParser : public nlohmann::detail::json_sax_dom_parser<Json> {
 public:
  explicit CapturingDomParser(Json& root)
      : json_sax_dom_parser(root, /*allow_exceptions_=*/false) {}

  template <class Exception>
  bool parse_error(std::size_t position, const std::string& last_token, const Exception& ex) {
    error_ = ex.what();
    return json_sax_dom_parser::parse_error(position, last_token, ex);
  }
  bool start_object(std::size_t size) { return Enter() && json_sax_dom_parser::start_object(size); }
  bool start_array(std::size_t size) { return Enter() && json_sax_dom_parser::start_array(size); }
  bool end_object() {
    --depth_;
    return json_sax_dom_parser::end_object();
  }
  bool end_array() {
    --depth_;
    return json_sax_dom_parser::end_array();
  }

  const std::string& error() const { return error_; }
  bool too_deep() const { return too_deep_; }

 private:
  bool Enter() {
    if (++depth_ <= kMaxDepth) return true;
    too_deep_ = true;
    return false;
  }

  std::string error_;
  int depth_ = 0;
  bool too_deep_ = false;
};

// "[json.exception.parse_error.101] parse error at ..." -> "parse error at ...".
absl::string_view StripExceptionPrefix(absl::string_view message) {
  if (!message.empty() && message.front() == '[') {
    const size_t end = message.find("] ");
    if (end != absl::string_view::npos) message.remove_prefix(end + 2);
  }
  return message;
}

}  // namespace

absl::StatusOr<Json> ParseJson(std::string_view text) {
  Json root;
  CapturingDomParser parser(root);
  const bool ok = Json::sax_parse(text.begin(), text.end(), &parser,
                                  nlohmann::detail::input_format_t::json, /*strict=*/true);
  if (parser.too_deep()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Malformed JSON in request body: nested deeper than ", kMaxDepth, " levels"));
  }
  if (!ok || parser.is_errored()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Malformed JSON in request body: ", StripExceptionPrefix(parser.error())));
  }
  return root;
}

std::string DumpJson(const Json& value) {
  return value.dump(/*indent=*/-1, /*indent_char=*/' ', /*ensure_ascii=*/false,
                    Json::error_handler_t::replace);
}

std::string DescribeJsonValue(const Json& value) {
  // Containers are named, not printed: they can be large, and echoing them back helps no one.
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  constexpr size_t kMaxChars = 60;
  std::string text = DumpJson(value);
  if (text.size() > kMaxChars) {
    // Cut on a UTF-8 character boundary so the message stays valid UTF-8.
    size_t cut = kMaxChars;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text += "...";
  }
  return text;
}

}  // namespace moeserve::proto
