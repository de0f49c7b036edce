// Methods of str, list/tuple and dict that templates call (message.content.strip(),
// message.get('tool_calls'), ...), with Python's semantics on code points. Mutating
// methods resolve to an Undefined that fails when used, as jinja2's immutable sandbox does.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/builtins.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/operators.h"
#include "engine/tokenizer/jinja/unicode.h"

namespace moeserve::jinja {
namespace {

using Args = std::vector<std::optional<Value>>;

absl::StatusOr<std::string> OptionalString(const std::optional<Value>& v, std::string_view what) {
  if (!v.has_value() || v->is_none()) return std::string();
  if (!v->is_string()) {
    return RenderError(Cat(what, " arg must be None or str, not ", TypeName(*v)));
  }
  return v->str();
}

absl::StatusOr<std::string> RequiredString(const std::optional<Value>& v, std::string_view what) {
  if (!v.has_value()) return RenderError(Cat(what, "() missing a required argument"));
  if (!v->is_string()) {
    return RenderError(Cat(what, "() argument must be str, not ", TypeName(*v)));
  }
  return v->str();
}

absl::StatusOr<int64_t> OptionalInt(const std::optional<Value>& v, int64_t dflt) {
  if (!v.has_value()) return dflt;
  if (!v->is_integral()) {
    return RenderError(Cat("'", TypeName(*v), "' object cannot be interpreted as an integer"));
  }
  return v->int_value();
}

Value StringList(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (std::string& part : parts) items.push_back(Value::String(std::move(part)));
  return Value::List(std::move(items));
}

// ---- str ------------------------------------------------------------------------------------

enum class StripSide { kLeft, kRight, kBoth };

absl::StatusOr<Value> Strip(const Value& self, const CallArgs& call, std::string_view name,
                            StripSide side) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs(name, call, {"chars"}));
  const bool whitespace = !args[0].has_value() || args[0]->is_none();
  MOESERVE_ASSIGN_OR_RETURN(std::string chars, OptionalString(args[0], name));
  const std::string_view stripped =
      unicode::Strip(self.str(), whitespace ? nullptr : &chars, side != StripSide::kRight,
                     side != StripSide::kLeft);
  if (stripped.size() == self.str().size()) return Value::String(self.str());
  return Value::String(std::string(stripped));
}

absl::StatusOr<Value> StrStrip(Interpreter&, const Value& self, const CallArgs& args) {
  return Strip(self, args, "strip", StripSide::kBoth);
}
absl::StatusOr<Value> StrLStrip(Interpreter&, const Value& self, const CallArgs& args) {
  return Strip(self, args, "lstrip", StripSide::kLeft);
}
absl::StatusOr<Value> StrRStrip(Interpreter&, const Value& self, const CallArgs& args) {
  return Strip(self, args, "rstrip", StripSide::kRight);
}

std::vector<std::string> SplitWhitespace(const std::u32string& s, int64_t maxsplit, bool right) {
  std::vector<std::u32string> parts;
  int64_t count = maxsplit < 0 ? INT64_MAX : maxsplit;
  const int64_t n = static_cast<int64_t>(s.size());
  if (!right) {
    int64_t i = 0;
    while (count-- > 0) {
      while (i < n && unicode::IsSpace(s[i])) ++i;
      if (i == n) break;
      const int64_t j = i++;
      while (i < n && !unicode::IsSpace(s[i])) ++i;
      parts.push_back(s.substr(j, i - j));
    }
    if (i < n) {
      while (i < n && unicode::IsSpace(s[i])) ++i;
      if (i != n) parts.push_back(s.substr(i));
    }
  } else {
    int64_t i = n - 1;
    while (count-- > 0) {
      while (i >= 0 && unicode::IsSpace(s[i])) --i;
      if (i < 0) break;
      const int64_t j = i--;
      while (i >= 0 && !unicode::IsSpace(s[i])) --i;
      parts.push_back(s.substr(i + 1, j - i));
    }
    if (i >= 0) {
      while (i >= 0 && unicode::IsSpace(s[i])) --i;
      if (i >= 0) parts.push_back(s.substr(0, i + 1));
    }
    std::reverse(parts.begin(), parts.end());
  }
  std::vector<std::string> out;
  out.reserve(parts.size());
  for (const auto& part : parts) out.push_back(unicode::Encode(part));
  return out;
}

