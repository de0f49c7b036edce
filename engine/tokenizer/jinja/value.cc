#include "engine/tokenizer/jinja/value.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/unicode.h"

namespace moeserve::jinja {
namespace {

// Deep enough for any sane data; stops a namespace that contains itself.
constexpr int kMaxReprDepth = 128;

const std::string& EmptyString() {
  static const std::string* const kEmpty = new std::string();
  return *kEmpty;
}

bool NumberEquals(const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral()) return a.int_value() == b.int_value();
  if (a.is_float() && b.is_float()) return a.float_value() == b.float_value();
  // int == float exactly, as Python does (2**53 + 1 != 2.0**53).
  const int64_t i = a.is_float() ? b.int_value() : a.int_value();
  const double f = a.is_float() ? a.float_value() : b.float_value();
  if (!(f == std::trunc(f)) || f >= 9223372036854775808.0 || f < -9223372036854775808.0) {
    return false;
  }
  return static_cast<int64_t>(f) == i;
}

absl::Status AppendRepr(const Value& v, int depth, std::string* out);

absl::Status AppendItems(const std::vector<Value>& items, int depth, std::string* out) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out->append(", ");
    if (absl::Status s = AppendRepr(items[i], depth + 1, out); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status AppendRepr(const Value& v, int depth, std::string* out) {
  if (depth > kMaxReprDepth) return RenderError("value nested too deeply to print");
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      out->append("Undefined");
      return absl::OkStatus();
    case Value::Kind::kString:
      if (v.is_markup()) {
        CatAppend(out, "Markup(", ReprString(v.str()), ")");
      } else {
        out->append(ReprString(v.str()));
      }
      return absl::OkStatus();
    case Value::Kind::kSequence: {
      const Sequence& seq = v.seq();
      switch (seq.kind) {
        case SeqKind::kList:
          out->push_back('[');
          if (absl::Status s = AppendItems(seq.items, depth, out); !s.ok()) return s;
          out->push_back(']');
          return absl::OkStatus();
        case SeqKind::kTuple:
          out->push_back('(');
          if (absl::Status s = AppendItems(seq.items, depth, out); !s.ok()) return s;
          out->append(seq.items.size() == 1 ? ",)" : ")");
          return absl::OkStatus();
        case SeqKind::kDictKeys:
        case SeqKind::kDictValues:
        case SeqKind::kDictItems:
          out->append(seq.kind == SeqKind::kDictKeys     ? "dict_keys(["
                      : seq.kind == SeqKind::kDictValues ? "dict_values(["
                                                         : "dict_items([");
          if (absl::Status s = AppendItems(seq.items, depth, out); !s.ok()) return s;
          out->append("])");
          return absl::OkStatus();
        case SeqKind::kRange:
          return RenderUnsupported("printing a range object");
        case SeqKind::kIterator:
          return RenderUnsupported("printing an iterator (use |list)");
      }
      return absl::OkStatus();
    }
    case Value::Kind::kDict: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, value] : v.dict().entries()) {
        if (!first) out->append(", ");
        first = false;
        if (absl::Status s = AppendRepr(key, depth + 1, out); !s.ok()) return s;
        out->append(": ");
        if (absl::Status s = AppendRepr(value, depth + 1, out); !s.ok()) return s;
      }
      out->push_back('}');
      return absl::OkStatus();
    }
    case Value::Kind::kObject: {
      absl::StatusOr<std::string> repr = v.object()->Repr();
      if (!repr.ok()) return repr.status();
      out->append(*repr);
      return absl::OkStatus();
    }
    default:
      return AppendStr(v, out);
  }
}

}  // namespace

Value Value::Undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.ptr_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.scalar_.b = b;
  return v;
}

Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.scalar_.i = i;
  return v;
}

Value Value::Float(double d) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.scalar_.f = d;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.ptr_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::Markup(std::string s) {
  Value v = String(std::move(s));
  v.markup_ = true;
  return v;
}

Value Value::List(std::vector<Value> items) { return Seq(std::move(items), SeqKind::kList); }
Value Value::Tuple(std::vector<Value> items) { return Seq(std::move(items), SeqKind::kTuple); }

Value Value::Seq(std::vector<Value> items, SeqKind kind) {
  Value v;
  v.kind_ = Kind::kSequence;
  auto seq = std::make_shared<Sequence>();
  seq->items = std::move(items);
  seq->kind = kind;
  v.ptr_ = std::shared_ptr<const Sequence>(std::move(seq));
  return v;
}

Value Value::FromDict(Dict dict) {
  Value v;
  v.kind_ = Kind::kDict;
  v.ptr_ = std::make_shared<const Dict>(std::move(dict));
  return v;
}

