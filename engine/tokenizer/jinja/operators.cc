#include "engine/tokenizer/jinja/operators.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/builtins.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/unicode.h"

namespace moeserve::jinja {
namespace {

// Strings and lists built by * are capped: a template has no business making more.
constexpr int64_t kMaxRepeatedSize = int64_t{1} << 26;

absl::Status TypeError(std::string_view op, const Value& a, const Value& b) {
  return RenderError(
      Cat("unsupported operand type(s) for ", op, ": '", TypeName(a), "' and '", TypeName(b), "'"));
}

absl::Status Overflow() { return RenderUnsupported("integer arithmetic beyond 64 bits"); }

// jinja2's object_type_repr, used in "... has no attribute" messages.
std::string ObjectTypeRepr(const Value& obj) {
  if (obj.is_none()) return "None";
  return Cat(TypeName(obj), " object");
}

Value MissingAttribute(const Value& obj, std::string_view name) {
  return Value::Undefined(Cat("'", ObjectTypeRepr(obj), "' has no attribute '", name, "'"));
}

// Unlike "has no attribute", jinja2 does not quote the type in "has no element".
Value MissingItem(const Value& obj, const Value& key) {
  if (key.is_string()) return MissingAttribute(obj, key.str());
  absl::StatusOr<std::string> repr = Repr(key);
  return Value::Undefined(
      Cat(ObjectTypeRepr(obj), " has no element ", repr.ok() ? *repr : std::string("?")));
}

bool Subscriptable(const Value& v) {
  if (v.is_string()) return true;
  if (!v.is_sequence()) return false;
  const SeqKind kind = v.seq().kind;
  return kind == SeqKind::kList || kind == SeqKind::kTuple || kind == SeqKind::kRange;
}

// Python compares ints and floats exactly (2**53 + 1 != 2.0**53). NaN compares as equal
// here; callers handle it.
int CompareNumbers(const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral()) {
    const int64_t x = a.int_value();
    const int64_t y = b.int_value();
    return (x > y) - (x < y);
  }
  if (a.is_float() && b.is_float()) {
    const double x = a.float_value();
    const double y = b.float_value();
    return (x > y) - (x < y);
  }
  const bool swapped = a.is_float();
  const int64_t i = swapped ? b.int_value() : a.int_value();
  const double f = swapped ? a.float_value() : b.float_value();
  int order;  // of i relative to f
  if (std::isnan(f)) {
    order = 0;
  } else if (f >= 9223372036854775808.0) {
    order = -1;
  } else if (f < -9223372036854775808.0) {
    order = 1;
  } else if (f == std::trunc(f)) {
    const int64_t fi = static_cast<int64_t>(f);
    order = (i > fi) - (i < fi);
  } else {  // a fractional float is below 2**52 in magnitude: the conversion cannot mislead
    const double x = static_cast<double>(i);
    order = (x > f) - (x < f);
  }
  return swapped ? -order : order;
}

// Python's float divmod.
std::pair<double, double> FloatDivMod(double x, double y) {
  double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0) {
    if ((y < 0) != (mod < 0)) {
      mod += y;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, y);
  }
  double floordiv;
  if (div != 0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, x / y);
  }
  return {floordiv, mod};
}

absl::StatusOr<Value> Repeat(const Value& seq, int64_t times) {
  times = std::max<int64_t>(times, 0);
  if (seq.is_string()) {
    const int64_t size = static_cast<int64_t>(seq.str().size());
    if (size > 0 && times > kMaxRepeatedSize / size) return RenderUnsupported("string too large");
    std::string out;
    out.reserve(size * times);
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return seq.is_markup() ? Value::Markup(std::move(out)) : Value::String(std::move(out));
  }
  const int64_t size = static_cast<int64_t>(seq.items().size());
  if (size > 0 && times > kMaxRepeatedSize / size) return RenderUnsupported("list too large");
  std::vector<Value> out;
  out.reserve(size * times);
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::Seq(std::move(out), seq.seq().kind);
}