absl::StatusOr<Value> Split(const Value& self, const CallArgs& call, bool right) {
  MOESERVE_ASSIGN_OR_RETURN(Args args,
                            BindArgs(right ? "rsplit" : "split", call, {"sep", "maxsplit"}));
  MOESERVE_ASSIGN_OR_RETURN(int64_t maxsplit, OptionalInt(args[1], -1));
  if (!args[0].has_value() || args[0]->is_none()) {
    return StringList(SplitWhitespace(unicode::Decode(self.str()), maxsplit, right));
  }
  MOESERVE_ASSIGN_OR_RETURN(std::string sep, RequiredString(args[0], "split"));
  if (sep.empty()) return RenderError("empty separator");
  const std::string& s = self.str();
  std::vector<std::string> parts;
  if (!right) {
    size_t start = 0;
    for (int64_t n = 0; maxsplit < 0 || n < maxsplit; ++n) {
      const size_t at = s.find(sep, start);
      if (at == std::string::npos) break;
      parts.push_back(s.substr(start, at - start));
      start = at + sep.size();
    }
    parts.push_back(s.substr(start));
  } else {
    size_t end = s.size();
    for (int64_t n = 0; maxsplit < 0 || n < maxsplit; ++n) {
      if (end < sep.size()) break;
      const size_t at = s.rfind(sep, end - sep.size());
      if (at == std::string::npos) break;
      parts.push_back(s.substr(at + sep.size(), end - at - sep.size()));
      end = at;
    }
    parts.push_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
  }
  return StringList(std::move(parts));
}

absl::StatusOr<Value> StrSplit(Interpreter&, const Value& self, const CallArgs& args) {
  return Split(self, args, false);
}
absl::StatusOr<Value> StrRSplit(Interpreter&, const Value& self, const CallArgs& args) {
  return Split(self, args, true);
}

absl::StatusOr<Value> Affix(const Value& self, const CallArgs& call, bool suffix) {
  const std::string_view name = suffix ? "endswith" : "startswith";
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs(name, call, {"prefix", "start", "end"}));
  if (args[1].has_value() || args[2].has_value()) {
    return RenderUnsupported(Cat("start/end arguments of str.", name, "()"));
  }
  std::vector<Value> candidates;
  if (args[0].has_value() && args[0]->is_sequence() && args[0]->seq().kind == SeqKind::kTuple) {
    candidates = args[0]->items();
  } else if (args[0].has_value()) {
    candidates.push_back(*args[0]);
  }
  const std::string& s = self.str();
  for (const Value& c : candidates) {
    if (!c.is_string()) {
      return RenderError(Cat(name, " first arg must be str or a tuple of str, not ", TypeName(c)));
    }
    const std::string& a = c.str();
    if (a.size() <= s.size() && s.compare(suffix ? s.size() - a.size() : 0, a.size(), a) == 0) {
      return Value::Bool(true);
    }
  }
  if (candidates.empty()) return RenderError(Cat(name, "() takes at least 1 argument"));
  return Value::Bool(false);
}

absl::StatusOr<Value> StrStartsWith(Interpreter&, const Value& self, const CallArgs& args) {
  return Affix(self, args, false);
}
absl::StatusOr<Value> StrEndsWith(Interpreter&, const Value& self, const CallArgs& args) {
  return Affix(self, args, true);
}

template <std::string (*kMap)(std::string_view)>
absl::StatusOr<Value> CaseMethod(Interpreter&, const Value& self, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("str method", args, {}).status());
  return Value::String(kMap(self.str()));
}

absl::StatusOr<Value> StrReplace(Interpreter&, const Value& self, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("replace", call, {"old", "new", "count"}));
  MOESERVE_ASSIGN_OR_RETURN(std::string old_s, RequiredString(args[0], "replace"));
  MOESERVE_ASSIGN_OR_RETURN(std::string new_s, RequiredString(args[1], "replace"));
  MOESERVE_ASSIGN_OR_RETURN(int64_t count, OptionalInt(args[2], -1));
  const std::string& s = self.str();
  std::string out;
  int64_t done = 0;
  if (old_s.empty()) {  // insert before every code point and at the end
    size_t pos = 0;
    while (pos <= s.size()) {
      if (count < 0 || done < count) {
        out += new_s;
        ++done;
      }
      if (pos == s.size()) break;
      const size_t start = pos;
      unicode::DecodeNext(s, &pos);
      out.append(s, start, pos - start);
    }
    return Value::String(std::move(out));
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(old_s, start);
    if (at == std::string::npos) break;
    out.append(s, start, at - start);
    out += new_s;
    start = at + old_s.size();
    ++done;
  }
  out.append(s, start);
  return Value::String(std::move(out));
}

