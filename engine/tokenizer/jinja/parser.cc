#include "engine/tokenizer/jinja/parser.h"

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/expression_parser.h"

namespace moeserve::jinja {
namespace {

using ast::Body;
using ast::ExprPtr;
using ast::StmtPtr;

// The statement half of the parser (jinja2's Parser.subparse and parse_* for tags).
class Parser : public ExpressionParser {
 public:
  using ExpressionParser::ExpressionParser;

  absl::StatusOr<Body> ParseTemplate() {
    MOESERVE_ASSIGN_OR_RETURN(Body body, SubParse({}));
    if (!unknown_.empty()) return unknown_.front();
    return body;
  }

 private:
  // Parses until EOF or a {% tag %} named in `end_tags`; then the current token is that name.
  absl::StatusOr<Body> SubParse(std::initializer_list<std::string_view> end_tags) {
    Body body;
    while (cur().type != TokenType::kEof) {
      const Token& token = cur();
      if (token.type == TokenType::kData) {
        body.push_back(std::make_unique<ast::Text>(token.loc, token.text));
        Advance();
      } else if (token.type == TokenType::kVariableBegin) {
        Advance();
        const Location loc = cur().loc;  // printing errors point at the expression
        MOESERVE_ASSIGN_OR_RETURN(ExprPtr expr, ParseTuple(TupleMode{}));
        MOESERVE_RETURN_IF_ERROR(Expect(TokenType::kVariableEnd, "end of print statement"));
        body.push_back(std::make_unique<ast::Print>(loc, std::move(expr)));
      } else if (token.type == TokenType::kBlockBegin) {
        Advance();
        for (std::string_view end : end_tags) {
          if (IsName(end)) return body;
        }
        MOESERVE_ASSIGN_OR_RETURN(StmtPtr stmt, ParseStatement());
        body.push_back(std::move(stmt));
        MOESERVE_RETURN_IF_ERROR(Expect(TokenType::kBlockEnd, "end of statement block"));
      } else {
        return Fail(Cat("unexpected '", Describe(token), "'"));
      }
    }
    if (end_tags.size() > 0) {
      std::vector<std::string> names;
      for (std::string_view end : end_tags) names.push_back(Cat("'", end, "'"));
      return Fail(Cat("Unexpected end of template. Jinja was looking for the following ",
                      "tags: ", absl::StrJoin(names, " or "), "."));
    }
    return body;
  }

  // The body of a block statement, up to one of `end_tags` (left current unless `drop_end`).
  absl::StatusOr<Body> ParseStatements(std::initializer_list<std::string_view> end_tags,
                                       bool drop_end) {
    SkipOp(":");
    MOESERVE_RETURN_IF_ERROR(Expect(TokenType::kBlockEnd, "end of statement block"));
    MOESERVE_ASSIGN_OR_RETURN(Body body, SubParse(end_tags));
    if (drop_end) Advance();
    return body;
  }

  absl::StatusOr<StmtPtr> ParseStatement() {
    DepthGuard guard(this);
    MOESERVE_RETURN_IF_ERROR(guard.Check());
    if (cur().type != TokenType::kName) return Fail("tag name expected");
    const std::string tag = cur().text;
    const Location loc = cur().loc;
    if (tag == "for") return ParseFor();
    if (tag == "if") return ParseIf();
    if (tag == "set") return ParseSet();
    if (tag == "macro") return ParseMacro();
    if (tag == "filter") return ParseFilterBlock();
    if (tag == "with") return ParseWith();
    if (tag == "print") return ParsePrint();
    if (tag == "generation") {  // transformers' assistant-mask extension: renders its body
      Advance();
      auto block = std::make_unique<ast::Block>(loc, /*own_frame=*/true);
      Saved<int> loops(&loop_depth_, 0);  // the body is a macro (a call block) in jinja2
      MOESERVE_ASSIGN_OR_RETURN(block->body, ParseStatements({"endgeneration"}, true));
      return block;
    }
    if (tag == "break" || tag == "continue") {
      Advance();
      if (loop_depth_ == 0) return SyntaxError(loc, Cat("'", tag, "' outside loop"));
      return std::make_unique<ast::LoopControl>(
          tag == "break" ? ast::StmtKind::kBreak : ast::StmtKind::kContinue, loc);
    }
    if (tag == "block" || tag == "extends" || tag == "include" || tag == "import" ||
        tag == "from" || tag == "call" || tag == "autoescape") {
      return Unsupported(loc, Cat("tag '", tag, "'"));
    }
    return Fail(Cat("Encountered unknown tag '", tag, "'."));
  }

