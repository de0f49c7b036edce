// The filters on single values (strings, numbers) and the filter registry. Sequence
// filters live in sequence_filters.cc.
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/builtins.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/interpreter.h"
#include "engine/tokenizer/jinja/json.h"
#include "engine/tokenizer/jinja/operators.h"
#include "engine/tokenizer/jinja/sequence_filters.h"
#include "engine/tokenizer/jinja/unicode.h"

namespace moeserve::jinja {
namespace {

using Args = std::vector<std::optional<Value>>;

// jinja2's soft_str: strings (and Markup) unchanged, anything else through str().
absl::StatusOr<Value> SoftStr(const Value& v) {
  if (v.is_string()) return v;
  MOESERVE_ASSIGN_OR_RETURN(std::string s, ToStr(v));
  return Value::String(std::move(s));
}

Value SameKind(const Value& like, std::string s) {
  return like.is_markup() ? Value::Markup(std::move(s)) : Value::String(std::move(s));
}

template <std::string (*kMap)(std::string_view)>
absl::StatusOr<Value> CaseFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("case filter", args, {}).status());
  MOESERVE_ASSIGN_OR_RETURN(Value s, SoftStr(v));
  return SameKind(s, kMap(s.str()));
}

// jinja2's |title: each run between [-\s({[<] separators gets s[0].upper() + s[1:].lower().
absl::StatusOr<Value> TitleFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("title", args, {}).status());
  MOESERVE_ASSIGN_OR_RETURN(Value s, SoftStr(v));
  const std::u32string cps = unicode::Decode(s.str());
  auto is_sep = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || unicode::IsSpace(c);
  };
  std::string out;
  for (size_t i = 0; i < cps.size();) {
    const bool sep = is_sep(cps[i]);
    size_t j = i;
    while (j < cps.size() && is_sep(cps[j]) == sep) ++j;
    const std::string item = unicode::Encode(std::u32string_view(cps).substr(i, j - i));
    if (sep) {
      out += item;
    } else {
      std::string first;
      unicode::Append(cps[i], &first);
      out += unicode::Upper(first);
      out += unicode::Lower(unicode::Encode(std::u32string_view(cps).substr(i + 1, j - i - 1)));
    }
    i = j;
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> TrimFilter(Interpreter& interpreter, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("trim", call, {"chars"}));
  MOESERVE_ASSIGN_OR_RETURN(Value s, SoftStr(v));
  const bool has_chars = args[0].has_value() && !args[0]->is_none();
  if (s.is_markup() && has_chars) return RenderUnsupported("|trim(chars) on a Markup value");
  std::string chars;
  if (has_chars) {
    if (!args[0]->is_string()) {
      return RenderError(Cat("strip arg must be None or str, not ", TypeName(*args[0])));
    }
    chars = args[0]->str();
  }
  return SameKind(s,
                  std::string(unicode::Strip(s.str(), has_chars ? &chars : nullptr, true, true)));
}

absl::StatusOr<Value> ReplaceFilter(Interpreter& interpreter, const Value& v,
                                    const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("replace", call, {"old", "new", "count"}));
  if (!args[0].has_value() || !args[1].has_value()) {
    return RenderError("replace() missing required arguments 'old' and 'new'");
  }
  MOESERVE_ASSIGN_OR_RETURN(std::string s, ToStr(v));
  MOESERVE_ASSIGN_OR_RETURN(std::string old_s, ToStr(*args[0]));
  MOESERVE_ASSIGN_OR_RETURN(std::string new_s, ToStr(*args[1]));
  CallArgs replace_args;
  replace_args.positional = {Value::String(old_s), Value::String(new_s)};
  if (args[2].has_value() && !args[2]->is_none()) replace_args.positional.push_back(*args[2]);
  MOESERVE_ASSIGN_OR_RETURN(Value replace, GetAttribute(Value::String(std::move(s)), "replace"));
  return interpreter.Call(replace, replace_args);
}

absl::StatusOr<Value> LengthFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("length", args, {}).status());
  MOESERVE_ASSIGN_OR_RETURN(int64_t n, Length(v));
  return Value::Int(n);
}