absl::StatusOr<Value> Find(const Value& self, const CallArgs& call, std::string_view name,
                           bool reverse, bool raise) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs(name, call, {"sub", "start", "end"}));
  if (args[1].has_value() || args[2].has_value()) {
    return RenderUnsupported(Cat("start/end arguments of str.", name, "()"));
  }
  MOESERVE_ASSIGN_OR_RETURN(std::string sub, RequiredString(args[0], name));
  const std::string& s = self.str();
  const size_t at = reverse ? s.rfind(sub) : s.find(sub);
  if (at == std::string::npos) {
    if (raise) return RenderError("substring not found");
    return Value::Int(-1);
  }
  return Value::Int(static_cast<int64_t>(unicode::Length(std::string_view(s).substr(0, at))));
}

absl::StatusOr<Value> StrFind(Interpreter&, const Value& self, const CallArgs& args) {
  return Find(self, args, "find", false, false);
}
absl::StatusOr<Value> StrRFind(Interpreter&, const Value& self, const CallArgs& args) {
  return Find(self, args, "rfind", true, false);
}
absl::StatusOr<Value> StrIndex(Interpreter&, const Value& self, const CallArgs& args) {
  return Find(self, args, "index", false, true);
}

absl::StatusOr<Value> StrCount(Interpreter&, const Value& self, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("count", call, {"sub", "start", "end"}));
  if (args[1].has_value() || args[2].has_value()) {
    return RenderUnsupported("start/end arguments of str.count()");
  }
  MOESERVE_ASSIGN_OR_RETURN(std::string sub, RequiredString(args[0], "count"));
  const std::string& s = self.str();
  if (sub.empty()) return Value::Int(static_cast<int64_t>(unicode::Length(s)) + 1);
  int64_t n = 0;
  for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
  return Value::Int(n);
}

absl::StatusOr<Value> StrJoin(Interpreter&, const Value& self, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("join", call, {"iterable"}));
  if (!args[0].has_value()) return RenderError("join() takes exactly one argument");
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(*args[0]));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string()) {
      return RenderError(
          Cat("sequence item ", i, ": expected str instance, ", TypeName(items[i]), " found"));
    }
    if (i > 0) out += self.str();
    out += items[i].str();
  }
  return Value::String(std::move(out));
}

template <bool (*kPredicate)(char32_t)>
absl::StatusOr<Value> IsAll(Interpreter&, const Value& self, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("str method", args, {}).status());
  const std::u32string cps = unicode::Decode(self.str());
  if (cps.empty()) return Value::Bool(false);
  for (char32_t c : cps) {
    if (!kPredicate(c)) return Value::Bool(false);
  }
  return Value::Bool(true);
}

bool IsAlnum(char32_t c) {
  return unicode::IsAlpha(c) || unicode::IsDecimal(c) || unicode::IsDigit(c) ||
         unicode::IsNumeric(c);
}

template <bool kLower>
absl::StatusOr<Value> IsCase(Interpreter&, const Value& self, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("str method", args, {}).status());
  bool cased = false;
  for (char32_t c : unicode::Decode(self.str())) {
    const bool wrong = kLower ? unicode::IsUppercase(c) : unicode::IsLowercase(c);
    if (wrong || unicode::IsTitlecase(c)) return Value::Bool(false);
    cased = cased || (kLower ? unicode::IsLowercase(c) : unicode::IsUppercase(c));
  }
  return Value::Bool(cased);
}

absl::StatusOr<Value> Affixless(const Value& self, const CallArgs& call, bool suffix) {
  MOESERVE_ASSIGN_OR_RETURN(Args args,
                            BindArgs(suffix ? "removesuffix" : "removeprefix", call, {"affix"}));
  MOESERVE_ASSIGN_OR_RETURN(std::string affix, RequiredString(args[0], "removeprefix"));
  const std::string& s = self.str();
  if (affix.empty() || affix.size() > s.size()) return Value::String(s);
  if (suffix && s.compare(s.size() - affix.size(), affix.size(), affix) == 0) {
    return Value::String(s.substr(0, s.size() - affix.size()));
  }
  if (!suffix && s.compare(0, affix.size(), affix) == 0) {
    return Value::String(s.substr(affix.size()));
  }
  return Value::String(s);
}

absl::StatusOr<Value> StrRemovePrefix(Interpreter&, const Value& self, const CallArgs& args) {
  return Affixless(self, args, false);
}
absl::StatusOr<Value> StrRemoveSuffix(Interpreter&, const Value& self, const CallArgs& args) {
  return Affixless(self, args, true);
}

