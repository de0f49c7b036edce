#include "engine/tokenizer/unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <array>
#include <vector>

namespace moeserve::unicode {
namespace {

// Length of the well-formed prefix of the sequence at text[pos] (0 if text[pos] cannot
// start one), following the table of well-formed byte sequences in Unicode chapter 3.
// *complete is set when that prefix is a whole character.
size_t WellFormedPrefix(std::string_view text, size_t pos, bool* complete) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  *complete = false;
  size_t width = 0;
  uint8_t lo = 0x80;
  uint8_t hi = 0xBF;
  if (lead < 0x80) {
    *complete = true;
    return 1;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    width = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    width = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    width = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  size_t n = 1;
  for (; n < width && pos + n < text.size(); ++n) {
    const uint8_t b = byte(pos + n);
    const uint8_t min = n == 1 ? lo : 0x80;
    const uint8_t max = n == 1 ? hi : 0xBF;
    if (b < min || b > max) break;
  }
  *complete = n == width;
  return n;
}

// ASCII answers, computed once; everything else goes to ICU.
std::array<CharClass, 128> MakeAsciiClasses() {
  std::array<CharClass, 128> classes{};
  for (char32_t c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      classes[c] = kLetter;
    } else if (c >= '0' && c <= '9') {
      classes[c] = kNumber;
    } else if (c == ' ' || (c >= '\t' && c <= '\r')) {
      classes[c] = kWhitespace;
    } else {
      classes[c] = kOther;
    }
  }
  return classes;
}

const std::array<CharClass, 128> kAsciiClasses = MakeAsciiClasses();

// Letters and numbers assigned in Unicode 15.1 and 16.0. Debian's ICU 72 (Unicode 15.0)
// calls them unassigned; the Oniguruma inside HF tokenizers 0.2x (Unicode 16.0) does not.
// Consulted only for code points ICU reports as unassigned, so a newer ICU takes over.
struct Range {
  char32_t first;
  char32_t last;
};
constexpr Range kUnicode16Letters[] = {
    {0x1C89, 0x1C8A},   {0xA7CB, 0xA7CD},   {0xA7DA, 0xA7DC},   {0x105C0, 0x105F3},
    {0x10D4A, 0x10D65}, {0x10D6F, 0x10D85}, {0x10EC2, 0x10EC4}, {0x11380, 0x11389},
    {0x1138B, 0x1138B}, {0x1138E, 0x1138E}, {0x11390, 0x113B5}, {0x113B7, 0x113B7},
    {0x113D1, 0x113D1}, {0x113D3, 0x113D3}, {0x11BC0, 0x11BE0}, {0x13460, 0x143FA},
    {0x16100, 0x1611D}, {0x16D40, 0x16D6C}, {0x18CFF, 0x18CFF}, {0x1E5D0, 0x1E5ED},
    {0x1E5F0, 0x1E5F0}, {0x2EBF0, 0x2EE5D},
};
constexpr Range kUnicode16Numbers[] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9}, {0x16130, 0x16139},
    {0x16D70, 0x16D79}, {0x1CCF0, 0x1CCF9}, {0x1E5F1, 0x1E5FA},
};

template <size_t N>
bool InRanges(const Range (&ranges)[N], char32_t cp) {
  for (const Range& r : ranges) {
    if (cp >= r.first && cp <= r.last) return true;
  }
  return false;
}

}  // namespace