absl::StatusOr<Value> DefaultFilter(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("default", call, {"default_value", "boolean"}));
  const bool boolean = args[1].has_value() && Truthy(*args[1]);
  if (v.is_undefined() || (boolean && !Truthy(v))) {
    return args[0].has_value() ? *args[0] : Value::String("");
  }
  return v;
}

absl::StatusOr<Value> StringFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("string", args, {}).status());
  return SoftStr(v);
}

absl::StatusOr<Value> SafeFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("safe", args, {}).status());
  if (v.is_markup()) return v;
  MOESERVE_ASSIGN_OR_RETURN(std::string s, ToStr(v));
  return Value::Markup(std::move(s));
}

absl::StatusOr<Value> EscapeFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("escape", args, {}).status());
  if (v.is_markup()) return v;
  MOESERVE_ASSIGN_OR_RETURN(std::string s, ToStr(v));
  return Value::Markup(HtmlEscape(s));
}

absl::StatusOr<Value> ForceEscapeFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("forceescape", args, {}).status());
  MOESERVE_ASSIGN_OR_RETURN(std::string s, ToStr(v));
  return Value::Markup(HtmlEscape(s));
}

absl::StatusOr<Value> AbsFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("abs", args, {}).status());
  if (v.is_float()) return Value::Float(std::fabs(v.float_value()));
  if (v.is_integral()) {
    if (v.int_value() < 0) return Negate(v);
    return Value::Int(v.int_value());
  }
  if (v.is_undefined()) return UndefinedError(v);
  return RenderError(Cat("bad operand type for abs(): '", TypeName(v), "'"));
}

// Python's float(str): surrounding whitespace, underscores between digits, inf and nan.
std::optional<double> ParseFloat(std::string_view text) {
  std::string s(unicode::RStripSpace(unicode::LStripSpace(text)));
  std::string lower = absl::AsciiStrToLower(s);
  std::string_view body = lower;
  double sign = 1;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    sign = body[0] == '-' ? -1 : 1;
    body.remove_prefix(1);
  }
  if (body == "inf" || body == "infinity") return sign * HUGE_VAL;
  if (body == "nan") return std::nan("");
  std::string digits;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      const bool ok = i > 0 && i + 1 < s.size() &&
                      std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
                      std::isdigit(static_cast<unsigned char>(s[i + 1]));
      if (!ok) return std::nullopt;
      continue;
    }
    digits.push_back(s[i]);
  }
  if (digits.empty()) return std::nullopt;
  size_t start = digits[0] == '+' ? 1 : 0;
  double value = 0;
  auto [ptr, ec] = std::from_chars(digits.data() + start, digits.data() + digits.size(), value);
  if (ptr != digits.data() + digits.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) {  // Python overflows to inf, underflows to 0
    const size_t e = digits.find_first_of("eE");
    const bool tiny = e != std::string::npos && e + 1 < digits.size() && digits[e + 1] == '-';
    return sign * (tiny ? 0.0 : HUGE_VAL);
  }
  return value;
}

// Python's int(str, base) for bases 2..36 (and 0 for prefixed literals): nullopt when the
// text is not an integer, an error when it is one beyond 64 bits.
absl::StatusOr<std::optional<int64_t>> ParseInt(std::string_view text, int64_t base) {
  std::string s(unicode::RStripSpace(unicode::LStripSpace(text)));
  bool negative = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  auto has_prefix = [&](char p) {
    return i + 1 < s.size() && s[i] == '0' && (s[i + 1] | 0x20) == p;
  };
  if ((base == 16 && has_prefix('x')) || (base == 8 && has_prefix('o')) ||
      (base == 2 && has_prefix('b'))) {
    i += 2;
    if (i < s.size() && s[i] == '_') ++i;
  } else if (base == 0) {
    base = has_prefix('x') ? 16 : has_prefix('o') ? 8 : has_prefix('b') ? 2 : 10;
    if (base != 10) i += 2;
  }
  if (base < 2 || base > 36 || i >= s.size()) return std::nullopt;
  uint64_t value = 0;
  bool prev_digit = false;
  bool overflow = false;
  const std::u32string cps = unicode::Decode(std::string_view(s).substr(i));
  for (i = 0; i < cps.size(); ++i) {
    if (cps[i] == '_' && prev_digit && i + 1 < cps.size() && cps[i + 1] != '_') {
      prev_digit = false;
      continue;
    }
    const char32_t c =
        cps[i] < 0x80 ? static_cast<char32_t>(std::tolower(static_cast<int>(cps[i]))) : cps[i];
    const int digit = c >= '0' && c <= '9'    ? static_cast<int>(c - '0')
                      : c >= 'a' && c <= 'z'  ? static_cast<int>(c - 'a' + 10)
                      : unicode::IsDecimal(c) ? unicode::DecimalValue(c)
                                              : 99;
    if (digit >= base) return std::nullopt;
    if (value > (static_cast<uint64_t>(INT64_MAX) + 1 - digit) / base) overflow = true;
    value = value * base + digit;
    prev_digit = true;
  }
  if (!prev_digit) return std::nullopt;
  if (overflow || (!negative && value > static_cast<uint64_t>(INT64_MAX))) {
    return RenderUnsupported("integers beyond 64 bits");
  }
  return negative ? static_cast<int64_t>(0 - value) : static_cast<int64_t>(value);
}

