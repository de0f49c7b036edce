#include "engine/tokenizer/jinja/scope_analysis.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/absl_strings.h"

namespace moeserve::jinja {
namespace {

// How a frame's local starts out (jinja2's VAR_LOAD_*).
enum class LoadKind { kParameter, kResolve, kAlias, kUndefined };

// One frame's symbol table, as jinja2's idtracking.Symbols.
class Symbols {
 public:
  explicit Symbols(const Symbols* parent) : parent_(parent) {}

  bool HasRef(const std::string& name) const {
    return refs_.contains(name) || (parent_ != nullptr && parent_->HasRef(name));
  }

  void Load(const std::string& name) {
    if (!HasRef(name)) refs_[name] = LoadKind::kResolve;
  }

  void Store(const std::string& name) {
    stores_.insert(name);
    if (refs_.contains(name)) return;
    refs_[name] =
        parent_ != nullptr && parent_->HasRef(name) ? LoadKind::kAlias : LoadKind::kUndefined;
  }

  void Parameter(const std::string& name) {
    stores_.insert(name);
    refs_[name] = LoadKind::kParameter;
  }

  // Merges the symbols of an if's branches: a name first set in a branch may stay unset,
  // so it starts as the outer value (alias) or the context's (resolve), never Undefined.
  void BranchUpdate(const std::vector<Symbols>& branches) {
    absl::flat_hash_set<std::string> new_stores;
    for (const Symbols& branch : branches) {
      for (const std::string& name : branch.stores_) {
        if (!stores_.contains(name)) new_stores.insert(name);
      }
    }
    for (const Symbols& branch : branches) {
      for (const auto& [name, load] : branch.refs_) refs_[name] = load;
      stores_.insert(branch.stores_.begin(), branch.stores_.end());
    }
    for (const std::string& name : new_stores) {
      refs_[name] =
          parent_ != nullptr && parent_->HasRef(name) ? LoadKind::kAlias : LoadKind::kResolve;
    }
  }