Value Value::FromObject(std::shared_ptr<Object> object) {
  Value v;
  v.kind_ = Kind::kObject;
  v.ptr_ = std::move(object);
  return v;
}

int64_t Value::int_value() const { return kind_ == Kind::kBool ? scalar_.b : scalar_.i; }

double Value::float_value() const {
  return kind_ == Kind::kFloat ? scalar_.f : static_cast<double>(int_value());
}

const std::string& Value::str() const {
  return *std::get<std::shared_ptr<const std::string>>(ptr_);
}

const Sequence& Value::seq() const { return *std::get<std::shared_ptr<const Sequence>>(ptr_); }
const Dict& Value::dict() const { return *std::get<std::shared_ptr<const Dict>>(ptr_); }
const std::shared_ptr<Object>& Value::object() const {
  return std::get<std::shared_ptr<Object>>(ptr_);
}

const std::string& Value::undefined_hint() const {
  const auto* hint = std::get_if<std::shared_ptr<const std::string>>(&ptr_);
  return hint != nullptr ? **hint : EmptyString();
}

void Dict::Set(Value key, Value value) {
  if (key.is_string()) {
    Set(std::string_view(key.str()), std::move(value));
    return;
  }
  for (Entry& entry : entries_) {
    if (!entry.first.is_string() && Equals(entry.first, key)) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

void Dict::Set(std::string_view key, Value value) {
  auto [it, inserted] = string_index_.try_emplace(std::string(key), entries_.size());
  if (!inserted) {
    entries_[it->second].second = std::move(value);
    return;
  }
  entries_.emplace_back(Value::String(std::string(key)), std::move(value));
}

const Value* Dict::Find(const Value& key) const {
  if (key.is_string()) return Find(std::string_view(key.str()));
  if (!IsHashable(key)) return nullptr;
  for (const Entry& entry : entries_) {
    if (!entry.first.is_string() && Equals(entry.first, key)) return &entry.second;
  }
  return nullptr;
}

const Value* Dict::Find(std::string_view key) const {
  auto it = string_index_.find(Sv(key));
  return it == string_index_.end() ? nullptr : &entries_[it->second].second;
}

std::optional<Value> Object::GetAttr(std::string_view name) const { return std::nullopt; }

absl::Status Object::SetAttr(std::string_view name, Value value) {
  return RenderError(Cat("cannot assign attribute '", name, "' on a ", type_name(), " object"));
}

absl::StatusOr<Value> Object::Call(const CallArgs& args, Interpreter& interpreter) {
  return RenderError(Cat("'", type_name(), "' object is not callable"));
}

absl::StatusOr<std::string> Object::Repr() const {
  return RenderUnsupported(Cat("printing a ", type_name(), " object"));
}

bool Truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
    case Value::Kind::kInt:
      return v.int_value() != 0;
    case Value::Kind::kFloat:
      return v.float_value() != 0.0;
    case Value::Kind::kString:
      return !v.str().empty();
    case Value::Kind::kSequence:
      // A Python iterator is always true; everything else is true when non-empty.
      return v.seq().kind == SeqKind::kIterator || !v.items().empty();
    case Value::Kind::kDict:
      return !v.dict().empty();
    case Value::Kind::kObject:
      return true;
  }
  return false;
}

bool Equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return NumberEquals(a, b);
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.str() == b.str();
    case Value::Kind::kSequence: {
      const Sequence& x = a.seq();
      const Sequence& y = b.seq();
      if (&x == &y) return true;
      if (x.kind != y.kind || x.items.size() != y.items.size()) return false;
      switch (x.kind) {
        case SeqKind::kDictValues:
        case SeqKind::kIterator:
          return false;  // compared by identity in Python
        case SeqKind::kDictKeys:
        case SeqKind::kDictItems:  // set-like
          for (const Value& item : x.items) {
            bool found = false;
            for (const Value& other : y.items) found = found || Equals(item, other);
            if (!found) return false;
          }
          return true;
        default:
          for (size_t i = 0; i < x.items.size(); ++i) {
            if (!Equals(x.items[i], y.items[i])) return false;
          }
          return true;
      }
    }
    case Value::Kind::kDict: {
      const Dict& x = a.dict();
      const Dict& y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [key, value] : x.entries()) {
        const Value* other = y.Find(key);
        if (other == nullptr || !Equals(value, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kObject:
      return a.object() == b.object();
    default:
      return false;
  }
}

bool IsHashable(const Value& v) {
  if (v.is_dict()) return false;
  if (v.is_sequence()) {
    if (v.seq().kind != SeqKind::kTuple) return v.seq().kind == SeqKind::kIterator;
    for (const Value& item : v.items()) {
      if (!IsHashable(item)) return false;
    }
  }
  return true;
}

std::string_view TypeName(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return v.is_markup() ? "Markup" : "str";
    case Value::Kind::kSequence:
      switch (v.seq().kind) {
        case SeqKind::kList:
          return "list";
        case SeqKind::kTuple:
          return "tuple";
        case SeqKind::kDictKeys:
          return "dict_keys";
        case SeqKind::kDictValues:
          return "dict_values";
        case SeqKind::kDictItems:
          return "dict_items";
        case SeqKind::kRange:
          return "range";
        case SeqKind::kIterator:
          return "generator";
      }
      return "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kObject:
      return v.object()->type_name();
  }
  return "object";
}

