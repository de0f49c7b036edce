// The `is` tests (x is defined, x is string, n is divisibleby 3, ...).
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/builtins.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/interpreter.h"
#include "engine/tokenizer/jinja/operators.h"

namespace moeserve::jinja {
namespace {

using Args = std::vector<std::optional<Value>>;

absl::StatusOr<Value> OneArg(std::string_view test, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs(test, call, {"other"}));
  if (!args[0].has_value()) {
    return RenderError(Cat("test '", test, "' needs an argument"));
  }
  return *args[0];
}

template <bool (*kPredicate)(const Value&)>
absl::StatusOr<bool> Unary(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("test", args, {}).status());
  return kPredicate(v);
}

bool IsDefined(const Value& v) { return !v.is_undefined(); }
bool IsUndefined(const Value& v) { return v.is_undefined(); }
bool IsNone(const Value& v) { return v.is_none(); }
bool IsBoolean(const Value& v) { return v.is_bool(); }
bool IsFalse(const Value& v) { return v.is_bool() && !v.bool_value(); }
bool IsTrue(const Value& v) { return v.is_bool() && v.bool_value(); }
bool IsInteger(const Value& v) { return v.is_int(); }
bool IsFloat(const Value& v) { return v.is_float(); }
bool IsNumber(const Value& v) { return v.is_number(); }
bool IsString(const Value& v) { return v.is_string(); }
bool IsMapping(const Value& v) { return v.is_dict(); }
bool IsEscaped(const Value& v) { return v.is_markup(); }
// iter(x) works: Undefined iterates (as empty) too.
bool IsIterable(const Value& v) {
  return v.is_undefined() || v.is_string() || v.is_sequence() || v.is_dict();
}
// len(x) and x.__getitem__ exist: str, list, tuple, range, dict, and Undefined.
bool IsSequence(const Value& v) {
  if (v.is_sequence()) {
    const SeqKind kind = v.seq().kind;
    return kind == SeqKind::kList || kind == SeqKind::kTuple || kind == SeqKind::kRange;
  }
  return v.is_undefined() || v.is_string() || v.is_dict();
}
// Undefined is callable in Python (calling it raises).
bool IsCallable(const Value& v) {
  return v.is_undefined() || (v.is_object() && v.object()->is_callable());
}

absl::StatusOr<bool> Parity(const Value& v, const CallArgs& args, int64_t want) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("test", args, {}).status());
  MOESERVE_ASSIGN_OR_RETURN(Value rem, BinaryOperation(ast::BinaryOp::kMod, v, Value::Int(2)));
  return Equals(rem, Value::Int(want));
}
absl::StatusOr<bool> Odd(Interpreter&, const Value& v, const CallArgs& a) {
  return Parity(v, a, 1);
}
absl::StatusOr<bool> Even(Interpreter&, const Value& v, const CallArgs& a) {
  return Parity(v, a, 0);
}

absl::StatusOr<bool> DivisibleBy(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("divisibleby", call, {"num"}));
  if (!args[0].has_value()) return RenderError("test 'divisibleby' needs an argument");
  MOESERVE_ASSIGN_OR_RETURN(Value rem, BinaryOperation(ast::BinaryOp::kMod, v, *args[0]));
  return Equals(rem, Value::Int(0));
}

template <ast::CompareOp kOp>
absl::StatusOr<bool> Compare(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Value other, OneArg("comparison", call));
  return CompareValues(kOp, v, other);
}

absl::StatusOr<bool> In(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Value seq, OneArg("in", call));
  return Contains(seq, v);
}

absl::StatusOr<bool> SameAs(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Value other, OneArg("sameas", call));
  if (v.kind() != other.kind()) return false;
  switch (v.kind()) {
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kBool:
      return v.bool_value() == other.bool_value();
    case Value::Kind::kSequence:
      return &v.seq() == &other.seq();
    case Value::Kind::kDict:
      return &v.dict() == &other.dict();
    case Value::Kind::kObject:
      return v.object() == other.object();
    default:  // Python object identity of numbers and strings is an implementation detail
      return RenderUnsupported("'sameas' on numbers, strings or undefined values");
  }
}

template <bool kLower>
absl::StatusOr<bool> CaseTest(Interpreter& interpreter, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("test", args, {}).status());
  MOESERVE_ASSIGN_OR_RETURN(std::string s, ToStr(v));
  MOESERVE_ASSIGN_OR_RETURN(
      Value method, GetAttribute(Value::String(std::move(s)), kLower ? "islower" : "isupper"));
  MOESERVE_ASSIGN_OR_RETURN(Value result, interpreter.Call(method, CallArgs()));
  return Truthy(result);
}

absl::StatusOr<bool> IsFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("test", args, {}).status());
  return v.is_string() && (IsJinjaFilter(v.str()) || FindFilter(v.str()) != nullptr);
}

absl::StatusOr<bool> IsTest(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("test", args, {}).status());
  return v.is_string() && (IsJinjaTest(v.str()) || FindTest(v.str()) != nullptr);
}

}  // namespace

TestFn FindTest(std::string_view name) {
  static const auto* const kTable = new absl::flat_hash_map<std::string_view, TestFn>{
      {"defined", &Unary<IsDefined>},
      {"undefined", &Unary<IsUndefined>},
      {"none", &Unary<IsNone>},
      {"boolean", &Unary<IsBoolean>},
      {"false", &Unary<IsFalse>},
      {"true", &Unary<IsTrue>},
      {"integer", &Unary<IsInteger>},
      {"float", &Unary<IsFloat>},
      {"number", &Unary<IsNumber>},
      {"string", &Unary<IsString>},
      {"mapping", &Unary<IsMapping>},
      {"iterable", &Unary<IsIterable>},
      {"sequence", &Unary<IsSequence>},
      {"callable", &Unary<IsCallable>},
      {"escaped", &Unary<IsEscaped>},
      {"odd", &Odd},
      {"even", &Even},
      {"divisibleby", &DivisibleBy},
      {"eq", &Compare<ast::CompareOp::kEq>},
      {"equalto", &Compare<ast::CompareOp::kEq>},
      {"==", &Compare<ast::CompareOp::kEq>},
      {"ne", &Compare<ast::CompareOp::kNe>},
      {"!=", &Compare<ast::CompareOp::kNe>},
      {"lt", &Compare<ast::CompareOp::kLt>},
      {"lessthan", &Compare<ast::CompareOp::kLt>},
      {"<", &Compare<ast::CompareOp::kLt>},
      {"le", &Compare<ast::CompareOp::kLe>},
      {"<=", &Compare<ast::CompareOp::kLe>},
      {"gt", &Compare<ast::CompareOp::kGt>},
      {"greaterthan", &Compare<ast::CompareOp::kGt>},
      {">", &Compare<ast::CompareOp::kGt>},
      {"ge", &Compare<ast::CompareOp::kGe>},
      {">=", &Compare<ast::CompareOp::kGe>},
      {"in", &In},
      {"sameas", &SameAs},
      {"lower", &CaseTest<true>},
      {"upper", &CaseTest<false>},
      {"filter", &IsFilter},
      {"test", &IsTest},
  };
  auto it = kTable->find(name);
  return it == kTable->end() ? nullptr : it->second;
}

bool IsJinjaTest(std::string_view name) { return FindTest(name) != nullptr; }

}  // namespace moeserve::jinja
