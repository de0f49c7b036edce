// Renders a parsed template: executes statements, evaluates expressions and writes the
// output. One Interpreter per render (it holds the render's scopes and recursion depth);
// the syntax tree it walks is shared and never modified.
//
// Scoping follows jinja2: {% set %} writes to the innermost scope; each loop iteration,
// macro call, {% with %} and block body gets a fresh child scope (so a set inside a loop is
// gone in the next iteration and after the loop); `if` creates none. Namespaces
// (namespace()) are the way to carry state out of a loop.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_INTERPRETER_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_INTERPRETER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja/ast.h"
#include "engine/tokenizer/jinja/value.h"

namespace moeserve::jinja {

class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}

  const Value* Find(std::string_view name) const;  // here or in an enclosing scope
  void Set(std::string_view name, Value value);    // here

 private:
  std::shared_ptr<Scope> parent_;
  absl::flat_hash_map<std::string, Value> vars_;
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter {
 public:
  // `variables` must be a dict: the names the template sees besides the builtin globals.
  explicit Interpreter(const Value& variables);
  ~Interpreter();

  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  absl::StatusOr<std::string> Render(const ast::Program& program);

  // For builtins that call back into the template: calls a callable value (macro, bound
  // method, global function, ...).
  absl::StatusOr<Value> Call(const Value& callee, const CallArgs& args);
  // Runs a macro body with its arguments bound; returns what it rendered.
  absl::StatusOr<Value> InvokeMacro(const ast::Macro& macro, const ScopePtr& closure,
                                    const CallArgs& args);

  // Registers an object that may close a reference cycle (see Object::ReleaseReferences);
  // the destructor releases its references.
  void TrackCycles(const std::shared_ptr<Object>& object) { cyclic_.push_back(object); }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  absl::StatusOr<Flow> ExecBody(const ast::Body& body, const ScopePtr& scope, std::string* out);
  absl::StatusOr<Flow> Exec(const ast::Stmt& stmt, const ScopePtr& scope, std::string* out);
  absl::StatusOr<Flow> ExecFor(const ast::For& node, const ScopePtr& scope, std::string* out);
  absl::Status Assign(const ast::Expr& target, const Value& value, const ScopePtr& scope);

  absl::StatusOr<Value> Eval(const ast::Expr& expr, const ScopePtr& scope);
  absl::StatusOr<Value> EvalImpl(const ast::Expr& expr, const ScopePtr& scope);
  absl::StatusOr<CallArgs> EvalArgs(const ast::Args& args, const ScopePtr& scope);
  // A filter chain whose innermost filter has no operand, applied to `input`.
  absl::StatusOr<Value> ApplyFilter(const ast::Filter& filter, const ScopePtr& scope,
                                    const Value* input);

  // A child scope of `parent` for a frame, with the frame's locals bound to Undefined.
  static ScopePtr NewFrame(const ScopePtr& parent, const ast::FrameLocals& locals);

  ScopePtr root_;
  int call_depth_ = 0;
  std::vector<std::weak_ptr<Object>> cyclic_;
};

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_INTERPRETER_H_