  ast::FrameLocals UndefinedNames() const {
    ast::FrameLocals names;
    for (const auto& [name, load] : refs_) {
      if (load == LoadKind::kUndefined) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  const Symbols* parent_;
  absl::flat_hash_map<std::string, LoadKind> refs_;
  absl::flat_hash_set<std::string> stores_;
};

template <typename T>
T& As(ast::Stmt& stmt) {
  return static_cast<T&>(stmt);
}
template <typename T>
const T& As(const ast::Expr& expr) {
  return static_cast<const T&>(expr);
}

// Visits the statements of one frame (jinja2's FrameSymbolVisitor): nested frames are only
// collected, to be analysed once this frame's symbols are complete.
class FrameVisitor {
 public:
  FrameVisitor(Symbols* symbols, std::vector<ast::Stmt*>* nested)
      : symbols_(symbols), nested_(nested) {}

  void VisitBody(const ast::Body& body) {
    for (const ast::StmtPtr& stmt : body) VisitStmt(*stmt);
  }

  void VisitExpr(const ast::Expr& expr) {
    switch (expr.kind) {
      case ast::ExprKind::kName:
        symbols_->Load(As<ast::Name>(expr).name);
        return;
      case ast::ExprKind::kLiteral:
      case ast::ExprKind::kNsRef:
        return;
      case ast::ExprKind::kList:
        for (const ast::ExprPtr& item : As<ast::ListExpr>(expr).items) VisitExpr(*item);
        return;
      case ast::ExprKind::kDict:
        for (const auto& [key, value] : As<ast::DictExpr>(expr).items) {
          VisitExpr(*key);
          VisitExpr(*value);
        }
        return;
      case ast::ExprKind::kGetAttr:
        VisitExpr(*As<ast::GetAttr>(expr).object);
        return;
      case ast::ExprKind::kGetItem:
        VisitExpr(*As<ast::GetItem>(expr).object);
        VisitExpr(*As<ast::GetItem>(expr).index);
        return;
      case ast::ExprKind::kSlice:
        for (const ast::ExprPtr* bound : {&As<ast::Slice>(expr).start, &As<ast::Slice>(expr).stop,
                                          &As<ast::Slice>(expr).step}) {
          if (*bound != nullptr) VisitExpr(**bound);
        }
        return;
      case ast::ExprKind::kCall:
        VisitExpr(*As<ast::Call>(expr).callee);
        VisitArgs(As<ast::Call>(expr).args);
        return;
      case ast::ExprKind::kFilter:
        if (As<ast::Filter>(expr).operand != nullptr) VisitExpr(*As<ast::Filter>(expr).operand);
        VisitArgs(As<ast::Filter>(expr).args);
        return;
      case ast::ExprKind::kTest:
        VisitExpr(*As<ast::Test>(expr).operand);
        VisitArgs(As<ast::Test>(expr).args);
        return;
      case ast::ExprKind::kUnary:
        VisitExpr(*As<ast::Unary>(expr).operand);
        return;
      case ast::ExprKind::kBinary:
        VisitExpr(*As<ast::Binary>(expr).left);
        VisitExpr(*As<ast::Binary>(expr).right);
        return;
      case ast::ExprKind::kConcat:
        for (const ast::ExprPtr& part : As<ast::Concat>(expr).parts) VisitExpr(*part);
        return;
      case ast::ExprKind::kCompare:
        VisitExpr(*As<ast::Compare>(expr).first);
        for (const auto& [op, operand] : As<ast::Compare>(expr).rest) VisitExpr(*operand);
        return;
      case ast::ExprKind::kCondExpr: {
        const auto& cond = As<ast::CondExpr>(expr);
        VisitExpr(*cond.test);
        VisitExpr(*cond.then_expr);
        if (cond.else_expr != nullptr) VisitExpr(*cond.else_expr);
        return;
      }
    }
  }

  void VisitTarget(const ast::Expr& target) {
    if (target.kind == ast::ExprKind::kName) {
      symbols_->Store(As<ast::Name>(target).name);
    } else if (target.kind == ast::ExprKind::kNsRef) {
      symbols_->Load(As<ast::NsRef>(target).name);
    } else if (target.kind == ast::ExprKind::kList) {
      for (const ast::ExprPtr& item : As<ast::ListExpr>(target).items) VisitTarget(*item);
    }
  }

 private:
  void VisitArgs(const ast::Args& args) {
    for (const ast::ExprPtr& arg : args.positional) VisitExpr(*arg);
    for (const auto& [name, arg] : args.keyword) VisitExpr(*arg);
  }

  void VisitStmt(ast::Stmt& stmt) {
    switch (stmt.kind) {
      case ast::StmtKind::kText:
      case ast::StmtKind::kBreak:
      case ast::StmtKind::kContinue:
        return;
      case ast::StmtKind::kPrint:
        VisitExpr(*As<ast::Print>(stmt).expr);
        return;
      case ast::StmtKind::kIf:
        VisitIf(As<ast::If>(stmt), 0);
        return;
      case ast::StmtKind::kFor:
        VisitExpr(*As<ast::For>(stmt).iter);
        nested_->push_back(&stmt);
        return;
      case ast::StmtKind::kSet:
        VisitExpr(*As<ast::Set>(stmt).value);
        VisitTarget(*As<ast::Set>(stmt).target);
        return;
      case ast::StmtKind::kSetBlock:
        VisitTarget(*As<ast::SetBlock>(stmt).target);
        nested_->push_back(&stmt);
        return;
      case ast::StmtKind::kMacro:
        symbols_->Store(As<ast::Macro>(stmt).name);
        nested_->push_back(&stmt);
        return;
      case ast::StmtKind::kFilterBlock:
        VisitExpr(*As<ast::FilterBlock>(stmt).filter);
        nested_->push_back(&stmt);
        return;
      case ast::StmtKind::kWith:
        for (const ast::ExprPtr& value : As<ast::With>(stmt).values) VisitExpr(*value);
        nested_->push_back(&stmt);
        return;
      case ast::StmtKind::kBlock:
        if (As<ast::Block>(stmt).scoped) {
          nested_->push_back(&stmt);
        } else {
          VisitBody(As<ast::Block>(stmt).body);
        }
        return;
    }
  }

  // jinja2 keeps elifs as a list of If nodes inside the first If: branches are the body,
  // the elif chain (visited as nested ifs) and the else body.
  void VisitIf(ast::If& node, size_t branch) {
    VisitExpr(*node.branches[branch].first);
    std::vector<Symbols> branches;
    Symbols* const original = symbols_;
    auto visit_branch = [&](auto&& visit) {
      branches.push_back(*original);
      symbols_ = &branches.back();
      visit();
      symbols_ = original;
    };
    // Reserve so that pointers into `branches` stay valid while a branch is visited.
    branches.reserve(3);
    visit_branch([&] { VisitBody(node.branches[branch].second); });
    if (branch == 0) {
      visit_branch([&] {
        for (size_t elif = 1; elif < node.branches.size(); ++elif) VisitIf(node, elif);
      });
      visit_branch([&] { VisitBody(node.else_body); });
    } else {
      visit_branch([] {});
      visit_branch([] {});
    }
    symbols_->BranchUpdate(branches);
  }

  Symbols* symbols_;
  std::vector<ast::Stmt*>* nested_;
};

void AnalyzeFrame(const ast::Body& body, const std::vector<const ast::Expr*>& params,
                  const Symbols* parent, ast::FrameLocals* locals,
                  const std::vector<const ast::Expr*>& loads = {});

void AnalyzeNested(std::vector<ast::Stmt*> nested, const Symbols* parent) {
  for (ast::Stmt* stmt : nested) {
    switch (stmt->kind) {
      case ast::StmtKind::kFor: {
        auto& node = As<ast::For>(*stmt);
        AnalyzeFrame(node.body, {node.target.get()}, parent, &node.body_locals);
        AnalyzeFrame(node.else_body, {}, parent, &node.else_locals);
        break;
      }
      case ast::StmtKind::kMacro: {
        auto& node = As<ast::Macro>(*stmt);
        std::vector<ast::ExprPtr> params;
        std::vector<const ast::Expr*> param_ptrs;
        for (const std::string& name : node.params) {
          params.push_back(std::make_unique<ast::Name>(node.loc, name));
          param_ptrs.push_back(params.back().get());
        }
        std::vector<const ast::Expr*> defaults;
        for (const ast::ExprPtr& value : node.defaults) defaults.push_back(value.get());
        AnalyzeFrame(node.body, param_ptrs, parent, &node.locals, defaults);
        break;
      }
      case ast::StmtKind::kWith: {
        auto& node = As<ast::With>(*stmt);
        std::vector<const ast::Expr*> targets;
        for (const ast::ExprPtr& target : node.targets) targets.push_back(target.get());
        AnalyzeFrame(node.body, targets, parent, &node.locals);
        break;
      }
      case ast::StmtKind::kFilterBlock: {
        auto& node = As<ast::FilterBlock>(*stmt);
        AnalyzeFrame(node.body, {}, parent, &node.locals, {node.filter.get()});
        break;
      }
      case ast::StmtKind::kSetBlock: {
        auto& node = As<ast::SetBlock>(*stmt);
        AnalyzeFrame(node.body, {}, parent, &node.locals);
        break;
      }
      case ast::StmtKind::kBlock: {
        auto& node = As<ast::Block>(*stmt);
        AnalyzeFrame(node.body, {}, parent, &node.locals);
        break;
      }
      default:
        break;
    }
  }
}

void DeclareParameters(const ast::Expr& target, Symbols* symbols) {
  if (target.kind == ast::ExprKind::kName) {
    symbols->Parameter(As<ast::Name>(target).name);
  } else if (target.kind == ast::ExprKind::kList) {
    for (const ast::ExprPtr& item : As<ast::ListExpr>(target).items) {
      DeclareParameters(*item, symbols);
    }
  }
}

void AnalyzeFrame(const ast::Body& body, const std::vector<const ast::Expr*>& params,
                  const Symbols* parent, ast::FrameLocals* locals,
                  const std::vector<const ast::Expr*>& loads) {
  Symbols symbols(parent);
  std::vector<ast::Stmt*> nested;
  FrameVisitor visitor(&symbols, &nested);
  for (const ast::Expr* param : params) DeclareParameters(*param, &symbols);
  for (const ast::Expr* load : loads) visitor.VisitExpr(*load);
  visitor.VisitBody(body);
  *locals = symbols.UndefinedNames();
  AnalyzeNested(std::move(nested), &symbols);
}

}  // namespace

void AnalyzeScopes(ast::Program* program) {
  AnalyzeFrame(program->body, {}, nullptr, &program->locals);
}

}  // namespace moeserve::jinja
