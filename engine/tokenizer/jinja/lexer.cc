#include "engine/tokenizer/jinja/lexer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/unicode.h"

namespace moeserve::jinja {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// jinja2 joins the source's lines with "\n" (any of \r\n, \r, \n ends a line) and, without
// keep_trailing_newline, drops one trailing newline.
std::string NormalizeNewlines(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  Lexer(std::string source, const LexerOptions& options)
      : src_(std::move(source)), options_(options) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  absl::StatusOr<std::vector<Token>> Run() {
    while (pos_ < src_.size()) {
      if (absl::Status s = LexRootStep(); !s.ok()) return s;
    }
    Token eof;
    eof.type = TokenType::kEof;
    eof.loc = LocationOf(src_.size());
    tokens_.push_back(std::move(eof));
    return std::move(tokens_);
  }

 private:
  // Tokens come in source order, so counting on from the previous position keeps this
  // linear in the template size (a long single-line template must not cost O(n^2)).
  Location LocationOf(size_t offset) {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset) - 1;
    const size_t line_start = *it;
    if (cached_offset_ < line_start || cached_offset_ > offset) {
      cached_offset_ = line_start;
      cached_column_ = 1;
    }
    cached_column_ += static_cast<int>(
        unicode::Length(std::string_view(src_).substr(cached_offset_, offset - cached_offset_)));
    cached_offset_ = offset;
    return Location{static_cast<int>(it - line_starts_.begin()) + 1, cached_column_};
  }

  bool StartsWith(size_t pos, std::string_view s) const {
    return src_.compare(pos, s.size(), s) == 0;
  }

  size_t SkipSpace(size_t pos) const {  // regex \s*
    while (pos < src_.size()) {
      size_t next = pos;
      if (!unicode::IsSpace(unicode::DecodeNext(src_, &next))) break;
      pos = next;
    }
    return pos;
  }

  // The end of a block tag at `pos` ("+%}", "-%}" + whitespace, "%}" + trim_blocks newline),
  // or 0 when there is none.
  size_t MatchBlockEnd(size_t pos) const {
    if (StartsWith(pos, "+%}")) return pos + 3;
    if (StartsWith(pos, "-%}")) return SkipSpace(pos + 3);
    if (StartsWith(pos, "%}")) {
      const size_t end = pos + 2;
      return options_.trim_blocks && end < src_.size() && src_[end] == '\n' ? end + 1 : end;
    }
    return 0;
  }

  void Emit(TokenType type, std::string text, size_t offset) {
    Token token;
    token.type = type;
    token.text = std::move(text);
    token.loc = LocationOf(offset);
    tokens_.push_back(std::move(token));
  }

  void EmitData(std::string_view text, size_t offset) {
    if (!text.empty()) Emit(TokenType::kData, std::string(text), offset);
  }

  // Whitespace control for the data before a tag: "-" strips all whitespace; otherwise
  // lstrip_blocks drops the indentation of a block/comment tag that starts its line.
  std::string_view StripBefore(std::string_view text, char sign, bool lstrip_applies) const {
    if (sign == '-') return unicode::RStripSpace(text);
    if (sign == '+' || !options_.lstrip_blocks || !lstrip_applies) return text;
    const size_t newline = text.rfind('\n');
    const size_t l_pos = newline == std::string_view::npos ? 0 : newline + 1;
    if ((l_pos > 0 || line_starting_) && l_pos < text.size() &&
        unicode::RStripSpace(text.substr(l_pos)).empty()) {
      return text.substr(0, l_pos);
    }
    return text;
  }

  void FinishMatch(size_t end) {
    pos_ = end;
    line_starting_ = end > 0 && src_[end - 1] == '\n';
  }

  absl::Status LexRootStep() {
    size_t tag = pos_;
    while (true) {
      tag = src_.find('{', tag);
      if (tag == std::string::npos || tag + 1 >= src_.size()) {
        EmitData(std::string_view(src_).substr(pos_), pos_);
        pos_ = src_.size();
        return absl::OkStatus();
      }
      const char kind = src_[tag + 1];
      if (kind == '{' || kind == '%' || kind == '#') break;
      ++tag;
    }
    const char kind = src_[tag + 1];
    size_t after = tag + 2;
    char sign = 0;
    if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
    size_t raw_content = 0;
    const bool is_raw = kind == '%' && MatchRawBegin(after, &raw_content);
    EmitData(StripBefore(std::string_view(src_).substr(pos_, tag - pos_), sign, kind != '{'), pos_);
    if (is_raw) return LexRaw(tag, raw_content);
    if (kind == '#') return LexComment(tag, after);
    return LexTag(kind == '%', tag, after);
  }

