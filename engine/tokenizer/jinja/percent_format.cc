// Python's printf-style formatting (`"%s and %d" % args`), used by the % operator and the
// |format filter. Mapping keys (%(name)s) and * widths are not supported.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/operators.h"
#include "engine/tokenizer/jinja/unicode.h"

namespace moeserve::jinja {
namespace {

// Widths and precisions beyond this are refused (they would overflow `int` while parsed,
// and build strings as large as operators.cc's bound on 'a' * n).
constexpr int kMaxWidth = 1 << 26;

struct Spec {
  bool left = false;   // -
  bool plus = false;   // +
  bool space = false;  // ' '
  bool alt = false;    // #
  bool zero = false;   // 0
  int width = 0;
  int precision = -1;
  char conv = 0;
};

void Pad(const Spec& spec, std::string body, std::string* out) {
  const int len = static_cast<int>(unicode::Length(body));
  if (len >= spec.width) {
    out->append(body);
  } else if (spec.left) {
    CatAppend(out, body, std::string(spec.width - len, ' '));
  } else {
    CatAppend(out, std::string(spec.width - len, ' '), body);
  }
}

absl::Status FormatInteger(const Spec& spec, const Value& arg, std::string* out) {
  if (arg.is_undefined()) return UndefinedError(arg);
  int64_t value;
  if (arg.is_integral()) {
    value = arg.int_value();
  } else if (arg.is_float() && (spec.conv == 'd' || spec.conv == 'i' || spec.conv == 'u')) {
    const double d = arg.float_value();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) {
      return RenderUnsupported("formatting this float as an integer");
    }
    value = static_cast<int64_t>(std::trunc(d));
  } else if (spec.conv == 'x' || spec.conv == 'X' || spec.conv == 'o') {
    return RenderError(Cat("%", std::string(1, spec.conv), " format: an integer is required, not ",
                           TypeName(arg)));
  } else {
    return RenderError(Cat("%", std::string(1, spec.conv),
                           " format: a real number is required, not ", TypeName(arg)));
  }
  const bool negative = value < 0;
  uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  const int base = spec.conv == 'x' || spec.conv == 'X' ? 16 : spec.conv == 'o' ? 8 : 10;
  const char* digit_chars = spec.conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string digits;
  do {
    digits.insert(digits.begin(), digit_chars[magnitude % base]);
    magnitude /= base;
  } while (magnitude > 0);
  if (spec.precision > static_cast<int>(digits.size())) {
    digits.insert(0, spec.precision - digits.size(), '0');
  }
  const std::string_view sign = negative ? "-" : spec.plus ? "+" : spec.space ? " " : "";
  std::string_view prefix;
  if (spec.alt && base == 16) prefix = spec.conv == 'X' ? "0X" : "0x";
  if (spec.alt && base == 8) prefix = "0o";
  const int len = static_cast<int>(sign.size() + prefix.size() + digits.size());
  if (spec.zero && !spec.left && len < spec.width) {
    digits.insert(0, spec.width - len, '0');
  }
  Pad(spec, Cat(sign, prefix, digits), out);
  return absl::OkStatus();
}

absl::Status FormatFloatSpec(const Spec& spec, const Value& arg, std::string* out) {
  if (arg.is_undefined()) return UndefinedError(arg);
  if (!arg.is_number()) {
    return RenderError(Cat("must be real number, not ", TypeName(arg)));
  }
  std::string c_spec = "%";
  if (spec.left) c_spec += '-';
  if (spec.plus) c_spec += '+';
  if (spec.space) c_spec += ' ';
  if (spec.alt) c_spec += '#';
  if (spec.zero) c_spec += '0';
  if (spec.width > 0) CatAppend(&c_spec, spec.width);
  CatAppend(&c_spec, ".", spec.precision < 0 ? 6 : spec.precision, std::string(1, spec.conv));
  const double d = arg.float_value();
  const int n = std::snprintf(nullptr, 0, c_spec.c_str(), d);
  std::string buf(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(buf.data(), buf.size(), c_spec.c_str(), d);
  buf.resize(n);
  out->append(buf);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> PercentFormat(std::string_view format, const std::vector<Value>& args,
                                          bool unused_ok) {
  std::string out;
  size_t next_arg = 0;
  for (size_t i = 0; i < format.size();) {
    if (format[i] != '%') {
      out.push_back(format[i++]);
      continue;
    }
    const size_t start = i++;
    Spec spec;
    if (i < format.size() && format[i] == '(') {
      return RenderUnsupported("%(name) format with a mapping");
    }
    for (; i < format.size(); ++i) {
      const char f = format[i];
      if (f == '-') {
        spec.left = true;
      } else if (f == '+') {
        spec.plus = true;
      } else if (f == ' ') {
        spec.space = true;
      } else if (f == '#') {
        spec.alt = true;
      } else if (f == '0') {
        spec.zero = true;
      } else {
        break;
      }
    }
    if (i < format.size() && format[i] == '*') return RenderUnsupported("* width in % format");
    while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
      spec.width = spec.width * 10 + (format[i++] - '0');
      if (spec.width > kMaxWidth) return RenderUnsupported("width too large in % format");
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      if (i < format.size() && format[i] == '*')
        return RenderUnsupported("* precision in % format");
      spec.precision = 0;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        spec.precision = spec.precision * 10 + (format[i++] - '0');
        if (spec.precision > kMaxWidth) {
          return RenderUnsupported("precision too large in % format");
        }
      }
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) return RenderError("incomplete format");
    spec.conv = format[i++];
    if (spec.conv == '%') {
      out.push_back('%');
      continue;
    }
    if (next_arg >= args.size()) return RenderError("not enough arguments for format string");
    const Value& arg = args[next_arg++];
    switch (spec.conv) {
      case 's':
      case 'r': {
        absl::StatusOr<std::string> text = spec.conv == 's' ? ToStr(arg) : Repr(arg);
        if (!text.ok()) return text.status();
        if (spec.precision >= 0) {
          std::u32string cps = unicode::Decode(*text);
          if (cps.size() > static_cast<size_t>(spec.precision)) cps.resize(spec.precision);
          *text = unicode::Encode(cps);
        }
        Pad(spec, *std::move(text), &out);
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o':
        if (absl::Status s = FormatInteger(spec, arg, &out); !s.ok()) return s;
        break;
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G':
        if (absl::Status s = FormatFloatSpec(spec, arg, &out); !s.ok()) return s;
        break;
      case 'c': {
        std::string ch;
        if (arg.is_integral() && arg.int_value() >= 0 && arg.int_value() < 0x110000) {
          unicode::Append(static_cast<char32_t>(arg.int_value()), &ch);
        } else if (arg.is_string() && unicode::Length(arg.str()) == 1) {
          ch = arg.str();
        } else {
          return RenderError("%c requires int or char");
        }
        Pad(spec, std::move(ch), &out);
        break;
      }
      default:
        return RenderError(absl::StrFormat("unsupported format character '%c' (0x%x) at index %d",
                                           spec.conv, static_cast<unsigned char>(spec.conv),
                                           static_cast<int>(i - 1 - start + start)));
    }
  }
  if (next_arg < args.size() && !unused_ok) {
    return RenderError("not all arguments converted during string formatting");
  }
  return out;
}

}  // namespace moeserve::jinja
