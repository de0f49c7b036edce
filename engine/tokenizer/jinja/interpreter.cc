#include "engine/tokenizer/jinja/interpreter.h"

#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/builtins.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/operators.h"

namespace moeserve::jinja {
namespace {

// Python's default recursion limit would stop a runaway macro near here too.
constexpr int kMaxCallDepth = 200;

// State shared by the iterations of one loop (loop.changed()).
struct LoopState {
  std::vector<Value> items;
  std::optional<std::vector<Value>> last_changed;
};

// The `loop` variable of one iteration.
class LoopObject : public Object {
 public:
  LoopObject(std::shared_ptr<LoopState> state, size_t index0)
      : state_(std::move(state)), index0_(index0) {}

  std::string_view type_name() const override { return "LoopContext"; }

  std::optional<Value> GetAttr(std::string_view name) const override {
    const int64_t length = static_cast<int64_t>(state_->items.size());
    const int64_t i = static_cast<int64_t>(index0_);
    if (name == "index") return Value::Int(i + 1);
    if (name == "index0") return Value::Int(i);
    if (name == "revindex") return Value::Int(length - i);
    if (name == "revindex0") return Value::Int(length - i - 1);
    if (name == "first") return Value::Bool(i == 0);
    if (name == "last") return Value::Bool(i == length - 1);
    if (name == "length") return Value::Int(length);
    if (name == "depth") return Value::Int(1);
    if (name == "depth0") return Value::Int(0);
    if (name == "previtem") {
      if (i == 0) return Value::Undefined("there is no previous item");
      return state_->items[i - 1];
    }
    if (name == "nextitem") {
      if (i + 1 >= length) return Value::Undefined("there is no next item");
      return state_->items[i + 1];
    }
    if (name == "cycle") return MakeNativeFunction("cycle", &Cycle, Value::FromObject(Self()));
    if (name == "changed")
      return MakeNativeFunction("changed", &Changed, Value::FromObject(Self()));
    return std::nullopt;
  }

  void set_self(std::weak_ptr<LoopObject> self) { self_ = std::move(self); }

 private:
  std::shared_ptr<Object> Self() const { return self_.lock(); }

  static absl::StatusOr<Value> Cycle(Interpreter&, const Value& self, const CallArgs& args) {
    const auto& loop = static_cast<const LoopObject&>(*self.object());
    if (args.positional.empty()) return RenderError("no items for cycling given");
    return args.positional[loop.index0_ % args.positional.size()];
  }

  static absl::StatusOr<Value> Changed(Interpreter&, const Value& self, const CallArgs& args) {
    auto& loop = static_cast<LoopObject&>(*self.object());
    const std::vector<Value>& values = args.positional;
    auto& last = loop.state_->last_changed;
    bool same = last.has_value() && last->size() == values.size();
    for (size_t i = 0; same && i < values.size(); ++i) same = Equals((*last)[i], values[i]);
    if (same) return Value::Bool(false);
    last = values;
    return Value::Bool(true);
  }

  std::shared_ptr<LoopState> state_;
  size_t index0_;
  std::weak_ptr<LoopObject> self_;
};

class MacroObject : public Object {
 public:
  MacroObject(const ast::Macro* macro, ScopePtr closure)
      : macro_(macro), closure_(std::move(closure)) {}

  std::string_view type_name() const override { return "Macro"; }
  bool is_callable() const override { return true; }
  absl::StatusOr<Value> Call(const CallArgs& args, Interpreter& interpreter) override {
    return interpreter.InvokeMacro(*macro_, closure_, args);
  }
  void ReleaseReferences() override { closure_.reset(); }