absl::StatusOr<Value> Add(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) {
      int64_t r;
      if (__builtin_add_overflow(a.int_value(), b.int_value(), &r)) return Overflow();
      return Value::Int(r);
    }
    return Value::Float(a.float_value() + b.float_value());
  }
  if (a.is_string() && b.is_string()) {
    if (!a.is_markup() && !b.is_markup()) return Value::String(a.str() + b.str());
    // Markup escapes the plain operand.
    return Value::Markup((a.is_markup() ? a.str() : HtmlEscape(a.str())) +
                         (b.is_markup() ? b.str() : HtmlEscape(b.str())));
  }
  if (a.is_sequence() && b.is_sequence()) {
    const SeqKind kind = a.seq().kind;
    if ((kind == SeqKind::kList || kind == SeqKind::kTuple) && b.seq().kind == kind) {
      std::vector<Value> items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      return Value::Seq(std::move(items), kind);
    }
    return RenderError(
        Cat("can only concatenate ", TypeName(a), " (not \"", TypeName(b), "\") to ", TypeName(a)));
  }
  if (a.is_string() && !b.is_string()) {
    return RenderError(Cat("can only concatenate str (not \"", TypeName(b), "\") to str"));
  }
  return TypeError("+", a, b);
}

absl::StatusOr<Value> Multiply(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) {
      int64_t r;
      if (__builtin_mul_overflow(a.int_value(), b.int_value(), &r)) return Overflow();
      return Value::Int(r);
    }
    return Value::Float(a.float_value() * b.float_value());
  }
  const bool a_seq = a.is_string() || (a.is_sequence() && Subscriptable(a));
  const bool b_seq = b.is_string() || (b.is_sequence() && Subscriptable(b));
  if (a_seq && b.is_integral()) return Repeat(a, b.int_value());
  if (b_seq && a.is_integral()) return Repeat(b, a.int_value());
  if (a_seq || b_seq) {
    return RenderError(
        Cat("can't multiply sequence by non-int of type '", TypeName(a_seq ? b : a), "'"));
  }
  return TypeError("*", a, b);
}

absl::StatusOr<Value> Power(const Value& a, const Value& b) {
  if (!a.is_number() || !b.is_number()) return TypeError("** or pow()", a, b);
  if (a.is_integral() && b.is_integral() && b.int_value() >= 0) {
    int64_t result = 1;
    int64_t base = a.int_value();
    for (int64_t e = b.int_value(); e > 0; e >>= 1) {
      if (e & 1) {
        if (__builtin_mul_overflow(result, base, &result)) return Overflow();
      }
      if (e > 1 && __builtin_mul_overflow(base, base, &base)) return Overflow();
    }
    return Value::Int(result);
  }
  const double x = a.float_value();
  const double y = b.float_value();
  if (x == 0 && y < 0) return RenderError("0.0 cannot be raised to a negative power");
  if (x < 0 && y != std::floor(y)) return RenderUnsupported("complex numbers");
  return Value::Float(std::pow(x, y));
}

absl::StatusOr<Value> Modulo(const Value& a, const Value& b) {
  if (a.is_string()) {
    if (a.is_markup()) return RenderUnsupported("% formatting of Markup strings");
    if (b.is_dict()) return RenderUnsupported("% formatting with a mapping");
    std::vector<Value> args;
    // Python treats any non-tuple argument with __getitem__ as a possible mapping and then
    // does not complain about arguments left unconverted.
    bool mapping_like = false;
    if (b.is_sequence() && b.seq().kind == SeqKind::kTuple) {
      args = b.items();
    } else {
      args.push_back(b);
      mapping_like = b.is_undefined() || b.is_sequence();
    }
    absl::StatusOr<std::string> out = PercentFormat(a.str(), args, mapping_like);
    if (!out.ok()) return out.status();
    return Value::String(*std::move(out));
  }
  if (!a.is_number() || !b.is_number()) return TypeError("%", a, b);
  if (a.is_integral() && b.is_integral()) {
    const int64_t x = a.int_value();
    const int64_t y = b.int_value();
    if (y == 0) return RenderError("integer division or modulo by zero");
    if (y == -1) return Value::Int(0);
    int64_t r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value::Int(r);
  }
  if (b.float_value() == 0) return RenderError("float modulo");
  return Value::Float(FloatDivMod(a.float_value(), b.float_value()).second);
}