// int(d): NaN is a ValueError (the filter's default), infinity an OverflowError, and
// anything past 64 bits a Python big int this interpreter does not have.
absl::StatusOr<std::optional<int64_t>> FloatToInt(double d, bool overflow_is_default) {
  if (std::isnan(d)) return std::optional<int64_t>();
  if (std::isinf(d)) {
    if (overflow_is_default) return std::optional<int64_t>();
    return RenderError("cannot convert float infinity to integer");
  }
  if (std::fabs(d) >= 9223372036854775808.0) return RenderUnsupported("integers beyond 64 bits");
  return std::optional<int64_t>(static_cast<int64_t>(std::trunc(d)));
}

absl::StatusOr<Value> IntFilter(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("int", call, {"default", "base"}));
  if (v.is_undefined()) return UndefinedError(v);  // int(Undefined) raises
  const Value dflt = args[0].has_value() ? *args[0] : Value::Int(0);
  MOESERVE_ASSIGN_OR_RETURN(int64_t base, [&]() -> absl::StatusOr<int64_t> {
    if (!args[1].has_value()) return 10;
    if (!args[1]->is_integral()) return RenderError("int() base must be an integer");
    return args[1]->int_value();
  }());
  if (v.is_string()) {
    MOESERVE_ASSIGN_OR_RETURN(std::optional<int64_t> i, ParseInt(v.str(), base));
    if (i.has_value()) return Value::Int(*i);
    if (std::optional<double> d = ParseFloat(v.str()); d.has_value()) {
      MOESERVE_ASSIGN_OR_RETURN(i, FloatToInt(*d, /*overflow_is_default=*/true));
      if (i.has_value()) return Value::Int(*i);
    }
    return dflt;
  }
  if (v.is_integral()) return Value::Int(v.int_value());
  if (v.is_float()) {
    MOESERVE_ASSIGN_OR_RETURN(std::optional<int64_t> i,
                              FloatToInt(v.float_value(), /*overflow_is_default=*/false));
    if (i.has_value()) return Value::Int(*i);
  }
  return dflt;
}

absl::StatusOr<Value> FloatFilter(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("float", call, {"default"}));
  if (v.is_undefined()) return UndefinedError(v);  // float(Undefined) raises
  const Value dflt = args[0].has_value() ? *args[0] : Value::Float(0.0);
  if (v.is_number()) return Value::Float(v.float_value());
  if (v.is_string()) {
    if (std::optional<double> d = ParseFloat(v.str()); d.has_value()) return Value::Float(*d);
  }
  return dflt;
}

