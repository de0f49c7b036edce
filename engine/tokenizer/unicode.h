// UTF-8 decoding and encoding, and the few Unicode character classes the tokenizers'
// pre-tokenizers ask about (letter, number, white space), answered by ICU so that they
// agree with the Oniguruma regexes Hugging Face `tokenizers` runs.
//
// Input text may be invalid UTF-8 (it comes from clients). Decoding never fails: every
// byte that does not start a well-formed sequence decodes alone as kInvalidCodepoint, so
// the byte-level tokenizers still see, and round-trip, every input byte.
#ifndef MOESERVE_ENGINE_TOKENIZER_UNICODE_H_
#define MOESERVE_ENGINE_TOKENIZER_UNICODE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/utf8.h"

namespace moeserve::unicode {

// Stands for one byte of ill-formed UTF-8; not a code point, never a letter/number/space.
inline constexpr char32_t kInvalidCodepoint = 0xFFFFFFFF;
inline constexpr char32_t kReplacementCharacter = 0xFFFD;

// Decodes the character starting at text[*pos] and advances *pos past it (by 1 to 4
// bytes). Overlong forms, surrogates and values past U+10FFFF are ill-formed.
// REQUIRES: *pos < text.size().
char32_t DecodeUtf8(std::string_view text, size_t* pos);

// Appends the UTF-8 encoding of `cp`. REQUIRES: cp is a Unicode scalar value.
using ::moeserve::AppendUtf8;  // common/utf8.h

// `bytes` with every ill-formed sequence replaced by U+FFFD, one per maximal subpart of
// an ill-formed sequence (the Unicode "best practice", as Rust's String::from_utf8_lossy
// and Python's errors="replace" do).
std::string ToValidUtf8(std::string_view bytes);

// Character classes, as regex classes: \p{L} (Lu Ll Lt Lm Lo), \p{N} (Nd Nl No) and \s
// (the White_Space property). The three are disjoint.
enum CharClass : uint8_t {
  kOther = 0,
  kLetter = 1,
  kNumber = 2,
  kWhitespace = 3,
};
CharClass ClassOf(char32_t cp);

inline bool IsLetter(char32_t cp) { return ClassOf(cp) == kLetter; }
inline bool IsNumber(char32_t cp) { return ClassOf(cp) == kNumber; }
inline bool IsWhitespace(char32_t cp) { return ClassOf(cp) == kWhitespace; }

// Simple lower-case mapping (for case-insensitive regex pieces such as (?i:'s)); ASCII
// and the few non-ASCII letters that fold into ASCII ones (e.g. U+017F LONG S -> 's').
char32_t SimpleFold(char32_t cp);

// NFC normalization of `text`. Ill-formed bytes are kept as they are: only the well-formed
// runs between them are normalized.
std::string NormalizeNfc(std::string_view text);

}  // namespace moeserve::unicode

#endif  // MOESERVE_ENGINE_TOKENIZER_UNICODE_H_
