#include "engine/tokenizer/jinja/unicode.h"

#include <unicode/ucasemap.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include "common/utf8.h"

namespace moeserve::jinja::unicode {
namespace {

constexpr char32_t kEscapeBase = 0xDC00;  // invalid byte b decodes to kEscapeBase + b

bool IsContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

enum class CaseMode { kUpper, kLower, kTitle };

// Full case mapping of one code point (one code point may map to up to three).
void AppendMapped(char32_t c, CaseMode mode, std::string* out) {
  if (c < 0x80) {
    char ch = static_cast<char>(c);
    if (mode == CaseMode::kLower) {
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    } else if (ch >= 'a' && ch <= 'z') {
      ch = static_cast<char>(ch - 'a' + 'A');
    }
    out->push_back(ch);
    return;
  }
  if (c >= 0xD800 && c <= 0xDFFF) {  // surrogates (escaped bytes) have no case
    Append(c, out);
    return;
  }
  UChar src[2];
  int32_t src_len = 0;
  U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(c));
  UChar dst[16];
  UErrorCode err = U_ZERO_ERROR;
  int32_t n = 0;
  switch (mode) {
    case CaseMode::kUpper:
      n = u_strToUpper(dst, 16, src, src_len, "", &err);
      break;
    case CaseMode::kLower:
      n = u_strToLower(dst, 16, src, src_len, "", &err);
      break;
    case CaseMode::kTitle: {
      // Whole-string titlecasing of a single code point needs no break iterator.
      UCaseMap* map = ucasemap_open(
          "", U_TITLECASE_WHOLE_STRING | U_TITLECASE_NO_LOWERCASE | U_TITLECASE_NO_BREAK_ADJUSTMENT,
          &err);
      if (U_SUCCESS(err)) n = ucasemap_toTitle(map, dst, 16, src, src_len, &err);
      ucasemap_close(map);
      break;
    }
  }
  if (U_FAILURE(err) || n <= 0 || n > 16) {
    Append(c, out);
    return;
  }
  for (int32_t i = 0; i < n;) {
    UChar32 m;
    U16_NEXT(dst, i, n, m);
    Append(static_cast<char32_t>(m), out);
  }
}

bool IsCased(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASED); }
bool IsCaseIgnorable(char32_t c) {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASE_IGNORABLE);
}

// Python's lower_ucs4(): capital sigma becomes final sigma at the end of a word.
void AppendLower(const std::u32string& s, size_t i, std::string* out) {
  if (s[i] != 0x3A3) {
    AppendMapped(s[i], CaseMode::kLower, out);
    return;
  }
  size_t j = i;
  char32_t c = 0;
  bool found = false;
  while (j > 0) {
    c = s[--j];
    if (!IsCaseIgnorable(c)) {
      found = true;
      break;
    }
  }
  bool final_sigma = found && IsCased(c);
  if (final_sigma && i + 1 < s.size()) {
    size_t k = i + 1;
    for (; k < s.size(); ++k) {
      c = s[k];
      if (!IsCaseIgnorable(c)) break;
    }
    final_sigma = k == s.size() || !IsCased(c);
  }
  Append(final_sigma ? 0x3C2 : 0x3C3, out);
}

int8_t Category(char32_t c) { return u_charType(static_cast<UChar32>(c)); }

int32_t NumericType(char32_t c) {
  return u_getIntPropertyValue(static_cast<UChar32>(c), UCHAR_NUMERIC_TYPE);
}

}  // namespace

char32_t DecodeNext(std::string_view s, size_t* pos) {
  const auto b0 = static_cast<unsigned char>(s[*pos]);
  if (b0 < 0x80) {
    ++*pos;
    return b0;
  }
  int len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  }
  if (len == 0 || *pos + len > s.size()) {
    ++*pos;
    return kEscapeBase + b0;
  }
  for (int i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[*pos + i]);
    if (!IsContinuation(b)) {
      ++*pos;
      return kEscapeBase + b0;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++*pos;
    return kEscapeBase + b0;
  }
  *pos += len;
  return cp;
}

std::u32string Decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) out.push_back(DecodeNext(s, &pos));
  return out;
}

void Append(char32_t cp, std::string* out) {
  if (cp >= kEscapeBase + 0x80 && cp <= kEscapeBase + 0xFF) {
    out->push_back(static_cast<char>(cp - kEscapeBase));  // surrogateescape'd byte
  } else {
    AppendUtf8(cp, out);
  }
}

std::string Encode(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) Append(c, &out);
  return out;
}

size_t Length(std::string_view s) {
  size_t n = 0;
  for (size_t pos = 0; pos < s.size(); ++n) DecodeNext(s, &pos);
  return n;
}

