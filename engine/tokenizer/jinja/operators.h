// Python's semantics for what templates do with values: arithmetic, comparison, `in`,
// attribute and item access (with jinja2's sandboxed getattr/getitem fallbacks), slicing
// and len(). Errors are render errors without a position; the evaluator adds it.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_OPERATORS_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_OPERATORS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja/ast.h"
#include "engine/tokenizer/jinja/value.h"

namespace moeserve::jinja {

// + - * / // % ** (not `and`/`or`, which the evaluator short-circuits).
absl::StatusOr<Value> BinaryOperation(ast::BinaryOp op, const Value& a, const Value& b);
absl::StatusOr<Value> Negate(const Value& v);
absl::StatusOr<Value> Positive(const Value& v);

absl::StatusOr<bool> CompareValues(ast::CompareOp op, const Value& a, const Value& b);
// Python's ordering (a < b: -1, equal: 0, a > b: 1); TypeError for unorderable types.
absl::StatusOr<int> Order(const Value& a, const Value& b);
absl::StatusOr<bool> Contains(const Value& container, const Value& item);  // item in container

// `obj.name`: a method or attribute first, then obj['name']; Undefined when neither.
// An Undefined `obj` is an error, as in jinja2.
absl::StatusOr<Value> GetAttribute(const Value& obj, std::string_view name);
// `obj[key]`: the item first, then the attribute named `key`; Undefined when neither.
absl::StatusOr<Value> GetItem(const Value& obj, const Value& key);
// `obj[start:stop:step]`; absent bounds are None.
absl::StatusOr<Value> GetSlice(const Value& obj, const Value& start, const Value& stop,
                               const Value& step);

absl::StatusOr<int64_t> Length(const Value& v);  // len()

// The error a use of an Undefined value raises ("'x' is undefined").
absl::Status UndefinedError(const Value& undefined);

std::string HtmlEscape(std::string_view s);  // markupsafe.escape

// Python's printf-style `format % args` for |format and the % operator. With
// `unused_ok`, leftover arguments are not an error (Python's rule for a mapping-like
// right operand).
absl::StatusOr<std::string> PercentFormat(std::string_view format, const std::vector<Value>& args,
                                          bool unused_ok = false);

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_OPERATORS_H_