  absl::StatusOr<StmtPtr> ParseFor() {
    auto node = std::make_unique<ast::For>(Advance().loc);
    MOESERVE_ASSIGN_OR_RETURN(node->target, ParseAssignTarget(/*with_namespace=*/false, "in"));
    MOESERVE_RETURN_IF_ERROR(ExpectName("in"));
    TupleMode iter_mode;
    iter_mode.with_condexpr = false;
    iter_mode.extra_end = "recursive";
    MOESERVE_ASSIGN_OR_RETURN(node->iter, ParseTuple(iter_mode));
    if (SkipName("if")) {
      MOESERVE_ASSIGN_OR_RETURN(node->filter, ParseExpression(true));
    }
    if (IsName("recursive")) return Unsupported(cur().loc, "recursive for loop");
    {
      Saved<int> loops(&loop_depth_, loop_depth_ + 1);
      Saved<bool> soft(&soft_, false);
      MOESERVE_ASSIGN_OR_RETURN(node->body, ParseStatements({"endfor", "else"}, false));
    }
    if (Advance().text == "else") {
      MOESERVE_ASSIGN_OR_RETURN(node->else_body, ParseStatements({"endfor"}, true));
    }
    return node;
  }

  absl::StatusOr<StmtPtr> ParseIf() {
    auto node = std::make_unique<ast::If>(Advance().loc);
    Saved<bool> soft(&soft_, true);
    while (true) {
      TupleMode test_mode;
      test_mode.with_condexpr = false;
      MOESERVE_ASSIGN_OR_RETURN(ExprPtr test, ParseTuple(test_mode));
      MOESERVE_ASSIGN_OR_RETURN(Body body, ParseStatements({"elif", "else", "endif"}, false));
      node->branches.emplace_back(std::move(test), std::move(body));
      const std::string next = Advance().text;
      if (next == "elif") continue;
      if (next == "else") {
        MOESERVE_ASSIGN_OR_RETURN(node->else_body, ParseStatements({"endif"}, true));
      }
      break;
    }
    return node;
  }

  absl::StatusOr<StmtPtr> ParseSet() {
    const Location loc = Advance().loc;
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr target, ParseAssignTarget(/*with_namespace=*/true, ""));
    if (SkipOp("=")) {
      MOESERVE_ASSIGN_OR_RETURN(ExprPtr value, ParseTuple(TupleMode{}));
      return std::make_unique<ast::Set>(loc, std::move(target), std::move(value));
    }
    auto node = std::make_unique<ast::SetBlock>(loc);
    node->target = std::move(target);
    MOESERVE_ASSIGN_OR_RETURN(node->filter, ParseFilter(nullptr, false));
    MOESERVE_ASSIGN_OR_RETURN(node->body, ParseStatements({"endset"}, true));
    return node;
  }

