// UTF-8 encoding of one code point, shared by the tokenizer, the Jinja interpreter and the
// JSON parser. REQUIRES: cp <= 0x10FFFF (callers validate: surrogates and out-of-range values
// are theirs to reject or replace).
#ifndef MOESERVE_COMMON_UTF8_H_
#define MOESERVE_COMMON_UTF8_H_

#include <string>

namespace moeserve {

inline void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace moeserve

#endif  // MOESERVE_COMMON_UTF8_H_