bool IsLineBreak(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

absl::StatusOr<Value> StrSplitLines(Interpreter&, const Value& self, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("splitlines", call, {"keepends"}));
  const bool keepends = args[0].has_value() && Truthy(*args[0]);
  const std::u32string cps = unicode::Decode(self.str());
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (!IsLineBreak(cps[i])) continue;
    size_t end = i + 1;
    if (cps[i] == '\r' && end < cps.size() && cps[end] == '\n') ++end;
    lines.push_back(
        unicode::Encode(std::u32string_view(cps).substr(start, (keepends ? end : i) - start)));
    start = end;
    i = end - 1;
  }
  if (start < cps.size()) lines.push_back(unicode::Encode(std::u32string_view(cps).substr(start)));
  return StringList(std::move(lines));
}

enum class Justify { kLeft, kRight, kCenter };

// The most fill characters ljust/rjust/center add: operators.cc's bound on 'a' * n.
constexpr int64_t kMaxPadding = int64_t{1} << 26;

absl::StatusOr<Value> Pad(const Value& self, const CallArgs& call, std::string_view name,
                          Justify justify) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs(name, call, {"width", "fillchar"}));
  if (!args[0].has_value()) return RenderError(Cat(name, "() takes at least 1 argument"));
  MOESERVE_ASSIGN_OR_RETURN(int64_t width, OptionalInt(args[0], 0));
  std::string fill = " ";
  if (args[1].has_value()) {
    if (!args[1]->is_string() || unicode::Length(args[1]->str()) != 1) {
      return RenderError("The fill character must be exactly one character long");
    }
    fill = args[1]->str();
  }
  const std::string& s = self.str();
  const int64_t marg = width - static_cast<int64_t>(unicode::Length(s));
  if (marg <= 0) return Value::String(s);
  if (marg > kMaxPadding) return RenderUnsupported(Cat("str.", name, "() width too large"));
  int64_t left = justify == Justify::kLeft ? 0 : justify == Justify::kRight ? marg : 0;
  if (justify == Justify::kCenter) left = marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = left; i < marg; ++i) out += fill;
  return Value::String(std::move(out));
}

absl::StatusOr<Value> StrLJust(Interpreter&, const Value& self, const CallArgs& args) {
  return Pad(self, args, "ljust", Justify::kLeft);
}
absl::StatusOr<Value> StrRJust(Interpreter&, const Value& self, const CallArgs& args) {
  return Pad(self, args, "rjust", Justify::kRight);
}
absl::StatusOr<Value> StrCenter(Interpreter&, const Value& self, const CallArgs& args) {
  return Pad(self, args, "center", Justify::kCenter);
}

// ---- dict -----------------------------------------------------------------------------------

absl::StatusOr<Value> DictGet(Interpreter&, const Value& self, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("get", call, {"key", "default"}));
  if (!args[0].has_value()) return RenderError("get expected at least 1 argument, got 0");
  if (!IsHashable(*args[0])) {
    return RenderError(Cat("unhashable type: '", TypeName(*args[0]), "'"));
  }
  if (const Value* value = self.dict().Find(*args[0]); value != nullptr) return *value;
  return args[1].has_value() ? *args[1] : Value::None();
}

template <SeqKind kKind>
absl::StatusOr<Value> DictView(Interpreter&, const Value& self, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("dict view", args, {}).status());
  std::vector<Value> items;
  items.reserve(self.dict().size());
  for (const auto& [key, value] : self.dict().entries()) {
    if (kKind == SeqKind::kDictKeys) {
      items.push_back(key);
    } else if (kKind == SeqKind::kDictValues) {
      items.push_back(value);
    } else {
      items.push_back(Value::Tuple({key, value}));
    }
  }
  return Value::Seq(std::move(items), kKind);
}

// ---- list / tuple ---------------------------------------------------------------------------

absl::StatusOr<Value> SeqCount(Interpreter&, const Value& self, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("count", call, {"value"}));
  if (!args[0].has_value()) return RenderError("count() takes exactly one argument (0 given)");
  int64_t n = 0;
  for (const Value& item : self.items()) n += Equals(item, *args[0]) ? 1 : 0;
  return Value::Int(n);
}

absl::StatusOr<Value> SeqIndex(Interpreter&, const Value& self, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("index", call, {"value"}));
  if (!args[0].has_value()) return RenderError("index expected at least 1 argument, got 0");
  for (size_t i = 0; i < self.items().size(); ++i) {
    if (Equals(self.items()[i], *args[0])) return Value::Int(static_cast<int64_t>(i));
  }
  return RenderError("value is not in list");
}

using MethodTable = absl::flat_hash_map<std::string_view, NativeFn>;

