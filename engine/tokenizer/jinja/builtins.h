// The builtin vocabulary of a template: filters (filters.cc), tests (tests.cc), methods of
// str/list/dict (methods.cc) and global functions (globals.cc), as in the environment
// transformers renders chat templates with (jinja2 defaults plus raise_exception,
// strftime_now and a JSON |tojson). The parser resolves filter and test names once, so an
// unknown or unsupported one fails at parse time with its position.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_BUILTINS_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_BUILTINS_H_

#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja/value.h"

namespace moeserve::jinja {

class Interpreter;

using FilterFn = absl::StatusOr<Value> (*)(Interpreter& interpreter, const Value& operand,
                                           const CallArgs& args);
using TestFn = absl::StatusOr<bool> (*)(Interpreter& interpreter, const Value& operand,
                                        const CallArgs& args);

FilterFn FindFilter(std::string_view name);  // nullptr when unknown or unsupported
TestFn FindTest(std::string_view name);      // nullptr when unknown or unsupported
// Whether jinja2 itself has a filter / test of this name (supported here or not).
bool IsJinjaFilter(std::string_view name);
bool IsJinjaTest(std::string_view name);

// `self.name` where `self` is a str, list or dict and `name` one of its Python methods:
// the bound method, or a value whose use fails as the sandbox does for mutating methods
// (list.append, dict.update, ...). nullopt when the type has no such attribute.
std::optional<Value> FindMethod(const Value& self, std::string_view name);

// A Python str/list/dict method this interpreter does not implement (str.format, ...): a
// call to an attribute of that name fails at parse time rather than render differently.
bool IsUnsupportedMethod(std::string_view name);

// The global functions: range, dict, namespace, raise_exception, strftime_now.
const Dict& Globals();
// jinja2 globals that are not implemented (cycler, joiner, lipsum).
bool IsUnsupportedGlobal(std::string_view name);

// Binds call arguments to a Python-style signature: positional first, then by keyword.
// Absent arguments are nullopt. Errors ("too many arguments", "unexpected keyword
// argument") name `callee`.
absl::StatusOr<std::vector<std::optional<Value>>> BindArgs(
    std::string_view callee, const CallArgs& args, std::initializer_list<std::string_view> params);

// A builtin function as a callable Value (used for globals and bound methods).
using NativeFn = absl::StatusOr<Value> (*)(Interpreter& interpreter, const Value& self,
                                           const CallArgs& args);
Value MakeNativeFunction(std::string_view name, NativeFn fn, Value self = Value());

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_BUILTINS_H_