// Python's round(x, n) for floats: correctly rounded, ties to even.
double RoundFloat(double x, int64_t ndigits) {
  const int n = std::snprintf(nullptr, 0, "%.*f", static_cast<int>(ndigits), x);
  std::string buf(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(buf.data(), buf.size(), "%.*f", static_cast<int>(ndigits), x);
  double out = 0;
  std::from_chars(buf.data(), buf.data() + n, out);
  return out;
}

absl::StatusOr<Value> RoundFilter(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("round", call, {"precision", "method"}));
  int64_t precision = 0;
  if (args[0].has_value()) {
    if (!args[0]->is_integral()) return RenderError("round() precision must be an integer");
    precision = args[0]->int_value();
  }
  std::string method = "common";
  if (args[1].has_value()) {
    MOESERVE_ASSIGN_OR_RETURN(method, ToStr(*args[1]));
  }
  if (method != "common" && method != "ceil" && method != "floor") {
    return RenderError("method must be common, ceil or floor");
  }
  if (v.is_undefined()) return UndefinedError(v);
  if (!v.is_number()) {
    return RenderError(Cat("type ", TypeName(v), " doesn't define __round__ method"));
  }
  if (precision < 0 || precision > 300)
    return RenderUnsupported("round() precision outside 0..300");
  if (method == "common") {
    if (v.is_integral()) return Value::Int(v.int_value());
    if (!std::isfinite(v.float_value())) return v;
    return Value::Float(RoundFloat(v.float_value(), precision));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.float_value() * scale;
  // math.ceil/floor return ints (so no -0.0), then int / int.
  const double rounded = (method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) + 0.0;
  if (!std::isfinite(rounded)) return RenderError("cannot convert float infinity to integer");
  return Value::Float(rounded / scale);
}

absl::StatusOr<Value> CenterFilter(Interpreter& interpreter, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("center", call, {"width"}));
  MOESERVE_ASSIGN_OR_RETURN(Value s, SoftStr(v));
  if (s.is_markup()) return RenderUnsupported("|center on a Markup value");
  CallArgs center_args;
  center_args.positional.push_back(args[0].has_value() ? *args[0] : Value::Int(80));
  MOESERVE_ASSIGN_OR_RETURN(Value center, GetAttribute(s, "center"));
  return interpreter.Call(center, center_args);
}

absl::StatusOr<Value> IndentFilter(Interpreter& interpreter, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("indent", call, {"width", "first", "blank"}));
  if (v.is_undefined()) return UndefinedError(v);
  if (!v.is_string()) {
    return RenderError(Cat("unsupported operand type(s) for +=: '", TypeName(v), "' and 'str'"));
  }
  std::string indention = "    ";
  if (args[0].has_value()) {
    if (args[0]->is_string()) {
      indention = args[0]->str();
    } else if (args[0]->is_integral()) {
      indention =
          std::string(std::max<int64_t>(0, std::min<int64_t>(args[0]->int_value(), 4096)), ' ');
    } else {
      return RenderError("indent width must be an integer or a string");
    }
  }
  const bool first = args[1].has_value() && Truthy(*args[1]);
  const bool blank = args[2].has_value() && Truthy(*args[2]);
  MOESERVE_ASSIGN_OR_RETURN(Value splitlines,
                            GetAttribute(Value::String(v.str() + "\n"), "splitlines"));
  MOESERVE_ASSIGN_OR_RETURN(Value lines, interpreter.Call(splitlines, CallArgs()));
  std::string out;
  for (size_t i = 0; i < lines.items().size(); ++i) {
    const std::string& line = lines.items()[i].str();
    if (i > 0) {
      out += "\n";
      if (blank || !line.empty()) out += indention;
    }
    out += line;
  }
  if (first) out = indention + out;
  return SameKind(v, std::move(out));
}

absl::StatusOr<Value> FormatFilter(Interpreter&, const Value& v, const CallArgs& call) {
  if (!call.keyword.empty()) {
    if (!call.positional.empty()) {
      return RenderError("can't handle positional and keyword arguments at the same time");
    }
    return RenderUnsupported("|format with keyword arguments");
  }
  MOESERVE_ASSIGN_OR_RETURN(Value s, SoftStr(v));
  if (s.is_markup()) return RenderUnsupported("|format on a Markup value");
  MOESERVE_ASSIGN_OR_RETURN(std::string out, PercentFormat(s.str(), call.positional));
  return Value::String(std::move(out));
}

absl::StatusOr<Value> WordCountFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("wordcount", args, {}).status());
  MOESERVE_ASSIGN_OR_RETURN(std::string s, ToStr(v));
  int64_t words = 0;
  bool in_word = false;
  for (char32_t c : unicode::Decode(s)) {
    const bool word_char = c == '_' || unicode::IsAlpha(c) || unicode::IsNumeric(c);
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value::Int(words);
}

