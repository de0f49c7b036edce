// Unicode helpers with Python's str semantics. The interpreter keeps strings as UTF-8 bytes,
// but lengths, indexing, whitespace and case mapping work on code points as Python does, so
// that templates render byte-identically with jinja2 on non-ASCII text. Case mapping uses
// ICU's full (one-to-many) mappings, as Python's str.upper() and friends do.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_UNICODE_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_UNICODE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moeserve::jinja::unicode {

// The code point at s[*pos], advancing *pos past it. A byte that does not start a valid
// UTF-8 sequence decodes to U+DC00 + byte (Python's "surrogateescape"), and Append() turns
// such a code point back into that byte, so any byte string survives a round trip.
char32_t DecodeNext(std::string_view s, size_t* pos);
std::u32string Decode(std::string_view s);
void Append(char32_t cp, std::string* out);
std::string Encode(std::u32string_view cps);
size_t Length(std::string_view s);  // in code points
// s[index] in code points, negative from the end (Python indexing); nullopt out of range.
// Walks only as far as the index, from the nearer end.
std::optional<std::string> CodePointAt(std::string_view s, int64_t index);

bool IsSpace(char32_t c);      // str.isspace(); also regex \s and str.strip() without args
bool IsPrintable(char32_t c);  // str.isprintable(); repr() escapes the others
bool IsAlpha(char32_t c);
bool IsDecimal(char32_t c);
int DecimalValue(char32_t c);  // REQUIRES: IsDecimal(c)
bool IsDigit(char32_t c);
bool IsNumeric(char32_t c);
bool IsLowercase(char32_t c);
bool IsUppercase(char32_t c);
bool IsTitlecase(char32_t c);

std::string Upper(std::string_view s);       // str.upper()
std::string Lower(std::string_view s);       // str.lower()
std::string Title(std::string_view s);       // str.title()
std::string Capitalize(std::string_view s);  // str.capitalize() (first code point titlecased)

// s.rstrip() / s.lstrip() without arguments.
std::string_view RStripSpace(std::string_view s);
std::string_view LStripSpace(std::string_view s);

// s.strip(chars) / lstrip / rstrip: `chars` null strips whitespace, else its code points.
std::string_view Strip(std::string_view s, const std::string* chars, bool left, bool right);

}  // namespace moeserve::jinja::unicode

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_UNICODE_H_