  // {%[-+]? raw (-%}\s*|%}); note that jinja2 applies no trim_blocks here.
  bool MatchRawBegin(size_t pos, size_t* content) const {
    pos = SkipSpace(pos);
    if (!StartsWith(pos, "raw")) return false;
    pos = SkipSpace(pos + 3);
    if (StartsWith(pos, "-%}")) {
      *content = SkipSpace(pos + 3);
      return true;
    }
    if (StartsWith(pos, "%}")) {
      *content = pos + 2;
      return true;
    }
    return false;
  }

  absl::Status LexRaw(size_t tag, size_t content) {
    FinishMatch(content);
    if (content >= src_.size()) return absl::OkStatus();  // jinja2 ends quietly here
    for (size_t i = src_.find("{%", content); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t p = i + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      p = SkipSpace(p);
      if (!StartsWith(p, "endraw")) continue;
      const size_t end = MatchBlockEnd(SkipSpace(p + 6));
      if (end == 0) continue;
      EmitData(StripBefore(std::string_view(src_).substr(content, i - content), sign, true),
               content);
      FinishMatch(end);
      return absl::OkStatus();
    }
    return SyntaxError(LocationOf(tag), "Missing end of raw directive");
  }

  absl::Status LexComment(size_t tag, size_t after) {
    if (after >= src_.size()) {  // "{#" ending the template: jinja2 ends quietly
      FinishMatch(src_.size());
      return absl::OkStatus();
    }
    const size_t close = src_.find("#}", after);
    if (close == std::string::npos)
      return SyntaxError(LocationOf(tag), "Missing end of comment tag");
    size_t end = close + 2;
    if (close > after && src_[close - 1] == '-') {
      end = SkipSpace(end);
    } else if (!(close > after && src_[close - 1] == '+') && options_.trim_blocks &&
               end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    FinishMatch(end);
    return absl::OkStatus();
  }

  absl::Status LexTag(bool is_block, size_t tag, size_t after) {
    Emit(is_block ? TokenType::kBlockBegin : TokenType::kVariableBegin, "", tag);
    pos_ = after;
    std::vector<char> balance;  // closing brackets we expect, innermost last
    while (true) {
      if (pos_ >= src_.size()) {
        return SyntaxError(LocationOf(tag), is_block ? "unexpected end of template, expected '%}'"
                                                     : "unexpected end of template, expected '}}'");
      }
      if (balance.empty()) {
        size_t end = 0;
        if (is_block) {
          end = MatchBlockEnd(pos_);
        } else if (StartsWith(pos_, "-}}")) {
          end = SkipSpace(pos_ + 3);
        } else if (StartsWith(pos_, "}}")) {
          end = pos_ + 2;
        }
        if (end != 0) {
          Emit(is_block ? TokenType::kBlockEnd : TokenType::kVariableEnd, "", pos_);
          FinishMatch(end);
          return absl::OkStatus();
        }
      }
      size_t next = pos_;
      const char32_t c = unicode::DecodeNext(src_, &next);
      if (unicode::IsSpace(c)) {
        pos_ = SkipSpace(pos_);
        continue;
      }
      if (absl::Status s = LexExpressionToken(&balance); !s.ok()) return s;
    }
  }

  absl::Status LexExpressionToken(std::vector<char>* balance) {
    const char c = src_[pos_];
    if (IsDigit(c)) {
      if (LexFloat()) return absl::OkStatus();
      return LexInteger();
    }
    if (IsNameStart(c)) {
      size_t end = pos_;
      while (end < src_.size() && IsNameChar(src_[end])) ++end;
      Emit(TokenType::kName, src_.substr(pos_, end - pos_), pos_);
      pos_ = end;
      return absl::OkStatus();
    }
    if (c == '\'' || c == '"') return LexString();
    return LexOperator(balance);
  }

  // regex (\d+_)*\d+ at `pos`: the end, or 0.
  size_t MatchDigits(size_t pos) const {
    if (pos >= src_.size() || !IsDigit(src_[pos])) return 0;
    while (true) {
      while (pos < src_.size() && IsDigit(src_[pos])) ++pos;
      if (pos + 1 < src_.size() && src_[pos] == '_' && IsDigit(src_[pos + 1])) {
        ++pos;
        continue;
      }
      return pos;
    }
  }

  size_t MatchExponent(size_t pos) const {
    if (pos >= src_.size() || (src_[pos] != 'e' && src_[pos] != 'E')) return 0;
    ++pos;
    if (pos < src_.size() && (src_[pos] == '+' || src_[pos] == '-')) ++pos;
    return MatchDigits(pos);
  }

  bool LexFloat() {
    if (pos_ > 0 && src_[pos_ - 1] == '.') return false;
    const size_t mantissa = MatchDigits(pos_);
    size_t end = 0;
    const size_t fraction =
        mantissa < src_.size() && src_[mantissa] == '.' ? MatchDigits(mantissa + 1) : 0;
    if (fraction != 0) end = MatchExponent(fraction);
    if (end == 0) end = MatchExponent(mantissa);
    if (end == 0) end = fraction;
    if (end == 0) return false;
    std::string text;
    for (size_t i = pos_; i < end; ++i) {
      if (src_[i] != '_') text.push_back(src_[i]);
    }
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range) {
      const size_t e = text.find_first_of("eE");
      value = e != std::string::npos && text[e + 1] == '-'
                  ? 0.0
                  : std::numeric_limits<double>::infinity();
    }
    Emit(TokenType::kFloat, "", pos_);
    tokens_.back().float_value = value;
    pos_ = end;
    return true;
  }