 private:
  const ast::Macro* macro_;
  ScopePtr closure_;
};

template <typename T>
const T& As(const ast::Expr& expr) {
  return static_cast<const T&>(expr);
}
template <typename T>
const T& As(const ast::Stmt& stmt) {
  return static_cast<const T&>(stmt);
}

}  // namespace

const Value* Scope::Find(std::string_view name) const {
  for (const Scope* scope = this; scope != nullptr; scope = scope->parent_.get()) {
    auto it = scope->vars_.find(Sv(name));
    if (it != scope->vars_.end()) return &it->second;
  }
  return nullptr;
}

void Scope::Set(std::string_view name, Value value) {
  vars_.insert_or_assign(std::string(name), std::move(value));
}

Interpreter::Interpreter(const Value& variables) {
  auto globals = std::make_shared<Scope>(nullptr);
  for (const auto& [key, value] : Globals().entries()) globals->Set(key.str(), value);
  root_ = std::make_shared<Scope>(std::move(globals));
  if (variables.is_dict()) {
    for (const auto& [key, value] : variables.dict().entries()) {
      if (key.is_string()) root_->Set(key.str(), value);
    }
  }
}

Interpreter::~Interpreter() {
  // Values never outlive the render, so every cycle it made can be cut now.
  for (const std::weak_ptr<Object>& weak : cyclic_) {
    if (std::shared_ptr<Object> object = weak.lock()) object->ReleaseReferences();
  }
}

ScopePtr Interpreter::NewFrame(const ScopePtr& parent, const ast::FrameLocals& locals) {
  auto scope = std::make_shared<Scope>(parent);
  for (const std::string& name : locals) {
    scope->Set(name, Value::Undefined(Cat("'", name, "' is undefined")));
  }
  return scope;
}

absl::StatusOr<std::string> Interpreter::Render(const ast::Program& program) {
  for (const std::string& name : program.locals) {
    root_->Set(name, Value::Undefined(Cat("'", name, "' is undefined")));
  }
  std::string out;
  MOESERVE_RETURN_IF_ERROR(ExecBody(program.body, root_, &out).status());
  return out;
}

absl::StatusOr<Value> Interpreter::Call(const Value& callee, const CallArgs& args) {
  if (callee.is_undefined()) return UndefinedError(callee);
  if (!callee.is_object() || !callee.object()->is_callable()) {
    return RenderError(Cat("'", TypeName(callee), "' object is not callable"));
  }
  if (++call_depth_ > kMaxCallDepth) {
    --call_depth_;
    return RenderError("maximum recursion depth exceeded");
  }
  absl::StatusOr<Value> result = callee.object()->Call(args, *this);
  --call_depth_;
  return result;
}

absl::StatusOr<Value> Interpreter::InvokeMacro(const ast::Macro& macro, const ScopePtr& closure,
                                               const CallArgs& args) {
  const size_t num_params = macro.params.size();
  if (args.positional.size() > num_params) {
    return RenderError(
        Cat("macro '", macro.name, "' takes not more than ", num_params, " argument(s)"));
  }
  std::vector<std::optional<Value>> bound(num_params);
  for (size_t i = 0; i < args.positional.size(); ++i) bound[i] = args.positional[i];
  for (const auto& [name, value] : args.keyword) {
    size_t i = 0;
    while (i < num_params && macro.params[i] != name) ++i;
    if (i == num_params) {
      return RenderError(Cat("macro '", macro.name, "' takes no keyword argument '", name, "'"));
    }
    if (bound[i].has_value()) {
      return RenderError(
          Cat("macro '", macro.name, "' got multiple values for argument '", name, "'"));
    }
    bound[i] = value;
  }
  ScopePtr scope = NewFrame(closure, macro.locals);
  const size_t first_default = num_params - macro.defaults.size();
  for (size_t i = 0; i < num_params; ++i) {
    if (!bound[i].has_value()) {
      if (i >= first_default) {
        MOESERVE_ASSIGN_OR_RETURN(bound[i], Eval(*macro.defaults[i - first_default], scope));
      } else {
        bound[i] = Value::Undefined(Cat("parameter '", macro.params[i], "' was not provided"));
      }
    }
    scope->Set(macro.params[i], *bound[i]);
  }
  std::string out;
  MOESERVE_RETURN_IF_ERROR(ExecBody(macro.body, scope, &out).status());
  return Value::String(std::move(out));
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecBody(const ast::Body& body,
                                                        const ScopePtr& scope, std::string* out) {
  for (const ast::StmtPtr& stmt : body) {
    absl::StatusOr<Flow> flow = Exec(*stmt, scope, out);
    if (!flow.ok()) return WithLocation(flow.status(), stmt->loc);
    if (*flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

absl::StatusOr<Interpreter::Flow> Interpreter::Exec(const ast::Stmt& stmt, const ScopePtr& scope,
                                                    std::string* out) {
  switch (stmt.kind) {
    case ast::StmtKind::kText:
      out->append(As<ast::Text>(stmt).text);
      return Flow::kNormal;
    case ast::StmtKind::kPrint: {
      MOESERVE_ASSIGN_OR_RETURN(Value value, Eval(*As<ast::Print>(stmt).expr, scope));
      MOESERVE_RETURN_IF_ERROR(AppendStr(value, out));
      return Flow::kNormal;
    }
    case ast::StmtKind::kIf:
      for (const auto& [test, body] : As<ast::If>(stmt).branches) {
        MOESERVE_ASSIGN_OR_RETURN(Value cond, Eval(*test, scope));
        if (Truthy(cond)) return ExecBody(body, scope, out);
      }
      return ExecBody(As<ast::If>(stmt).else_body, scope, out);
    case ast::StmtKind::kFor:
      return ExecFor(As<ast::For>(stmt), scope, out);
    case ast::StmtKind::kSet: {
      const auto& node = As<ast::Set>(stmt);
      MOESERVE_ASSIGN_OR_RETURN(Value value, Eval(*node.value, scope));
      MOESERVE_RETURN_IF_ERROR(Assign(*node.target, value, scope));
      return Flow::kNormal;
    }
    case ast::StmtKind::kSetBlock: {
      const auto& node = As<ast::SetBlock>(stmt);
      std::string text;
      // A break/continue in the body leaves the loop at once: nothing is assigned.
      MOESERVE_ASSIGN_OR_RETURN(Flow flow,
                                ExecBody(node.body, NewFrame(scope, node.locals), &text));
      if (flow != Flow::kNormal) return flow;
      Value value = Value::String(std::move(text));
      if (node.filter != nullptr) {
        MOESERVE_ASSIGN_OR_RETURN(value, ApplyFilter(As<ast::Filter>(*node.filter), scope, &value));
      }
      MOESERVE_RETURN_IF_ERROR(Assign(*node.target, value, scope));
      return Flow::kNormal;
    }
    case ast::StmtKind::kMacro: {
      const auto& node = As<ast::Macro>(stmt);
      auto macro = std::make_shared<MacroObject>(&node, scope);
      TrackCycles(macro);
      scope->Set(node.name, Value::FromObject(std::move(macro)));
      return Flow::kNormal;
    }
    case ast::StmtKind::kFilterBlock: {
      const auto& node = As<ast::FilterBlock>(stmt);
      std::string text;
      // A break/continue in the body leaves the loop at once, dropping the body's output.
      MOESERVE_ASSIGN_OR_RETURN(Flow flow,
                                ExecBody(node.body, NewFrame(scope, node.locals), &text));
      if (flow != Flow::kNormal) return flow;
      const Value input = Value::String(std::move(text));
      MOESERVE_ASSIGN_OR_RETURN(Value value,
                                ApplyFilter(As<ast::Filter>(*node.filter), scope, &input));
      MOESERVE_RETURN_IF_ERROR(AppendStr(value, out));
      return Flow::kNormal;
    }
    case ast::StmtKind::kWith: {
      const auto& node = As<ast::With>(stmt);
      ScopePtr inner = NewFrame(scope, node.locals);
      for (size_t i = 0; i < node.targets.size(); ++i) {
        MOESERVE_ASSIGN_OR_RETURN(Value value, Eval(*node.values[i], scope));
        MOESERVE_RETURN_IF_ERROR(Assign(*node.targets[i], value, inner));
      }
      return ExecBody(node.body, inner, out);
    }
    case ast::StmtKind::kBreak:
      return Flow::kBreak;
    case ast::StmtKind::kContinue:
      return Flow::kContinue;
    case ast::StmtKind::kBlock: {
      const auto& node = As<ast::Block>(stmt);
      return ExecBody(node.body, node.scoped ? NewFrame(scope, node.locals) : scope, out);
    }
  }
  return RenderError("internal error: unknown statement");
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecFor(const ast::For& node, const ScopePtr& scope,
                                                       std::string* out) {
  MOESERVE_ASSIGN_OR_RETURN(Value iterable, Eval(*node.iter, scope));
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(iterable));
  auto state = std::make_shared<LoopState>();
  if (node.filter == nullptr) {
    state->items = std::move(items);
  } else {
    // The filter sees the loop target but not `loop`; loop.length counts what passes.
    for (Value& item : items) {
      auto probe = std::make_shared<Scope>(scope);
      MOESERVE_RETURN_IF_ERROR(Assign(*node.target, item, probe));
      MOESERVE_ASSIGN_OR_RETURN(Value keep, Eval(*node.filter, probe));
      if (Truthy(keep)) state->items.push_back(std::move(item));
    }
  }
  // As jinja2 compiles it, the else body runs unless some iteration ran its body to the
  // end: also when every iteration ended in break or continue.
  bool completed_iteration = false;
  for (size_t i = 0; i < state->items.size(); ++i) {
    ScopePtr iteration = NewFrame(scope, node.body_locals);
    MOESERVE_RETURN_IF_ERROR(Assign(*node.target, state->items[i], iteration));
    auto loop = std::make_shared<LoopObject>(state, i);
    loop->set_self(loop);
    iteration->Set("loop", Value::FromObject(loop));
    MOESERVE_ASSIGN_OR_RETURN(Flow flow, ExecBody(node.body, iteration, out));
    if (flow == Flow::kNormal) completed_iteration = true;
    if (flow == Flow::kBreak) break;
  }
  if (completed_iteration) return Flow::kNormal;
  return ExecBody(node.else_body, NewFrame(scope, node.else_locals), out);
}

absl::Status Interpreter::Assign(const ast::Expr& target, const Value& value,
                                 const ScopePtr& scope) {
  switch (target.kind) {
    case ast::ExprKind::kName:
      scope->Set(As<ast::Name>(target).name, value);
      return absl::OkStatus();
    case ast::ExprKind::kNsRef: {
      const auto& ref = As<ast::NsRef>(target);
      const Value* ns = scope->Find(ref.name);
      if (ns == nullptr || !ns->is_object() || ns->object()->type_name() != "Namespace") {
        return WithLocation(RenderError("cannot assign attribute on non-namespace object"),
                            target.loc);
      }
      return WithLocation(ns->object()->SetAttr(ref.attr, value), target.loc);
    }
    case ast::ExprKind::kList: {
      const auto& targets = As<ast::ListExpr>(target).items;
      absl::StatusOr<std::vector<Value>> items = Iterate(value);
      if (!items.ok()) return WithLocation(items.status(), target.loc);
      if (items->size() != targets.size()) {
        return WithLocation(
            RenderError(items->size() > targets.size()
                            ? Cat("too many values to unpack (expected ", targets.size(), ")")
                            : Cat("not enough values to unpack (expected ", targets.size(),
                                  ", got ", items->size(), ")")),
            target.loc);
      }
      for (size_t i = 0; i < targets.size(); ++i) {
        MOESERVE_RETURN_IF_ERROR(Assign(*targets[i], (*items)[i], scope));
      }
      return absl::OkStatus();
    }
    default:
      return WithLocation(RenderError("invalid assignment target"), target.loc);
  }
}

absl::StatusOr<Value> Interpreter::Eval(const ast::Expr& expr, const ScopePtr& scope) {
  absl::StatusOr<Value> value = EvalImpl(expr, scope);
  if (!value.ok()) return WithLocation(value.status(), expr.loc);
  return value;
}

absl::StatusOr<CallArgs> Interpreter::EvalArgs(const ast::Args& args, const ScopePtr& scope) {
  CallArgs out;
  out.positional.reserve(args.positional.size());
  for (const ast::ExprPtr& arg : args.positional) {
    MOESERVE_ASSIGN_OR_RETURN(Value value, Eval(*arg, scope));
    out.positional.push_back(std::move(value));
  }
  for (const auto& [name, arg] : args.keyword) {
    MOESERVE_ASSIGN_OR_RETURN(Value value, Eval(*arg, scope));
    out.keyword.emplace_back(name, std::move(value));
  }
  return out;
}

absl::StatusOr<Value> Interpreter::ApplyFilter(const ast::Filter& filter, const ScopePtr& scope,
                                               const Value* input) {
  Value operand;
  if (filter.operand == nullptr) {
    operand = *input;
  } else if (input != nullptr) {  // inner link of a block's filter chain
    MOESERVE_ASSIGN_OR_RETURN(operand, ApplyFilter(As<ast::Filter>(*filter.operand), scope, input));
  } else {
    MOESERVE_ASSIGN_OR_RETURN(operand, Eval(*filter.operand, scope));
  }
  MOESERVE_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(filter.args, scope));
  if (filter.fn == nullptr) {
    return WithLocation(RenderError(Cat("No filter named '", filter.name, "' found.")), filter.loc);
  }
  absl::StatusOr<Value> result = filter.fn(*this, operand, args);
  if (!result.ok()) return WithLocation(result.status(), filter.loc);
  return result;
}

absl::StatusOr<Value> Interpreter::EvalImpl(const ast::Expr& expr, const ScopePtr& scope) {
  switch (expr.kind) {
    case ast::ExprKind::kLiteral:
      return As<ast::Literal>(expr).value;
    case ast::ExprKind::kName: {
      const std::string& name = As<ast::Name>(expr).name;
      const Value* value = scope->Find(name);
      if (value == nullptr) return Value::Undefined(Cat("'", name, "' is undefined"));
      return *value;
    }
    case ast::ExprKind::kList: {
      const auto& node = As<ast::ListExpr>(expr);
      std::vector<Value> items;
      items.reserve(node.items.size());
      for (const ast::ExprPtr& item : node.items) {
        MOESERVE_ASSIGN_OR_RETURN(Value value, Eval(*item, scope));
        items.push_back(std::move(value));
      }
      return node.is_tuple ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
    }
    case ast::ExprKind::kDict: {
      Dict dict;
      for (const auto& [key_expr, value_expr] : As<ast::DictExpr>(expr).items) {
        MOESERVE_ASSIGN_OR_RETURN(Value key, Eval(*key_expr, scope));
        MOESERVE_ASSIGN_OR_RETURN(Value value, Eval(*value_expr, scope));
        if (!IsHashable(key)) {
          return RenderError(Cat("unhashable type: '", TypeName(key), "'"));
        }
        dict.Set(std::move(key), std::move(value));
      }
      return Value::FromDict(std::move(dict));
    }
    case ast::ExprKind::kGetAttr: {
      const auto& node = As<ast::GetAttr>(expr);
      MOESERVE_ASSIGN_OR_RETURN(Value object, Eval(*node.object, scope));
      return GetAttribute(object, node.name);
    }
    case ast::ExprKind::kGetItem: {
      const auto& node = As<ast::GetItem>(expr);
      MOESERVE_ASSIGN_OR_RETURN(Value object, Eval(*node.object, scope));
      if (node.index->kind == ast::ExprKind::kSlice) {
        const auto& slice = As<ast::Slice>(*node.index);
        Value bounds[3] = {Value::None(), Value::None(), Value::None()};
        const ast::ExprPtr* exprs[3] = {&slice.start, &slice.stop, &slice.step};
        for (int i = 0; i < 3; ++i) {
          if (*exprs[i] != nullptr) {
            MOESERVE_ASSIGN_OR_RETURN(bounds[i], Eval(**exprs[i], scope));
          }
        }
        return GetSlice(object, bounds[0], bounds[1], bounds[2]);
      }
      MOESERVE_ASSIGN_OR_RETURN(Value key, Eval(*node.index, scope));
      return GetItem(object, key);
    }
    case ast::ExprKind::kCall: {
      const auto& node = As<ast::Call>(expr);
      MOESERVE_ASSIGN_OR_RETURN(Value callee, Eval(*node.callee, scope));
      MOESERVE_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(node.args, scope));
      return Call(callee, args);
    }
    case ast::ExprKind::kFilter:
      return ApplyFilter(As<ast::Filter>(expr), scope, nullptr);
    case ast::ExprKind::kTest: {
      const auto& node = As<ast::Test>(expr);
      MOESERVE_ASSIGN_OR_RETURN(Value operand, Eval(*node.operand, scope));
      MOESERVE_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(node.args, scope));
      if (node.fn == nullptr) {
        return RenderError(Cat("No test named '", node.name, "' found."));
      }
      MOESERVE_ASSIGN_OR_RETURN(bool result, node.fn(*this, operand, args));
      return Value::Bool(result);
    }
    case ast::ExprKind::kUnary: {
      const auto& node = As<ast::Unary>(expr);
      MOESERVE_ASSIGN_OR_RETURN(Value operand, Eval(*node.operand, scope));
      switch (node.op) {
        case ast::UnaryOp::kNot:
          return Value::Bool(!Truthy(operand));
        case ast::UnaryOp::kNeg:
          return Negate(operand);
        case ast::UnaryOp::kPos:
          return Positive(operand);
      }
      return RenderError("internal error: unknown unary operator");
    }
    case ast::ExprKind::kBinary: {
      const auto& node = As<ast::Binary>(expr);
      MOESERVE_ASSIGN_OR_RETURN(Value left, Eval(*node.left, scope));
      if (node.op == ast::BinaryOp::kAnd) {
        if (!Truthy(left)) return left;
        return Eval(*node.right, scope);
      }
      if (node.op == ast::BinaryOp::kOr) {
        if (Truthy(left)) return left;
        return Eval(*node.right, scope);
      }
      MOESERVE_ASSIGN_OR_RETURN(Value right, Eval(*node.right, scope));
      if (node.folded_left && left.is_number() &&
          (left.is_float() ? std::signbit(left.float_value()) : left.int_value() < 0)) {
        return RenderUnsupported("a negative constant as the base of ** (jinja2 renders -a ** b)");
      }
      return BinaryOperation(node.op, left, right);
    }
    case ast::ExprKind::kConcat: {
      std::string out;
      for (const ast::ExprPtr& part : As<ast::Concat>(expr).parts) {
        MOESERVE_ASSIGN_OR_RETURN(Value value, Eval(*part, scope));
        MOESERVE_RETURN_IF_ERROR(AppendStr(value, &out));
      }
      return Value::String(std::move(out));
    }
    case ast::ExprKind::kCompare: {
      const auto& node = As<ast::Compare>(expr);
      MOESERVE_ASSIGN_OR_RETURN(Value left, Eval(*node.first, scope));
      for (const auto& [op, operand] : node.rest) {
        MOESERVE_ASSIGN_OR_RETURN(Value right, Eval(*operand, scope));
        MOESERVE_ASSIGN_OR_RETURN(bool holds, CompareValues(op, left, right));
        if (!holds) return Value::Bool(false);
        left = std::move(right);
      }
      return Value::Bool(true);
    }
    case ast::ExprKind::kCondExpr: {
      const auto& node = As<ast::CondExpr>(expr);
      MOESERVE_ASSIGN_OR_RETURN(Value test, Eval(*node.test, scope));
      if (Truthy(test)) return Eval(*node.then_expr, scope);
      if (node.else_expr != nullptr) return Eval(*node.else_expr, scope);
      return Value::Undefined(Cat("the inline if-expression on line ", expr.loc.line,
                                  " evaluated to false and no else section was defined."));
    }
    case ast::ExprKind::kSlice:
    case ast::ExprKind::kNsRef:
      break;
  }
  return RenderError("internal error: expression cannot be evaluated here");
}

}  // namespace moeserve::jinja
