// The syntax tree of a parsed template: expressions and statements, as plain structs tagged
// with a kind, each carrying the source position that errors report. The tree is immutable
// after parsing and shared by all renders.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_AST_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_AST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer/jinja/builtins.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/value.h"

namespace moeserve::jinja::ast {

// ---- Expressions ---------------------------------------------------------------------------

enum class ExprKind {
  kLiteral,
  kName,
  kList,  // also tuples
  kDict,
  kGetAttr,
  kGetItem,
  kSlice,  // only as a GetItem index
  kCall,
  kFilter,
  kTest,
  kUnary,
  kBinary,
  kConcat,
  kCompare,
  kCondExpr,
  kNsRef,  // `ns.attr` as an assignment target
};

struct Expr {
  Expr(ExprKind k, Location l) : kind(k), loc(l) {}
  virtual ~Expr() = default;
  const ExprKind kind;
  const Location loc;
};
using ExprPtr = std::unique_ptr<Expr>;

struct Literal : Expr {
  Literal(Location l, Value v) : Expr(ExprKind::kLiteral, l), value(std::move(v)) {}
  Value value;
};

struct Name : Expr {
  Name(Location l, std::string n) : Expr(ExprKind::kName, l), name(std::move(n)) {}
  std::string name;
};

struct ListExpr : Expr {
  ListExpr(Location l, bool tuple) : Expr(ExprKind::kList, l), is_tuple(tuple) {}
  std::vector<ExprPtr> items;
  bool is_tuple;
};

struct DictExpr : Expr {
  explicit DictExpr(Location l) : Expr(ExprKind::kDict, l) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

struct GetAttr : Expr {
  GetAttr(Location l, ExprPtr o, std::string n)
      : Expr(ExprKind::kGetAttr, l), object(std::move(o)), name(std::move(n)) {}
  ExprPtr object;
  std::string name;
};

struct GetItem : Expr {
  GetItem(Location l, ExprPtr o, ExprPtr i)
      : Expr(ExprKind::kGetItem, l), object(std::move(o)), index(std::move(i)) {}
  ExprPtr object;
  ExprPtr index;
};

struct Slice : Expr {  // any bound may be null
  explicit Slice(Location l) : Expr(ExprKind::kSlice, l) {}
  ExprPtr start, stop, step;
};

struct Args {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct Call : Expr {
  Call(Location l, ExprPtr c) : Expr(ExprKind::kCall, l), callee(std::move(c)) {}
  ExprPtr callee;
  Args args;
};

// `operand | name(args)`. The operand is null for the filters of {% filter %} and
// {% set x | f %}...{% endset %} blocks, whose input is the rendered body.
struct Filter : Expr {
  Filter(Location l, ExprPtr o, std::string n, FilterFn f)
      : Expr(ExprKind::kFilter, l), operand(std::move(o)), name(std::move(n)), fn(f) {}
  ExprPtr operand;
  std::string name;
  FilterFn fn;
  Args args;
};

struct Test : Expr {  // `operand is name(args)`; `is not` is a Not around it
  Test(Location l, ExprPtr o, std::string n, TestFn f)
      : Expr(ExprKind::kTest, l), operand(std::move(o)), name(std::move(n)), fn(f) {}
  ExprPtr operand;
  std::string name;
  TestFn fn;
  Args args;
};

enum class UnaryOp { kNeg, kPos, kNot };

struct Unary : Expr {
  Unary(Location l, UnaryOp o, ExprPtr e)
      : Expr(ExprKind::kUnary, l), op(o), operand(std::move(e)) {}
  UnaryOp op;
  ExprPtr operand;
};

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kAnd, kOr };

struct Binary : Expr {
  Binary(Location l, BinaryOp o, ExprPtr a, ExprPtr b)
      : Expr(ExprKind::kBinary, l), op(o), left(std::move(a)), right(std::move(b)) {}
  BinaryOp op;
  ExprPtr left, right;
  // kPow only: jinja2 constant-folds this left operand and, when the right one is not
  // constant, emits a negative result unparenthesised, so -1 ** n means -(1 ** n) there.
  bool folded_left = false;
};

struct Concat : Expr {  // a ~ b ~ c
  explicit Concat(Location l) : Expr(ExprKind::kConcat, l) {}
  std::vector<ExprPtr> parts;
};

enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Compare : Expr {  // chained as in Python: a < b < c
  Compare(Location l, ExprPtr f) : Expr(ExprKind::kCompare, l), first(std::move(f)) {}
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
};

struct CondExpr : Expr {  // then_expr if test else else_expr; else_expr may be null
  CondExpr(Location l, ExprPtr t, ExprPtr a, ExprPtr b)
      : Expr(ExprKind::kCondExpr, l),
        test(std::move(t)),
        then_expr(std::move(a)),
        else_expr(std::move(b)) {}
  ExprPtr test, then_expr, else_expr;
};

struct NsRef : Expr {
  NsRef(Location l, std::string n, std::string a)
      : Expr(ExprKind::kNsRef, l), name(std::move(n)), attr(std::move(a)) {}
  std::string name, attr;
};

// ---- Statements ----------------------------------------------------------------------------

enum class StmtKind {
  kText,
  kPrint,
  kIf,
  kFor,
  kSet,
  kSetBlock,
  kMacro,
  kFilterBlock,
  kWith,
  kBreak,
  kContinue,
  kBlock,  // {% print %} or {% generation %}
};

struct Stmt {
  Stmt(StmtKind k, Location l) : kind(k), loc(l) {}
  virtual ~Stmt() = default;
  const StmtKind kind;
  const Location loc;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Text : Stmt {
  Text(Location l, std::string t) : Stmt(StmtKind::kText, l), text(std::move(t)) {}
  std::string text;
};

struct Print : Stmt {
  Print(Location l, ExprPtr e) : Stmt(StmtKind::kPrint, l), expr(std::move(e)) {}
  ExprPtr expr;
};

struct If : Stmt {
  explicit If(Location l) : Stmt(StmtKind::kIf, l) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, elif...
  Body else_body;
};

// Names a frame (loop iteration, macro call, block body) binds to Undefined when it starts,
// hiding outer values: what jinja2's static symbol analysis decides (scope_analysis.h).
using FrameLocals = std::vector<std::string>;

struct For : Stmt {
  explicit For(Location l) : Stmt(StmtKind::kFor, l) {}
  ExprPtr target;  // Name or tuple of names
  ExprPtr iter;
  ExprPtr filter;  // `for x in xs if cond`; may be null
  Body body;
  Body else_body;
  FrameLocals body_locals;
  FrameLocals else_locals;
};

struct Set : Stmt {
  Set(Location l, ExprPtr t, ExprPtr v)
      : Stmt(StmtKind::kSet, l), target(std::move(t)), value(std::move(v)) {}
  ExprPtr target;  // Name, tuple of names, or NsRef
  ExprPtr value;
};

struct SetBlock : Stmt {
  explicit SetBlock(Location l) : Stmt(StmtKind::kSetBlock, l) {}
  ExprPtr target;
  ExprPtr filter;  // may be null
  Body body;
  FrameLocals locals;
};

struct Macro : Stmt {
  explicit Macro(Location l) : Stmt(StmtKind::kMacro, l) {}
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  Body body;
  FrameLocals locals;
};

struct FilterBlock : Stmt {
  explicit FilterBlock(Location l) : Stmt(StmtKind::kFilterBlock, l) {}
  ExprPtr filter;
  Body body;
  FrameLocals locals;
};

struct With : Stmt {
  explicit With(Location l) : Stmt(StmtKind::kWith, l) {}
  std::vector<ExprPtr> targets;
  std::vector<ExprPtr> values;
  Body body;
  FrameLocals locals;
};

struct LoopControl : Stmt {  // kBreak or kContinue
  LoopControl(StmtKind k, Location l) : Stmt(k, l) {}
};

// Statements run in place: {% print a, b %} (same frame) or {% generation %} (own frame,
// as transformers implements it with a call block).
struct Block : Stmt {
  Block(Location l, bool own_frame) : Stmt(StmtKind::kBlock, l), scoped(own_frame) {}
  Body body;
  bool scoped;
  FrameLocals locals;
};

// A parsed template: the body and the root frame's locals.
struct Program {
  Body body;
  FrameLocals locals;
};

}  // namespace moeserve::jinja::ast

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_AST_H_