absl::StatusOr<Value> Divide(ast::BinaryOp op, const Value& a, const Value& b) {
  if (!a.is_number() || !b.is_number())
    return TypeError(op == ast::BinaryOp::kDiv ? "/" : "//", a, b);
  if (op == ast::BinaryOp::kDiv) {
    if (b.float_value() == 0) return RenderError("division by zero");
    // Python divides ints exactly before rounding; doubles hold ints exactly up to 2**53.
    constexpr int64_t kExact = int64_t{1} << 53;
    if (a.is_integral() && b.is_integral() &&
        (a.int_value() > kExact || a.int_value() < -kExact || b.int_value() > kExact ||
         b.int_value() < -kExact)) {
      return RenderUnsupported("true division of integers beyond 2**53");
    }
    return Value::Float(a.float_value() / b.float_value());
  }
  if (a.is_integral() && b.is_integral()) {
    const int64_t x = a.int_value();
    const int64_t y = b.int_value();
    if (y == 0) return RenderError("integer division or modulo by zero");
    if (x == std::numeric_limits<int64_t>::min() && y == -1) return Overflow();
    int64_t q = x / y;
    if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
    return Value::Int(q);
  }
  if (b.float_value() == 0) return RenderError("float floor division by zero");
  return Value::Float(FloatDivMod(a.float_value(), b.float_value()).first);
}

// Python's slice.indices(length).
absl::Status AdjustSlice(const Value& start_v, const Value& stop_v, const Value& step_v,
                         int64_t length, int64_t* start, int64_t* stop, int64_t* step) {
  *step = step_v.is_none() ? 1 : step_v.int_value();
  if (*step == 0) return RenderError("slice step cannot be zero");
  const bool back = *step < 0;
  auto clamp = [&](const Value& v, int64_t dflt) {
    if (v.is_none()) return dflt;
    int64_t i = v.int_value();
    if (i < 0) {
      i += length;
      if (i < 0) i = back ? -1 : 0;
    } else if (i >= length) {
      i = back ? length - 1 : length;
    }
    return i;
  };
  *start = clamp(start_v, back ? length - 1 : 0);
  *stop = clamp(stop_v, back ? -1 : length);
  return absl::OkStatus();
}

}  // namespace

absl::Status UndefinedError(const Value& undefined) {
  const std::string& hint = undefined.undefined_hint();
  return RenderError(hint.empty() ? std::string("undefined value") : hint);
}

absl::StatusOr<Value> BinaryOperation(ast::BinaryOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) return UndefinedError(a);
  // str % Undefined is str's business (formats it as ''); other operators defer to Undefined.
  if (b.is_undefined() && !(op == ast::BinaryOp::kMod && a.is_string())) return UndefinedError(b);
  switch (op) {
    case ast::BinaryOp::kAdd:
      return Add(a, b);
    case ast::BinaryOp::kSub:
      if (!a.is_number() || !b.is_number()) return TypeError("-", a, b);
      if (a.is_integral() && b.is_integral()) {
        int64_t r;
        if (__builtin_sub_overflow(a.int_value(), b.int_value(), &r)) return Overflow();
        return Value::Int(r);
      }
      return Value::Float(a.float_value() - b.float_value());
    case ast::BinaryOp::kMul:
      return Multiply(a, b);
    case ast::BinaryOp::kDiv:
    case ast::BinaryOp::kFloorDiv:
      return Divide(op, a, b);
    case ast::BinaryOp::kMod:
      return Modulo(a, b);
    case ast::BinaryOp::kPow:
      return Power(a, b);
    default:
      return RenderError("internal error: not an arithmetic operator");
  }
}