absl::Status AppendStr(const Value& v, std::string* out) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return absl::OkStatus();
    case Value::Kind::kNone:
      out->append("None");
      return absl::OkStatus();
    case Value::Kind::kBool:
      out->append(v.bool_value() ? "True" : "False");
      return absl::OkStatus();
    case Value::Kind::kInt:
      CatAppend(out, v.int_value());
      return absl::OkStatus();
    case Value::Kind::kFloat:
      out->append(FormatFloat(v.float_value()));
      return absl::OkStatus();
    case Value::Kind::kString:
      out->append(v.str());
      return absl::OkStatus();
    default:
      return AppendRepr(v, 0, out);
  }
}

absl::StatusOr<std::string> ToStr(const Value& v) {
  std::string out;
  if (absl::Status s = AppendStr(v, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> Repr(const Value& v) {
  std::string out;
  if (absl::Status s = AppendRepr(v, 0, &out); !s.ok()) return s;
  return out;
}

std::string FormatFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view s(buf, result.ptr - buf);  // [-]D[.DDD]e(+|-)XX, shortest round trip
  std::string out;
  if (s.front() == '-') {
    out.push_back('-');
    s.remove_prefix(1);
  }
  const size_t e = s.find('e');
  std::string digits(1, s[0]);
  if (e > 1) digits.append(s.substr(2, e - 2));
  const int exponent = std::atoi(std::string(s.substr(e + 1)).c_str());
  const int decpt = exponent + 1;   // value = 0.DIGITS * 10^decpt
  if (decpt > 16 || decpt <= -4) {  // Python's repr switches to exponent notation here
    out.push_back(digits[0]);
    if (digits.size() > 1) CatAppend(&out, ".", digits.substr(1));
    CatAppend(&out, absl::StrFormat("e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent)));
  } else if (decpt <= 0) {
    CatAppend(&out, "0.", std::string(-decpt, '0'), digits);
  } else if (static_cast<size_t>(decpt) >= digits.size()) {
    CatAppend(&out, digits, std::string(decpt - digits.size(), '0'), ".0");
  } else {
    CatAppend(&out, digits.substr(0, decpt), ".", digits.substr(decpt));
  }
  return out;
}

std::string ReprString(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = unicode::DecodeNext(s, &pos);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out.append("\\t");
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c < 0x20 || c == 0x7F) {
      CatAppend(&out, absl::StrFormat("\\x%02x", static_cast<unsigned>(c)));
    } else if (c < 0x7F || unicode::IsPrintable(c)) {
      unicode::Append(c, &out);
    } else if (c <= 0xFF) {
      CatAppend(&out, absl::StrFormat("\\x%02x", static_cast<unsigned>(c)));
    } else if (c <= 0xFFFF) {
      CatAppend(&out, absl::StrFormat("\\u%04x", static_cast<unsigned>(c)));
    } else {
      CatAppend(&out, absl::StrFormat("\\U%08x", static_cast<unsigned>(c)));
    }
  }
  out.push_back(quote);
  return out;
}

absl::StatusOr<std::vector<Value>> Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return std::vector<Value>();
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.str();
      for (size_t pos = 0; pos < s.size();) {
        const size_t start = pos;
        unicode::DecodeNext(s, &pos);
        chars.push_back(Value::String(s.substr(start, pos - start)));
      }
      return chars;
    }
    case Value::Kind::kSequence: {
      const Sequence& seq = v.seq();
      if (seq.kind != SeqKind::kIterator) return seq.items;
      std::vector<Value> rest(seq.items.begin() + static_cast<std::ptrdiff_t>(seq.cursor),
                              seq.items.end());
      seq.cursor = seq.items.size();
      return rest;
    }
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.dict().size());
      for (const auto& entry : v.dict().entries()) keys.push_back(entry.first);
      return keys;
    }
    default:
      return RenderError(Cat("'", TypeName(v), "' object is not iterable"));
  }
}

}  // namespace moeserve::jinja