absl::StatusOr<Value> AttrFilter(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("attr", call, {"name"}));
  if (!args[0].has_value()) return RenderError("attr() missing required argument 'name'");
  MOESERVE_ASSIGN_OR_RETURN(std::string name, ToStr(*args[0]));
  // Attributes only, never items: a dict's keys are not its attributes.
  if (v.is_undefined()) return UndefinedError(v);
  if (v.is_object()) {
    if (std::optional<Value> attr = v.object()->GetAttr(name); attr.has_value()) return *attr;
  } else if (std::optional<Value> method = FindMethod(v, name); method.has_value()) {
    return *method;
  }
  return Value::Undefined(Cat("'", TypeName(v), " object' has no attribute '", name, "'"));
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False).
absl::StatusOr<Value> ToJsonFilter(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(
      Args args, BindArgs("tojson", call, {"ensure_ascii", "indent", "separators", "sort_keys"}));
  JsonOptions options;
  options.ensure_ascii = args[0].has_value() && Truthy(*args[0]);
  options.sort_keys = args[3].has_value() && Truthy(*args[3]);
  if (args[1].has_value() && !args[1]->is_none()) {
    if (args[1]->is_string()) {
      options.indent = args[1]->str();
    } else if (args[1]->is_integral()) {
      options.indent =
          std::string(std::max<int64_t>(0, std::min<int64_t>(args[1]->int_value(), 4096)), ' ');
    } else {
      return RenderUnsupported("tojson indent that is not an integer or a string");
    }
    options.item_separator.assign(1, ',');  // json.dumps uses "," with indent
  }
  if (args[2].has_value() && !args[2]->is_none()) {
    const Value& sep = *args[2];
    if (!sep.is_sequence() || sep.items().size() != 2 || !sep.items()[0].is_string() ||
        !sep.items()[1].is_string()) {
      return RenderError("tojson separators must be a pair of strings");
    }
    options.item_separator = sep.items()[0].str();
    options.key_separator = sep.items()[1].str();
  }
  MOESERVE_ASSIGN_OR_RETURN(std::string json, ToJson(v, options));
  return Value::String(std::move(json));
}

using FilterTable = absl::flat_hash_map<std::string_view, FilterFn>;

const FilterTable& Filters() {
  static const FilterTable* const kTable = new FilterTable{
      {"abs", &AbsFilter},
      {"attr", &AttrFilter},
      {"capitalize", &CaseFilter<unicode::Capitalize>},
      {"center", &CenterFilter},
      {"count", &LengthFilter},
      {"d", &DefaultFilter},
      {"default", &DefaultFilter},
      {"e", &EscapeFilter},
      {"escape", &EscapeFilter},
      {"float", &FloatFilter},
      {"forceescape", &ForceEscapeFilter},
      {"format", &FormatFilter},
      {"indent", &IndentFilter},
      {"int", &IntFilter},
      {"length", &LengthFilter},
      {"lower", &CaseFilter<unicode::Lower>},
      {"replace", &ReplaceFilter},
      {"round", &RoundFilter},
      {"safe", &SafeFilter},
      {"string", &StringFilter},
      {"title", &TitleFilter},
      {"tojson", &ToJsonFilter},
      {"trim", &TrimFilter},
      {"upper", &CaseFilter<unicode::Upper>},
      {"wordcount", &WordCountFilter},
  };
  return *kTable;
}

}  // namespace

FilterFn FindFilter(std::string_view name) {
  const FilterTable& table = Filters();
  if (auto it = table.find(name); it != table.end()) return it->second;
  return FindSequenceFilter(name);
}

bool IsJinjaFilter(std::string_view name) {
  static const auto* const kNames = new absl::flat_hash_set<std::string_view>{
      "abs",    "attr",       "batch",       "capitalize", "center",   "count",
      "d",      "default",    "dictsort",    "e",          "escape",   "filesizeformat",
      "first",  "float",      "forceescape", "format",     "groupby",  "indent",
      "int",    "items",      "join",        "last",       "length",   "list",
      "lower",  "map",        "max",         "min",        "pprint",   "random",
      "reject", "rejectattr", "replace",     "reverse",    "round",    "safe",
      "select", "selectattr", "slice",       "sort",       "string",   "striptags",
      "sum",    "title",      "tojson",      "trim",       "truncate", "unique",
      "upper",  "urlencode",  "urlize",      "wordcount",  "wordwrap", "xmlattr"};
  return kNames->contains(name);
}

}  // namespace moeserve::jinja