std::optional<std::string> CodePointAt(std::string_view s, int64_t index) {
  if (index >= 0) {
    size_t pos = 0;
    for (int64_t i = 0; pos < s.size(); ++i) {
      const char32_t c = DecodeNext(s, &pos);
      if (i == index) {
        std::string out;
        Append(c, &out);
        return out;
      }
    }
    return std::nullopt;
  }
  // From the end: find the start of each code point walking backwards. Decoding forward
  // from a candidate start must land exactly on the current end; otherwise the last byte
  // is an invalid one that stands alone (as forward decoding would also see it).
  size_t end = s.size();
  for (int64_t i = -1; end > 0; --i) {
    size_t start = end - 1;
    for (int back = 0;
         start > 0 && back < 3 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80; ++back) {
      --start;
    }
    size_t pos = start;
    char32_t c = DecodeNext(s, &pos);
    if (pos != end) {
      start = end - 1;
      pos = start;
      c = DecodeNext(s, &pos);
    }
    if (i == index) {
      std::string out;
      Append(c, &out);
      return out;
    }
    end = start;
  }
  return std::nullopt;
}

bool IsSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

bool IsPrintable(char32_t c) {
  if (c == ' ') return true;
  if (c < 0x7F) return c >= 0x20;
  switch (Category(c)) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

bool IsAlpha(char32_t c) {
  switch (Category(c)) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return true;
    default:
      return false;
  }
}

bool IsDecimal(char32_t c) { return NumericType(c) == U_NT_DECIMAL; }
int DecimalValue(char32_t c) { return u_charDigitValue(static_cast<UChar32>(c)); }
bool IsDigit(char32_t c) {
  const int32_t t = NumericType(c);
  return t == U_NT_DECIMAL || t == U_NT_DIGIT;
}
bool IsNumeric(char32_t c) { return NumericType(c) != U_NT_NONE; }
bool IsLowercase(char32_t c) {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_LOWERCASE);
}
bool IsUppercase(char32_t c) {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_UPPERCASE);
}
bool IsTitlecase(char32_t c) { return Category(c) == U_TITLECASE_LETTER; }

std::string Upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) AppendMapped(DecodeNext(s, &pos), CaseMode::kUpper, &out);
  return out;
}

std::string Lower(std::string_view s) {
  const std::u32string cps = Decode(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < cps.size(); ++i) AppendLower(cps, i, &out);
  return out;
}

std::string Title(std::string_view s) {
  const std::u32string cps = Decode(s);
  std::string out;
  out.reserve(s.size());
  bool previous_is_cased = false;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (previous_is_cased) {
      AppendLower(cps, i, &out);
    } else {
      AppendMapped(cps[i], CaseMode::kTitle, &out);
    }
    previous_is_cased = IsCased(cps[i]);
  }
  return out;
}

std::string Capitalize(std::string_view s) {
  const std::u32string cps = Decode(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    if (i == 0) {
      AppendMapped(cps[i], CaseMode::kTitle, &out);
    } else {
      AppendLower(cps, i, &out);
    }
  }
  return out;
}

std::string_view RStripSpace(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && IsContinuation(static_cast<unsigned char>(s[start]))) --start;
    size_t pos = start;
    const char32_t c = DecodeNext(s, &pos);
    if (pos != end || !IsSpace(c)) break;
    end = start;
  }
  return s.substr(0, end);
}

std::string_view Strip(std::string_view s, const std::string* chars, bool left, bool right) {
  if (chars == nullptr) {
    if (left) s = LStripSpace(s);
    if (right) s = RStripSpace(s);
    return s;
  }
  const std::u32string set = Decode(*chars);
  auto strip = [&](char32_t c) { return set.find(c) != std::u32string::npos; };
  if (left) {
    size_t pos = 0;
    while (pos < s.size()) {
      size_t next = pos;
      if (!strip(DecodeNext(s, &next))) break;
      pos = next;
    }
    s.remove_prefix(pos);
  }
  if (right) {
    size_t end = s.size();
    while (end > 0) {
      size_t start = end - 1;
      for (int back = 0;
           start > 0 && back < 3 && IsContinuation(static_cast<unsigned char>(s[start])); ++back) {
        --start;
      }
      size_t pos = start;
      char32_t c = DecodeNext(s, &pos);
      if (pos != end) {  // no whole code point ends here: the last byte stands alone
        start = end - 1;
        pos = start;
        c = DecodeNext(s, &pos);
      }
      if (!strip(c)) break;
      end = start;
    }
    s = s.substr(0, end);
  }
  return s;
}

std::string_view LStripSpace(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    if (!IsSpace(DecodeNext(s, &next))) break;
    pos = next;
  }
  return s.substr(pos);
}

}  // namespace moeserve::jinja::unicode