const MethodTable& StrMethods() {
  static const MethodTable* const kTable = new MethodTable{
      {"strip", &StrStrip},
      {"lstrip", &StrLStrip},
      {"rstrip", &StrRStrip},
      {"split", &StrSplit},
      {"rsplit", &StrRSplit},
      {"startswith", &StrStartsWith},
      {"endswith", &StrEndsWith},
      {"upper", &CaseMethod<unicode::Upper>},
      {"lower", &CaseMethod<unicode::Lower>},
      {"title", &CaseMethod<unicode::Title>},
      {"capitalize", &CaseMethod<unicode::Capitalize>},
      {"replace", &StrReplace},
      {"find", &StrFind},
      {"rfind", &StrRFind},
      {"index", &StrIndex},
      {"count", &StrCount},
      {"join", &StrJoin},
      {"isdigit", &IsAll<unicode::IsDigit>},
      {"isdecimal", &IsAll<unicode::IsDecimal>},
      {"isnumeric", &IsAll<unicode::IsNumeric>},
      {"isalpha", &IsAll<unicode::IsAlpha>},
      {"isalnum", &IsAll<IsAlnum>},
      {"isspace", &IsAll<unicode::IsSpace>},
      {"islower", &IsCase<true>},
      {"isupper", &IsCase<false>},
      {"removeprefix", &StrRemovePrefix},
      {"removesuffix", &StrRemoveSuffix},
      {"splitlines", &StrSplitLines},
      {"ljust", &StrLJust},
      {"rjust", &StrRJust},
      {"center", &StrCenter},
  };
  return *kTable;
}

// Methods that behave the same on jinja2's Markup as on str (they return no string).
bool IsMarkupSafe(std::string_view name) {
  static const auto* const kSafe = new absl::flat_hash_set<std::string_view>{
      "startswith", "endswith",  "find",    "rfind",   "index",   "count",   "isdigit",
      "isdecimal",  "isnumeric", "isalpha", "isalnum", "isspace", "islower", "isupper"};
  return kSafe->contains(name);
}

absl::StatusOr<Value> MarkupMethod(Interpreter&, const Value&, const CallArgs&) {
  return RenderUnsupported("this string method on a Markup value (from |safe or |escape)");
}

Value Unsafe(std::string_view name, std::string_view type) {
  return Value::Undefined(
      Cat("access to attribute '", name, "' of '", type, "' object is unsafe."));
}

}  // namespace

std::optional<Value> FindMethod(const Value& self, std::string_view name) {
  if (self.is_string()) {
    const auto& table = StrMethods();
    auto it = table.find(name);
    if (it == table.end()) return std::nullopt;
    if (self.is_markup() && !IsMarkupSafe(name)) {
      return MakeNativeFunction(name, &MarkupMethod, self);
    }
    return MakeNativeFunction(name, it->second, self);
  }
  if (self.is_dict()) {
    if (name == "get") return MakeNativeFunction(name, &DictGet, self);
    if (name == "items") return MakeNativeFunction(name, &DictView<SeqKind::kDictItems>, self);
    if (name == "keys") return MakeNativeFunction(name, &DictView<SeqKind::kDictKeys>, self);
    if (name == "values") return MakeNativeFunction(name, &DictView<SeqKind::kDictValues>, self);
    if (name == "clear" || name == "pop" || name == "popitem" || name == "setdefault" ||
        name == "update") {
      return Unsafe(name, "dict");
    }
    return std::nullopt;
  }
  if (self.is_sequence()) {
    const SeqKind kind = self.seq().kind;
    if (kind != SeqKind::kList && kind != SeqKind::kTuple) return std::nullopt;
    if (name == "count") return MakeNativeFunction(name, &SeqCount, self);
    if (name == "index") return MakeNativeFunction(name, &SeqIndex, self);
    if (kind == SeqKind::kList &&
        (name == "append" || name == "clear" || name == "extend" || name == "insert" ||
         name == "pop" || name == "remove" || name == "reverse" || name == "sort")) {
      return Unsafe(name, "list");
    }
  }
  return std::nullopt;
}

bool IsUnsupportedMethod(std::string_view name) {
  static const auto* const kUnsupported = new absl::flat_hash_set<std::string_view>{
      // str
      "casefold", "encode", "expandtabs", "format", "format_map", "isascii", "isidentifier",
      "isprintable", "istitle", "maketrans", "partition", "rindex", "rpartition", "swapcase",
      "translate", "zfill",
      // list / dict
      "copy", "fromkeys"};
  return kUnsupported->contains(name);
}

}  // namespace moeserve::jinja