char32_t DecodeUtf8(std::string_view text, size_t* pos) {
  bool complete = false;
  const size_t n = WellFormedPrefix(text, *pos, &complete);
  if (!complete) {
    *pos += 1;
    return kInvalidCodepoint;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(text.data()) + *pos;
  *pos += n;
  switch (n) {
    case 1:
      return p[0];
    case 2:
      return (char32_t{p[0] & 0x1Fu} << 6) | (p[1] & 0x3Fu);
    case 3:
      return (char32_t{p[0] & 0x0Fu} << 12) | (char32_t{p[1] & 0x3Fu} << 6) | (p[2] & 0x3Fu);
    default:
      return (char32_t{p[0] & 0x07u} << 18) | (char32_t{p[1] & 0x3Fu} << 12) |
             (char32_t{p[2] & 0x3Fu} << 6) | (p[3] & 0x3Fu);
  }
}

std::string ToValidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    bool complete = false;
    const size_t n = WellFormedPrefix(bytes, pos, &complete);
    if (complete) {
      out.append(bytes.substr(pos, n));
      pos += n;
    } else {
      // A maximal subpart (at least the one bad byte) becomes one U+FFFD.
      AppendUtf8(kReplacementCharacter, &out);
      pos += n == 0 ? 1 : n;
    }
  }
  return out;
}

CharClass ClassOf(char32_t cp) {
  if (cp < 128) return kAsciiClasses[cp];
  if (cp > 0x10FFFF) return kOther;
  const UChar32 c = static_cast<UChar32>(cp);
  switch (u_charType(c)) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return kLetter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return kNumber;
    case U_UNASSIGNED:
      if (InRanges(kUnicode16Letters, cp)) return kLetter;
      if (InRanges(kUnicode16Numbers, cp)) return kNumber;
      return kOther;
    default:
      return u_isUWhiteSpace(c) ? kWhitespace : kOther;
  }
}

char32_t SimpleFold(char32_t cp) {
  if (cp < 128) return (cp >= 'A' && cp <= 'Z') ? cp + ('a' - 'A') : cp;
  if (cp > 0x10FFFF) return cp;
  return static_cast<char32_t>(u_foldCase(static_cast<UChar32>(cp), U_FOLD_CASE_DEFAULT));
}

namespace {

// NFC of a well-formed UTF-8 run, appended to *out; the run unchanged if ICU fails.
void AppendNfcRun(std::string_view run, std::string* out) {
  if (run.empty()) return;
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* nfc = unorm2_getNFCInstance(&status);
  if (U_FAILURE(status) || run.size() > (1u << 30)) {
    out->append(run);
    return;
  }
  // UTF-8 -> UTF-16: at most one UTF-16 unit per UTF-8 byte.
  std::vector<UChar> utf16(run.size() + 1);
  int32_t utf16_len = 0;
  u_strFromUTF8(utf16.data(), static_cast<int32_t>(utf16.size()), &utf16_len, run.data(),
                static_cast<int32_t>(run.size()), &status);
  if (U_FAILURE(status)) {
    out->append(run);
    return;
  }
  if (unorm2_isNormalized(nfc, utf16.data(), utf16_len, &status) && U_SUCCESS(status)) {
    out->append(run);
    return;
  }
  status = U_ZERO_ERROR;
  // NFC can grow a string (by up to 3x for some compatibility-free decompositions).
  std::vector<UChar> normalized(static_cast<size_t>(utf16_len) * 3 + 16);
  const int32_t normalized_len = unorm2_normalize(nfc, utf16.data(), utf16_len, normalized.data(),
                                                  static_cast<int32_t>(normalized.size()), &status);
  if (U_FAILURE(status)) {
    out->append(run);
    return;
  }
  std::string utf8(static_cast<size_t>(normalized_len) * 3 + 1, '\0');
  int32_t utf8_len = 0;
  u_strToUTF8(utf8.data(), static_cast<int32_t>(utf8.size()), &utf8_len, normalized.data(),
              normalized_len, &status);
  if (U_FAILURE(status)) {
    out->append(run);
    return;
  }
  utf8.resize(static_cast<size_t>(utf8_len));
  out->append(utf8);
}

}  // namespace

std::string NormalizeNfc(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t run_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    if (DecodeUtf8(text, &pos) == kInvalidCodepoint) {
      AppendNfcRun(text.substr(run_start, start - run_start), &out);
      out.append(text.substr(start, pos - start));
      run_start = pos;
    }
  }
  AppendNfcRun(text.substr(run_start), &out);
  return out;
}

}  // namespace moeserve::unicode