  absl::Status LexInteger() {
    size_t end = pos_ + 1;
    int base = 10;
    size_t digits_start = pos_;
    if (src_[pos_] == '0' && pos_ + 1 < src_.size()) {
      const char prefix = static_cast<char>(src_[pos_ + 1] | 0x20);
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : prefix == 'x' ? 16 : 10;
      if (base != 10) {
        size_t p = pos_ + 2;
        size_t groups = 0;
        while (true) {
          const size_t q = p < src_.size() && src_[p] == '_' ? p + 1 : p;
          const int digit = q < src_.size() ? HexValue(src_[q]) : -1;
          if (digit < 0 || digit >= base) break;
          p = q + 1;
          ++groups;
        }
        if (groups > 0) {
          end = p;
          digits_start = pos_ + 2;
        } else {
          base = 10;
        }
      }
    }
    if (base == 10) {
      // [1-9](_?\d)* or 0(_?0)*
      const bool zero = src_[pos_] == '0';
      while (true) {
        const size_t q = end < src_.size() && src_[end] == '_' ? end + 1 : end;
        if (q >= src_.size() || !IsDigit(src_[q]) || (zero && src_[q] != '0')) break;
        end = q + 1;
      }
    }
    uint64_t value = 0;
    for (size_t i = digits_start; i < end; ++i) {
      if (src_[i] == '_') continue;
      const uint64_t digit = static_cast<uint64_t>(HexValue(src_[i]));
      if (value > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - digit) / base) {
        return Unsupported(LocationOf(pos_), "integer literal larger than 64 bits");
      }
      value = value * base + digit;
    }
    Emit(TokenType::kInteger, "", pos_);
    tokens_.back().int_value = static_cast<int64_t>(value);
    pos_ = end;
    return absl::OkStatus();
  }

  absl::Status LexString() {
    const char quote = src_[pos_];
    size_t end = pos_ + 1;
    while (end < src_.size() && src_[end] != quote) end += src_[end] == '\\' ? 2 : 1;
    if (end >= src_.size()) return SyntaxError(LocationOf(pos_), "unterminated string literal");
    absl::StatusOr<std::string> value =
        Unescape(std::string_view(src_).substr(pos_ + 1, end - pos_ - 1), pos_);
    if (!value.ok()) return value.status();
    Emit(TokenType::kString, *std::move(value), pos_);
    pos_ = end + 1;
    return absl::OkStatus();
  }

  // Python's unicode-escape decoding of the literal's text, as jinja2 applies it.
  absl::StatusOr<std::string> Unescape(std::string_view body, size_t offset) {
    std::string out;
    out.reserve(body.size());
    for (size_t i = 0; i < body.size(); ++i) {
      if (body[i] != '\\') {
        out.push_back(body[i]);
        continue;
      }
      const char d = body[++i];
      if (static_cast<unsigned char>(d) >= 0x80) {
        // jinja2 first turns non-ASCII into \xNN/\uNNNN/\UNNNNNNNN text, so a backslash
        // before one escapes that text's own backslash.
        size_t next = i;
        const char32_t cp = unicode::DecodeNext(body, &next);
        out.append(cp <= 0xFF     ? absl::StrFormat("\\x%02x", static_cast<unsigned>(cp))
                   : cp <= 0xFFFF ? absl::StrFormat("\\u%04x", static_cast<unsigned>(cp))
                                  : absl::StrFormat("\\U%08x", static_cast<unsigned>(cp)));
        i = next - 1;
        continue;
      }
      switch (d) {
        case '\n':
          break;
        case '\\':
        case '\'':
        case '"':
          out.push_back(d);
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t width = d == 'x' ? 2 : d == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (size_t k = 1; k <= width; ++k) {
            const int h = i + k < body.size() ? HexValue(body[i + k]) : -1;
            if (h < 0) {
              return SyntaxError(LocationOf(offset), Cat("truncated \\", std::string(1, d),
                                                         std::string(width, 'X'), " escape"));
            }
            cp = cp * 16 + static_cast<char32_t>(h);
          }
          if (cp > 0x10FFFF) return SyntaxError(LocationOf(offset), "illegal Unicode character");
          unicode::Append(cp, &out);
          i += width;
          break;
        }
        case 'N':
          return Unsupported(LocationOf(offset), "\\N{...} escape in a string literal");
        default:
          if (d >= '0' && d <= '7') {
            char32_t cp = 0;
            size_t k = 0;
            for (; k < 3 && i + k < body.size() && body[i + k] >= '0' && body[i + k] <= '7'; ++k) {
              cp = cp * 8 + static_cast<char32_t>(body[i + k] - '0');
            }
            unicode::Append(cp, &out);
            i += k - 1;
          } else {
            out.push_back('\\');  // unknown escapes stay as written
            out.push_back(d);
          }
      }
    }
    return out;
  }

  absl::Status LexOperator(std::vector<char>* balance) {
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwoChar) {
      if (StartsWith(pos_, op)) {
        Emit(TokenType::kOperator, std::string(op), pos_);
        pos_ += 2;
        return absl::OkStatus();
      }
    }
    const char c = src_[pos_];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      size_t next = pos_;
      const char32_t cp = unicode::DecodeNext(src_, &next);
      if (cp >= 0x80 && unicode::IsAlpha(cp)) {
        return Unsupported(LocationOf(pos_), "non-ASCII identifier");
      }
      return SyntaxError(LocationOf(pos_),
                         Cat("unexpected char '", src_.substr(pos_, next - pos_), "'"));
    }
    if (c == '(' || c == '[' || c == '{') {
      balance->push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance->empty()) {
        return SyntaxError(LocationOf(pos_), Cat("unexpected '", std::string(1, c), "'"));
      }
      if (balance->back() != c) {
        return SyntaxError(LocationOf(pos_), Cat("unexpected '", std::string(1, c), "', expected '",
                                                 std::string(1, balance->back()), "'"));
      }
      balance->pop_back();
    }
    Emit(TokenType::kOperator, std::string(1, c), pos_);
    ++pos_;
    return absl::OkStatus();
  }

  const std::string src_;
  const LexerOptions options_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  bool line_starting_ = true;  // did the last match end with a newline (or is this the start)
  size_t cached_offset_ = 0;   // LocationOf's last offset and its column
  int cached_column_ = 1;
};

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source, const LexerOptions& options) {
  return Lexer(NormalizeNewlines(source, options.keep_trailing_newline), options).Run();
}

}  // namespace moeserve::jinja
