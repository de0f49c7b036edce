#include "engine/tokenizer/pre_tokenizer.h"

#include <cstddef>
#include <cstdint>

#include "engine/tokenizer/unicode.h"

namespace moeserve {
namespace {

using unicode::CharClass;

// `text` decoded once: code point, class and starting byte of every character. Matchers
// work in character indices; offset(n) is text.size().
class DecodedText {
 public:
  explicit DecodedText(std::string_view text) : text_(text) {
    cps_.reserve(text.size());
    classes_.reserve(text.size());
    offsets_.reserve(text.size() + 1);
    size_t pos = 0;
    while (pos < text.size()) {
      offsets_.push_back(pos);
      const char32_t cp = unicode::DecodeUtf8(text, &pos);
      cps_.push_back(cp);
      classes_.push_back(unicode::ClassOf(cp));
    }
    offsets_.push_back(text.size());
  }

  size_t size() const { return cps_.size(); }
  char32_t cp(size_t i) const { return cps_[i]; }
  CharClass cls(size_t i) const { return classes_[i]; }
  std::string_view Slice(size_t begin, size_t end) const {
    return text_.substr(offsets_[begin], offsets_[end] - offsets_[begin]);
  }

  // End of the run of characters of class `c` that starts at `i` (at most `end`).
  size_t RunEnd(size_t i, size_t end, CharClass c) const {
    while (i < end && classes_[i] == c) ++i;
    return i;
  }

 private:
  std::string_view text_;
  std::vector<char32_t> cps_;
  std::vector<CharClass> classes_;
  std::vector<size_t> offsets_;
};

bool IsNewline(char32_t cp) { return cp == '\r' || cp == '\n'; }

// Length of the contraction ('s 't 're 've 'm 'll 'd) at i, or 0. Case-insensitive
// matching folds as Oniguruma's (?i) does, e.g. "'S" and "'\u017F" (long s) match.
size_t ContractionLength(const DecodedText& t, size_t i, size_t end, bool ignore_case) {
  if (t.cp(i) != '\'' || i + 1 >= end) return 0;
  const auto at = [&](size_t k) { return ignore_case ? unicode::SimpleFold(t.cp(k)) : t.cp(k); };
  const char32_t c1 = at(i + 1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (i + 2 >= end) return 0;
  const char32_t c2 = at(i + 2);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

// The end of the white-space word at i for the tail alternatives \s+(?!\S)|\s+: a run
// that reaches `end` is taken whole; otherwise its last character is left to start the
// next word (as " ?\p{L}+" and friends want), unless it is the only one.
size_t WhitespaceWordEnd(const DecodedText& t, size_t i, size_t end) {
  const size_t run_end = t.RunEnd(i, end, unicode::kWhitespace);
  if (run_end == end || run_end - i == 1) return run_end;
  return run_end - 1;
}

// One GPT-2 regex match at i (i < end); returns its end.
size_t MatchGpt2(const DecodedText& t, size_t i, size_t end) {
  if (const size_t n = ContractionLength(t, i, end, /*ignore_case=*/false); n > 0) return i + n;
  const CharClass c = t.cls(i);
  if (c != unicode::kWhitespace) return t.RunEnd(i, end, c);  // \p{L}+ | \p{N}+ | [^\s..]+
  if (t.cp(i) == ' ' && i + 1 < end && t.cls(i + 1) != unicode::kWhitespace) {
    return t.RunEnd(i + 1, end, t.cls(i + 1));  // " ?" before one of the three runs
  }
  return WhitespaceWordEnd(t, i, end);
}

// One Llama 3 / Qwen2 regex match at i (i < end); returns its end.
size_t MatchLlama3(const DecodedText& t, size_t i, size_t end, size_t max_number_run) {
  if (const size_t n = ContractionLength(t, i, end, /*ignore_case=*/true); n > 0) return i + n;
  const CharClass c = t.cls(i);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c == unicode::kLetter) return t.RunEnd(i, end, unicode::kLetter);
  if (c != unicode::kNumber && !IsNewline(t.cp(i)) && i + 1 < end &&
      t.cls(i + 1) == unicode::kLetter) {
    return t.RunEnd(i + 1, end, unicode::kLetter);
  }
  // \p{N}{1,max}
  if (c == unicode::kNumber) {
    size_t j = i;
    while (j < end && j - i < max_number_run && t.cls(j) == unicode::kNumber) ++j;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t other_start = end;
  if (c == unicode::kOther) {
    other_start = i;
  } else if (t.cp(i) == ' ' && i + 1 < end && t.cls(i + 1) == unicode::kOther) {
    other_start = i + 1;
  }
  if (other_start < end) {
    size_t j = t.RunEnd(other_start, end, unicode::kOther);
    while (j < end && IsNewline(t.cp(j))) ++j;
    return j;
  }
  // Here t.cls(i) is white space. \s*[\r\n]+ : up to and including the run's last newline.
  const size_t run_end = t.RunEnd(i, end, unicode::kWhitespace);
  for (size_t k = run_end; k > i; --k) {
    if (IsNewline(t.cp(k - 1))) return k;
  }
  return WhitespaceWordEnd(t, i, end);
}

template <typename Matcher>
void SplitRange(const DecodedText& t, size_t begin, size_t end, Matcher match,
                std::vector<std::string_view>* words) {
  size_t i = begin;
  while (i < end) {
    const size_t j = match(t, i, end);
    words->push_back(t.Slice(i, j));
    i = j;
  }
}

}  // namespace

void PreTokenize(PreTokenizerKind kind, std::string_view text,
                 std::vector<std::string_view>* words) {
  if (text.empty()) return;
  const DecodedText t(text);
  const size_t n = t.size();
  switch (kind) {
    case PreTokenizerKind::kGpt2:
      SplitRange(t, 0, n, MatchGpt2, words);
      return;
    case PreTokenizerKind::kDigitsGpt2: {
      // Each number character alone; the regex runs on each stretch between them as on a
      // string of its own (its look-ahead does not see past the stretch).
      size_t begin = 0;
      for (size_t i = 0; i <= n; ++i) {
        if (i < n && t.cls(i) != unicode::kNumber) continue;
        SplitRange(t, begin, i, MatchGpt2, words);
        if (i < n) words->push_back(t.Slice(i, i + 1));
        begin = i + 1;
      }
      return;
    }
    case PreTokenizerKind::kLlama3:
      SplitRange(
          t, 0, n,
          [](const DecodedText& d, size_t i, size_t end) { return MatchLlama3(d, i, end, 3); },
          words);
      return;
    case PreTokenizerKind::kQwen2:
      SplitRange(
          t, 0, n,
          [](const DecodedText& d, size_t i, size_t end) { return MatchLlama3(d, i, end, 1); },
          words);
      return;
  }
}

}  // namespace moeserve
