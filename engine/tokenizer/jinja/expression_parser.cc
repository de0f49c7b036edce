#include "engine/tokenizer/jinja/expression_parser.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "engine/tokenizer/jinja/builtins.h"

namespace moeserve::jinja {

using ast::ExprPtr;

std::string ExpressionParser::Describe(const Token& token) {
  switch (token.type) {
    case TokenType::kName:
    case TokenType::kOperator:
      return token.text;
    case TokenType::kData:
      return "template data / text";
    case TokenType::kVariableBegin:
      return "begin of print statement";
    case TokenType::kVariableEnd:
      return "end of print statement";
    case TokenType::kBlockBegin:
      return "begin of statement block";
    case TokenType::kBlockEnd:
      return "end of statement block";
    case TokenType::kString:
      return "string";
    case TokenType::kInteger:
      return "integer";
    case TokenType::kFloat:
      return "float";
    case TokenType::kEof:
      return "end of template";
  }
  return "token";
}

bool ExpressionParser::IsTupleEnd(const TupleMode& mode) const {
  if (cur().type == TokenType::kVariableEnd || cur().type == TokenType::kBlockEnd || IsOp(")")) {
    return true;
  }
  return !mode.extra_end.empty() && IsName(mode.extra_end);
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseTuple(const TupleMode& mode) {
  const Location loc = cur().loc;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) MOESERVE_RETURN_IF_ERROR(ExpectOp(","));
    if (IsTupleEnd(mode)) break;
    if (mode.simplified) {
      MOESERVE_ASSIGN_OR_RETURN(ExprPtr item, ParsePrimary(mode.with_namespace));
      items.push_back(std::move(item));
    } else {
      MOESERVE_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(mode.with_condexpr));
      items.push_back(std::move(item));
    }
    if (!IsOp(",")) break;
    is_tuple = true;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items.front());
    if (!mode.explicit_parens) {
      return Fail(Cat("Expected an expression, got '", Describe(cur()), "'"));
    }
  }
  auto tuple = std::make_unique<ast::ListExpr>(loc, true);
  tuple->items = std::move(items);
  return tuple;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseExpression(bool with_condexpr) {
  DepthGuard guard(this);
  MOESERVE_RETURN_IF_ERROR(guard.Check());
  if (!with_condexpr) return ParseOr();
  const Location loc = cur().loc;
  const size_t unknown_mark = unknown_.size();
  MOESERVE_ASSIGN_OR_RETURN(ExprPtr expr, ParseOr());
  ChainGuard chain(this);
  while (IsName("if")) {
    MOESERVE_RETURN_IF_ERROR(chain.Step());
    unknown_.resize(unknown_mark);  // the then-branch turned out to be conditional code
    Saved<bool> soft(&soft_, true);
    Advance();
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr test, ParseOr());
    ExprPtr otherwise;
    if (SkipName("else")) {
      MOESERVE_ASSIGN_OR_RETURN(otherwise, ParseExpression(true));
    }
    expr = std::make_unique<ast::CondExpr>(loc, std::move(test), std::move(expr),
                                           std::move(otherwise));
  }
  return expr;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseOr() {
  MOESERVE_ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
  ChainGuard chain(this);
  while (IsName("or")) {
    MOESERVE_RETURN_IF_ERROR(chain.Step());
    const Location loc = Advance().loc;
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
    left =
        std::make_unique<ast::Binary>(loc, ast::BinaryOp::kOr, std::move(left), std::move(right));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseAnd() {
  MOESERVE_ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
  ChainGuard chain(this);
  while (IsName("and")) {
    MOESERVE_RETURN_IF_ERROR(chain.Step());
    const Location loc = Advance().loc;
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
    left =
        std::make_unique<ast::Binary>(loc, ast::BinaryOp::kAnd, std::move(left), std::move(right));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseNot() {
  if (IsName("not")) {
    DepthGuard guard(this);
    MOESERVE_RETURN_IF_ERROR(guard.Check());
    const Location loc = Advance().loc;
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
    return std::make_unique<ast::Unary>(loc, ast::UnaryOp::kNot, std::move(operand));
  }
  return ParseCompare();
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCompare() {
  const Location loc = cur().loc;
  MOESERVE_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
  std::vector<std::pair<ast::CompareOp, ExprPtr>> rest;
  while (true) {
    ast::CompareOp op;
    if (IsOp("==")) {
      op = ast::CompareOp::kEq;
    } else if (IsOp("!=")) {
      op = ast::CompareOp::kNe;
    } else if (IsOp("<")) {
      op = ast::CompareOp::kLt;
    } else if (IsOp("<=")) {
      op = ast::CompareOp::kLe;
    } else if (IsOp(">")) {
      op = ast::CompareOp::kGt;
    } else if (IsOp(">=")) {
      op = ast::CompareOp::kGe;
    } else if (IsName("in")) {
      op = ast::CompareOp::kIn;
    } else if (IsName("not") && Peek().type == TokenType::kName && Peek().text == "in") {
      Advance();
      op = ast::CompareOp::kNotIn;
    } else {
      break;
    }
    Advance();
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr operand, ParseMath1());
    rest.emplace_back(op, std::move(operand));
  }
  if (rest.empty()) return first;
  auto node = std::make_unique<ast::Compare>(loc, std::move(first));
  node->rest = std::move(rest);
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseMath1() {
  MOESERVE_ASSIGN_OR_RETURN(ExprPtr left, ParseConcat());
  ChainGuard chain(this);
  while (IsOp("+") || IsOp("-")) {
    MOESERVE_RETURN_IF_ERROR(chain.Step());
    const Token& op = Advance();
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr right, ParseConcat());
    left = std::make_unique<ast::Binary>(op.loc,
                                         op.text == "+" ? ast::BinaryOp::kAdd : ast::BinaryOp::kSub,
                                         std::move(left), std::move(right));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseConcat() {
  const Location loc = cur().loc;
  MOESERVE_ASSIGN_OR_RETURN(ExprPtr first, ParseMath2());
  if (!IsOp("~")) return first;
  auto node = std::make_unique<ast::Concat>(loc);
  node->parts.push_back(std::move(first));
  while (SkipOp("~")) {
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr part, ParseMath2());
    node->parts.push_back(std::move(part));
  }
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseMath2() {
  MOESERVE_ASSIGN_OR_RETURN(ExprPtr left, ParsePow());
  ChainGuard chain(this);
  while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
    MOESERVE_RETURN_IF_ERROR(chain.Step());
    const Token& op = Advance();
    const ast::BinaryOp kind = op.text == "*"    ? ast::BinaryOp::kMul
                               : op.text == "/"  ? ast::BinaryOp::kDiv
                               : op.text == "//" ? ast::BinaryOp::kFloorDiv
                                                 : ast::BinaryOp::kMod;
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr right, ParsePow());
    left = std::make_unique<ast::Binary>(op.loc, kind, std::move(left), std::move(right));
  }
  return left;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePow() {
  MOESERVE_ASSIGN_OR_RETURN(ExprPtr left, ParseUnary(true));
  ChainGuard chain(this);
  while (IsOp("**")) {
    MOESERVE_RETURN_IF_ERROR(chain.Step());
    const Location loc = Advance().loc;
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr right, ParseUnary(true));
    const bool folded_left = MaybeConstant(*left) && !MaybeConstant(*right);
    auto pow =
        std::make_unique<ast::Binary>(loc, ast::BinaryOp::kPow, std::move(left), std::move(right));
    pow->folded_left = folded_left;
    left = std::move(pow);
  }
  return left;
}

// Whether jinja2's optimizer may fold `expr` to a constant: no variables or calls in it.
bool ExpressionParser::MaybeConstant(const ast::Expr& expr) {
  switch (expr.kind) {
    case ast::ExprKind::kLiteral:
      return true;
    case ast::ExprKind::kName:
    case ast::ExprKind::kCall:
    case ast::ExprKind::kNsRef:
      return false;
    case ast::ExprKind::kList:
      for (const ExprPtr& item : static_cast<const ast::ListExpr&>(expr).items) {
        if (!MaybeConstant(*item)) return false;
      }
      return true;
    case ast::ExprKind::kUnary:
      return MaybeConstant(*static_cast<const ast::Unary&>(expr).operand);
    case ast::ExprKind::kBinary: {
      const auto& binary = static_cast<const ast::Binary&>(expr);
      return MaybeConstant(*binary.left) && MaybeConstant(*binary.right);
    }
    case ast::ExprKind::kFilter: {
      const auto& filter = static_cast<const ast::Filter&>(expr);
      return filter.operand != nullptr && MaybeConstant(*filter.operand) &&
             filter.args.positional.empty() && filter.args.keyword.empty();
    }
    default:
      return false;  // conservatively "not constant" keeps the plain Python semantics
  }
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseUnary(bool with_filter) {
  DepthGuard guard(this);
  MOESERVE_RETURN_IF_ERROR(guard.Check());
  ExprPtr node;
  if (IsOp("-") || IsOp("+")) {
    const Token& op = Advance();
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(false));
    node = std::make_unique<ast::Unary>(
        op.loc, op.text == "-" ? ast::UnaryOp::kNeg : ast::UnaryOp::kPos, std::move(operand));
  } else {
    MOESERVE_ASSIGN_OR_RETURN(node, ParsePrimary(false));
  }
  MOESERVE_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
  if (with_filter) {
    MOESERVE_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
  }
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePrimary(bool with_namespace) {
  const Token& token = cur();
  const Location loc = token.loc;
  switch (token.type) {
    case TokenType::kName: {
      const std::string name = Advance().text;
      if (name == "true" || name == "True") return Literal(loc, Value::Bool(true));
      if (name == "false" || name == "False") return Literal(loc, Value::Bool(false));
      if (name == "none" || name == "None") return Literal(loc, Value::None());
      if (with_namespace && IsOp(".")) {
        Advance();
        MOESERVE_ASSIGN_OR_RETURN(std::string attr, ExpectAnyName());
        return ExprPtr(std::make_unique<ast::NsRef>(loc, name, std::move(attr)));
      }
      if (IsUnsupportedGlobal(name)) return Unsupported(loc, Cat("global '", name, "'"));
      if (in_macro_ && (name == "caller" || name == "varargs" || name == "kwargs")) {
        return Unsupported(loc, Cat("'", name, "' in a macro"));
      }
      return ExprPtr(std::make_unique<ast::Name>(loc, name));
    }
    case TokenType::kString: {
      std::string value;
      while (cur().type == TokenType::kString) value += Advance().text;
      return Literal(loc, Value::String(std::move(value)));
    }
    case TokenType::kInteger:
      return Literal(loc, Value::Int(Advance().int_value));
    case TokenType::kFloat:
      return Literal(loc, Value::Float(Advance().float_value));
    case TokenType::kOperator:
      if (IsOp("(")) {
        Advance();
        TupleMode mode;
        mode.explicit_parens = true;
        MOESERVE_ASSIGN_OR_RETURN(ExprPtr inner, ParseTuple(mode));
        MOESERVE_RETURN_IF_ERROR(ExpectOp(")"));
        return inner;
      }
      if (IsOp("[")) return ParseList();
      if (IsOp("{")) return ParseDict();
      break;
    default:
      break;
  }
  return Fail(Cat("unexpected '", Describe(token), "'"));
}

ExprPtr ExpressionParser::Literal(Location loc, Value value) {
  return std::make_unique<ast::Literal>(loc, std::move(value));
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseList() {
  auto node = std::make_unique<ast::ListExpr>(Advance().loc, false);
  while (!IsOp("]")) {
    if (!node->items.empty()) MOESERVE_RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp("]")) break;
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
    node->items.push_back(std::move(item));
  }
  MOESERVE_RETURN_IF_ERROR(ExpectOp("]"));
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseDict() {
  auto node = std::make_unique<ast::DictExpr>(Advance().loc);
  while (!IsOp("}")) {
    if (!node->items.empty()) MOESERVE_RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp("}")) break;
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
    MOESERVE_RETURN_IF_ERROR(ExpectOp(":"));
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
    node->items.emplace_back(std::move(key), std::move(value));
  }
  MOESERVE_RETURN_IF_ERROR(ExpectOp("}"));
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParsePostfix(ExprPtr node) {
  ChainGuard chain(this);
  while (true) {
    if (IsOp(".") || IsOp("[") || IsOp("(")) MOESERVE_RETURN_IF_ERROR(chain.Step());
    if (IsOp(".") || IsOp("[")) {
      MOESERVE_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node)));
    } else if (IsOp("(")) {
      MOESERVE_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseFilterExpr(ExprPtr node) {
  ChainGuard chain(this);
  while (true) {
    if (IsOp("|") || IsName("is") || IsOp("(")) MOESERVE_RETURN_IF_ERROR(chain.Step());
    if (IsOp("|")) {
      MOESERVE_ASSIGN_OR_RETURN(node, ParseFilter(std::move(node), false));
    } else if (IsName("is")) {
      MOESERVE_ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
    } else if (IsOp("(")) {
      MOESERVE_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseSubscript(ExprPtr node) {
  const Token& token = Advance();
  const Location loc = token.loc;
  if (token.text == ".") {
    const Token& attr = Advance();
    if (attr.type == TokenType::kName) {
      return ExprPtr(std::make_unique<ast::GetAttr>(loc, std::move(node), attr.text));
    }
    if (attr.type != TokenType::kInteger) {
      return SyntaxError(attr.loc, "expected name or number");
    }
    return ExprPtr(std::make_unique<ast::GetItem>(loc, std::move(node),
                                                  Literal(attr.loc, Value::Int(attr.int_value))));
  }
  std::vector<ExprPtr> args;
  while (!IsOp("]")) {
    if (!args.empty()) MOESERVE_RETURN_IF_ERROR(ExpectOp(","));
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr arg, ParseSubscribed());
    args.push_back(std::move(arg));
  }
  MOESERVE_RETURN_IF_ERROR(ExpectOp("]"));
  ExprPtr index;
  if (args.size() == 1) {
    index = std::move(args.front());
  } else {
    auto tuple = std::make_unique<ast::ListExpr>(loc, true);
    tuple->items = std::move(args);
    index = std::move(tuple);
  }
  return ExprPtr(std::make_unique<ast::GetItem>(loc, std::move(node), std::move(index)));
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseSubscribed() {
  const Location loc = cur().loc;
  ExprPtr start;
  if (!SkipOp(":")) {
    MOESERVE_ASSIGN_OR_RETURN(start, ParseExpression(true));
    if (!SkipOp(":")) return start;
  }
  auto slice = std::make_unique<ast::Slice>(loc);
  slice->start = std::move(start);
  if (!IsOp(":") && !IsOp("]") && !IsOp(",")) {
    MOESERVE_ASSIGN_OR_RETURN(slice->stop, ParseExpression(true));
  }
  if (SkipOp(":") && !IsOp("]") && !IsOp(",")) {
    MOESERVE_ASSIGN_OR_RETURN(slice->step, ParseExpression(true));
  }
  return ExprPtr(std::move(slice));
}

absl::StatusOr<ast::Args> ExpressionParser::ParseCallArgs() {
  const Location loc = cur().loc;
  MOESERVE_RETURN_IF_ERROR(ExpectOp("("));
  ast::Args args;
  bool require_comma = false;
  while (!IsOp(")")) {
    if (require_comma) {
      MOESERVE_RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp(")")) break;
    }
    if (IsOp("*") || IsOp("**")) return Unsupported(cur().loc, "*args / **kwargs in a call");
    if (cur().type == TokenType::kName && Peek().type == TokenType::kOperator &&
        Peek().text == "=") {
      std::string key = Advance().text;
      Advance();
      MOESERVE_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      args.keyword.emplace_back(std::move(key), std::move(value));
    } else {
      if (!args.keyword.empty()) {
        return SyntaxError(loc, "invalid syntax for function call expression");
      }
      MOESERVE_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      args.positional.push_back(std::move(value));
    }
    require_comma = true;
  }
  MOESERVE_RETURN_IF_ERROR(ExpectOp(")"));
  return args;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseCall(ExprPtr callee) {
  const Location loc = cur().loc;
  if (callee->kind == ast::ExprKind::kGetAttr) {
    const auto& attr = static_cast<const ast::GetAttr&>(*callee);
    if (IsUnsupportedMethod(attr.name)) {
      return Unsupported(callee->loc, Cat("method '", attr.name, "()'"));
    }
  }
  auto node = std::make_unique<ast::Call>(loc, std::move(callee));
  MOESERVE_ASSIGN_OR_RETURN(node->args, ParseCallArgs());
  return ExprPtr(std::move(node));
}

absl::StatusOr<std::string> ExpressionParser::ParseDottedName() {
  MOESERVE_ASSIGN_OR_RETURN(std::string name, ExpectAnyName());
  while (SkipOp(".")) {
    MOESERVE_ASSIGN_OR_RETURN(std::string part, ExpectAnyName());
    CatAppend(&name, ".", part);
  }
  return name;
}

// `node | f(args) | g ...`; with `start_inline` the first filter has no leading pipe
// ({% filter f %}). Returns `node` unchanged when there is no filter.
absl::StatusOr<ExprPtr> ExpressionParser::ParseFilter(ExprPtr node, bool start_inline) {
  ChainGuard chain(this);
  while (IsOp("|") || start_inline) {
    MOESERVE_RETURN_IF_ERROR(chain.Step());
    if (!start_inline) Advance();
    start_inline = false;
    const Location loc = cur().loc;
    MOESERVE_ASSIGN_OR_RETURN(std::string name, ParseDottedName());
    const FilterFn fn = FindFilter(name);
    if (fn == nullptr) {
      if (IsJinjaFilter(name)) return Unsupported(loc, Cat("filter '", name, "'"));
      // jinja2 reports unknown filters at compile time, except in conditional code.
      if (!soft_) unknown_.push_back(SyntaxError(loc, Cat("No filter named '", name, "'.")));
    }
    auto filter = std::make_unique<ast::Filter>(loc, std::move(node), std::move(name), fn);
    if (IsOp("(")) {
      MOESERVE_ASSIGN_OR_RETURN(filter->args, ParseCallArgs());
    }
    node = std::move(filter);
  }
  return node;
}

absl::StatusOr<ExprPtr> ExpressionParser::ParseTest(ExprPtr node) {
  const Location loc = Advance().loc;
  const bool negated = SkipName("not");
  const Location name_loc = cur().loc;
  MOESERVE_ASSIGN_OR_RETURN(std::string name, ParseDottedName());
  const TestFn fn = FindTest(name);
  if (fn == nullptr) {
    if (IsJinjaTest(name)) return Unsupported(name_loc, Cat("test '", name, "'"));
    if (!soft_) unknown_.push_back(SyntaxError(name_loc, Cat("No test named '", name, "'.")));
  }
  auto test = std::make_unique<ast::Test>(loc, std::move(node), std::move(name), fn);
  if (IsOp("(")) {
    MOESERVE_ASSIGN_OR_RETURN(test->args, ParseCallArgs());
  } else if ((cur().type == TokenType::kName || cur().type == TokenType::kString ||
              cur().type == TokenType::kInteger || cur().type == TokenType::kFloat || IsOp("[") ||
              IsOp("{")) &&
             !IsName("else") && !IsName("or") && !IsName("and")) {
    if (IsName("is")) return Fail("You cannot chain multiple tests with is");
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary(false));
    MOESERVE_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
    test->args.positional.push_back(std::move(arg));
  }
  if (!negated) return ExprPtr(std::move(test));
  return ExprPtr(std::make_unique<ast::Unary>(loc, ast::UnaryOp::kNot, std::move(test)));
}

}  // namespace moeserve::jinja