absl::StatusOr<Value> Negate(const Value& v) {
  if (v.is_undefined()) return UndefinedError(v);
  if (v.is_float()) return Value::Float(-v.float_value());
  if (v.is_integral()) {
    if (v.int_value() == std::numeric_limits<int64_t>::min()) return Overflow();
    return Value::Int(-v.int_value());
  }
  return RenderError(Cat("bad operand type for unary -: '", TypeName(v), "'"));
}

absl::StatusOr<Value> Positive(const Value& v) {
  if (v.is_undefined()) return UndefinedError(v);
  if (v.is_float()) return v;
  if (v.is_integral()) return Value::Int(v.int_value());
  return RenderError(Cat("bad operand type for unary +: '", TypeName(v), "'"));
}

absl::StatusOr<int> Order(const Value& a, const Value& b) {
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  if (a.is_number() && b.is_number()) {
    return CompareNumbers(a, b);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.str().compare(b.str());
    return (c > 0) - (c < 0);
  }
  if (a.is_sequence() && b.is_sequence() && a.seq().kind == b.seq().kind &&
      (a.seq().kind == SeqKind::kList || a.seq().kind == SeqKind::kTuple)) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (Equals(x[i], y[i])) continue;
      return Order(x[i], y[i]);
    }
    return (x.size() > y.size()) - (x.size() < y.size());
  }
  return RenderError(
      Cat("'<' not supported between instances of '", TypeName(a), "' and '", TypeName(b), "'"));
}

absl::StatusOr<bool> CompareValues(ast::CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case ast::CompareOp::kEq:
      return Equals(a, b);
    case ast::CompareOp::kNe:
      return !Equals(a, b);
    case ast::CompareOp::kIn:
      return Contains(b, a);
    case ast::CompareOp::kNotIn: {
      absl::StatusOr<bool> in = Contains(b, a);
      if (!in.ok()) return in.status();
      return !*in;
    }
    default:
      break;
  }
  if ((a.is_float() && std::isnan(a.float_value())) ||
      (b.is_float() && std::isnan(b.float_value()))) {
    if (a.is_number() && b.is_number()) return false;
  }
  absl::StatusOr<int> order = Order(a, b);
  if (!order.ok()) return order.status();
  switch (op) {
    case ast::CompareOp::kLt:
      return *order < 0;
    case ast::CompareOp::kLe:
      return *order <= 0;
    case ast::CompareOp::kGt:
      return *order > 0;
    case ast::CompareOp::kGe:
      return *order >= 0;
    default:
      return false;
  }
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;  // Undefined iterates as empty
    case Value::Kind::kString:
      if (!item.is_string()) {
        return RenderError(
            Cat("'in <string>' requires string as left operand, not ", TypeName(item)));
      }
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kSequence: {
      const Sequence& seq = container.seq();
      const size_t begin = seq.kind == SeqKind::kIterator ? seq.cursor : 0;
      for (size_t i = begin; i < seq.items.size(); ++i) {
        if (Equals(seq.items[i], item)) {
          if (seq.kind == SeqKind::kIterator) seq.cursor = i + 1;
          return true;
        }
      }
      if (seq.kind == SeqKind::kIterator) seq.cursor = seq.items.size();
      return false;
    }
    case Value::Kind::kDict:
      if (!IsHashable(item)) {
        return RenderError(Cat("unhashable type: '", TypeName(item), "'"));
      }
      return container.dict().Find(item) != nullptr;
    default:
      return RenderError(Cat("argument of type '", TypeName(container), "' is not iterable"));
  }
}