  absl::StatusOr<StmtPtr> ParseMacro() {
    auto node = std::make_unique<ast::Macro>(Advance().loc);
    MOESERVE_ASSIGN_OR_RETURN(node->name, ExpectAnyName());
    MOESERVE_RETURN_IF_ERROR(ExpectOp("("));
    while (!IsOp(")")) {
      if (!node->params.empty()) MOESERVE_RETURN_IF_ERROR(ExpectOp(","));
      MOESERVE_ASSIGN_OR_RETURN(std::string param, ExpectAnyName());
      if (SkipOp("=")) {
        MOESERVE_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        node->defaults.push_back(std::move(value));
      } else if (!node->defaults.empty()) {
        return Fail("non-default argument follows default argument");
      }
      node->params.push_back(std::move(param));
    }
    MOESERVE_RETURN_IF_ERROR(ExpectOp(")"));
    Saved<int> loops(&loop_depth_, 0);
    Saved<bool> soft(&soft_, false);
    Saved<bool> in_macro(&in_macro_, true);
    MOESERVE_ASSIGN_OR_RETURN(node->body, ParseStatements({"endmacro"}, true));
    return node;
  }

  absl::StatusOr<StmtPtr> ParseFilterBlock() {
    auto node = std::make_unique<ast::FilterBlock>(Advance().loc);
    MOESERVE_ASSIGN_OR_RETURN(node->filter, ParseFilter(nullptr, true));
    MOESERVE_ASSIGN_OR_RETURN(node->body, ParseStatements({"endfilter"}, true));
    return node;
  }

  absl::StatusOr<StmtPtr> ParseWith() {
    auto node = std::make_unique<ast::With>(Advance().loc);
    while (cur().type != TokenType::kBlockEnd) {
      if (!node->targets.empty()) MOESERVE_RETURN_IF_ERROR(ExpectOp(","));
      MOESERVE_ASSIGN_OR_RETURN(ExprPtr target, ParseAssignTarget(false, ""));
      MOESERVE_RETURN_IF_ERROR(ExpectOp("="));
      MOESERVE_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      node->targets.push_back(std::move(target));
      node->values.push_back(std::move(value));
    }
    Saved<bool> soft(&soft_, false);
    MOESERVE_ASSIGN_OR_RETURN(node->body, ParseStatements({"endwith"}, true));
    return node;
  }

  absl::StatusOr<StmtPtr> ParsePrint() {
    auto node = std::make_unique<ast::Block>(Advance().loc, /*own_frame=*/false);
    while (cur().type != TokenType::kBlockEnd) {
      if (!node->body.empty()) MOESERVE_RETURN_IF_ERROR(ExpectOp(","));
      const Location loc = cur().loc;
      MOESERVE_ASSIGN_OR_RETURN(ExprPtr expr, ParseExpression(true));
      node->body.push_back(std::make_unique<ast::Print>(loc, std::move(expr)));
    }
    return node;
  }

  // A name, a tuple of names (for loops, set), or `ns.attr` when `with_namespace`.
  absl::StatusOr<ExprPtr> ParseAssignTarget(bool with_namespace, std::string_view extra_end) {
    TupleMode mode;
    mode.simplified = true;
    mode.with_namespace = with_namespace;
    mode.extra_end = extra_end;
    MOESERVE_ASSIGN_OR_RETURN(ExprPtr target, ParseTuple(mode));
    MOESERVE_RETURN_IF_ERROR(CheckAssignable(*target));
    return target;
  }

  absl::Status CheckAssignable(const ast::Expr& target) const {
    switch (target.kind) {
      case ast::ExprKind::kName:
      case ast::ExprKind::kNsRef:
        return absl::OkStatus();
      case ast::ExprKind::kList: {
        const auto& list = static_cast<const ast::ListExpr&>(target);
        if (list.is_tuple) {
          for (const ExprPtr& item : list.items) MOESERVE_RETURN_IF_ERROR(CheckAssignable(*item));
          return absl::OkStatus();
        }
        return SyntaxError(target.loc, "can't assign to 'list'");
      }
      case ast::ExprKind::kLiteral:
        return SyntaxError(target.loc, "can't assign to 'const'");
      default:
        return SyntaxError(target.loc, "can't assign to this expression");
    }
  }

  int loop_depth_ = 0;  // enclosing for loops (macros reset it): break/continue need one
};

}  // namespace

absl::StatusOr<ast::Body> Parse(std::vector<Token> tokens) {
  return Parser(std::move(tokens)).ParseTemplate();
}

}  // namespace moeserve::jinja