absl::StatusOr<Value> GetAttribute(const Value& obj, std::string_view name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      return UndefinedError(obj);
    case Value::Kind::kObject: {
      std::optional<Value> attr = obj.object()->GetAttr(name);
      if (attr.has_value()) return *std::move(attr);
      return MissingAttribute(obj, name);
    }
    default:
      break;
  }
  std::optional<Value> method = FindMethod(obj, name);
  if (method.has_value()) return *std::move(method);
  if (obj.is_dict()) {
    if (const Value* value = obj.dict().Find(name); value != nullptr) return *value;
  }
  return MissingAttribute(obj, name);
}

absl::StatusOr<Value> GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return UndefinedError(obj);
  if (key.is_integral() && Subscriptable(obj)) {
    int64_t index = key.int_value();
    if (obj.is_string()) {
      std::optional<std::string> ch = unicode::CodePointAt(obj.str(), index);
      if (!ch.has_value()) return MissingItem(obj, key);
      return Value::String(*std::move(ch));
    }
    const int64_t n = static_cast<int64_t>(obj.items().size());
    if (index < 0) index += n;
    if (index < 0 || index >= n) return MissingItem(obj, key);
    return obj.items()[index];
  }
  if (obj.is_dict()) {
    if (const Value* value = obj.dict().Find(key); value != nullptr) return *value;
  }
  if (key.is_string()) {
    if (obj.is_object()) {
      std::optional<Value> attr = obj.object()->GetAttr(key.str());
      if (attr.has_value()) return *std::move(attr);
    } else if (std::optional<Value> method = FindMethod(obj, key.str()); method.has_value()) {
      return *std::move(method);
    }
  }
  return MissingItem(obj, key);
}

absl::StatusOr<Value> GetSlice(const Value& obj, const Value& start, const Value& stop,
                               const Value& step) {
  // jinja2 compiles slicing to a plain Python subscript: no Undefined fallback here.
  if (obj.is_undefined()) return UndefinedError(obj);
  if (obj.is_dict()) return RenderError("unhashable type: 'slice'");
  if (!Subscriptable(obj)) {
    return RenderError(Cat("'", TypeName(obj), "' object is not subscriptable"));
  }
  for (const Value* bound : {&start, &stop, &step}) {
    if (bound->is_undefined()) return UndefinedError(*bound);
    if (!bound->is_none() && !bound->is_integral()) {
      return RenderError("slice indices must be integers or None or have an __index__ method");
    }
  }
  std::u32string cps;
  int64_t length;
  if (obj.is_string()) {
    cps = unicode::Decode(obj.str());
    length = static_cast<int64_t>(cps.size());
  } else {
    length = static_cast<int64_t>(obj.items().size());
  }
  int64_t begin = 0, end = 0, stride = 1;
  if (absl::Status s = AdjustSlice(start, stop, step, length, &begin, &end, &stride); !s.ok()) {
    return s;
  }
  std::vector<int64_t> indices;
  for (int64_t i = begin; stride > 0 ? i < end : i > end; i += stride) indices.push_back(i);
  if (obj.is_string()) {
    std::u32string out;
    for (int64_t i : indices) out.push_back(cps[i]);
    return obj.is_markup() ? Value::Markup(unicode::Encode(out))
                           : Value::String(unicode::Encode(out));
  }
  std::vector<Value> out;
  out.reserve(indices.size());
  for (int64_t i : indices) out.push_back(obj.items()[i]);
  return Value::Seq(std::move(out), obj.seq().kind);
}

absl::StatusOr<int64_t> Length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<int64_t>(unicode::Length(v.str()));
    case Value::Kind::kSequence:
      if (v.seq().kind != SeqKind::kIterator) return static_cast<int64_t>(v.items().size());
      break;
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.dict().size());
    default:
      break;
  }
  return RenderError(Cat("object of type '", TypeName(v), "' has no len()"));
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace moeserve::jinja
