// The expression half of the parser: jinja2's Parser.parse_expression and everything
// below it (ternaries, and/or/not, comparisons, arithmetic, filters, `is` tests,
// subscripts, calls, literals), over the token stream. The statement parser (parser.cc)
// derives from it. Internal to parser.cc and expression_parser.cc.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_EXPRESSION_PARSER_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_EXPRESSION_PARSER_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/ast.h"
#include "engine/tokenizer/jinja/lexer.h"

namespace moeserve::jinja {

// Deeper nesting than any real template; keeps recursion (parsing, evaluating, destroying
// the tree) far from the stack's end.
inline constexpr int kMaxParseDepth = 200;

class ExpressionParser {
 public:
  // REQUIRES: `tokens` ends with kEof.
  explicit ExpressionParser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

 protected:
  const Token& cur() const { return tokens_[pos_]; }
  const Token& Peek() const { return tokens_[pos_ + 1 < tokens_.size() ? pos_ + 1 : pos_]; }
  const Token& Advance() {
    const Token& token = tokens_[pos_];
    if (token.type != TokenType::kEof) ++pos_;
    return token;
  }
  bool IsName(std::string_view name) const {
    return cur().type == TokenType::kName && cur().text == name;
  }
  bool IsOp(std::string_view op) const {
    return cur().type == TokenType::kOperator && cur().text == op;
  }
  bool SkipName(std::string_view name) {
    if (!IsName(name)) return false;
    Advance();
    return true;
  }
  bool SkipOp(std::string_view op) {
    if (!IsOp(op)) return false;
    Advance();
    return true;
  }

  static std::string Describe(const Token& token);  // as jinja2 names tokens in errors

  absl::Status Fail(const std::string& message) const { return SyntaxError(cur().loc, message); }

  absl::Status Expected(const std::string& what) const {
    if (cur().type == TokenType::kEof) {
      return Fail(Cat("unexpected end of template, expected '", what, "'."));
    }
    return Fail(Cat("expected token '", what, "', got '", Describe(cur()), "'"));
  }

  absl::Status Expect(TokenType type, std::string_view what) {
    if (cur().type != type) return Expected(std::string(what));
    Advance();
    return absl::OkStatus();
  }
  absl::Status ExpectOp(std::string_view op) {
    if (!SkipOp(op)) return Expected(std::string(op));
    return absl::OkStatus();
  }
  absl::Status ExpectName(std::string_view name) {
    if (!SkipName(name)) return Expected(std::string(name));
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectAnyName() {
    if (cur().type != TokenType::kName) return Expected("name");
    return Advance().text;
  }

  // Counts recursion depth for one parse function activation.
  class DepthGuard {
   public:
    explicit DepthGuard(ExpressionParser* parser) : parser_(parser) { ++parser_->depth_; }
    ~DepthGuard() { --parser_->depth_; }
    absl::Status Check() const {
      if (parser_->depth_ > kMaxParseDepth) {
        return Unsupported(parser_->cur().loc, "nesting deeper than 200 levels");
      }
      return absl::OkStatus();
    }

   private:
    ExpressionParser* parser_;
  };

  // Left-leaning chains (a + b + c, x.y.z, x|f|g) grow the tree without recursing here,
  // but evaluating and destroying them recurses: each link counts as a level.
  class ChainGuard {
   public:
    explicit ChainGuard(ExpressionParser* parser) : parser_(parser) {}
    ~ChainGuard() { parser_->depth_ -= links_; }
    absl::Status Step() {
      ++links_;
      ++parser_->depth_;
      if (parser_->depth_ > kMaxParseDepth) {
        return Unsupported(parser_->cur().loc, "nesting deeper than 200 levels");
      }
      return absl::OkStatus();
    }

   private:
    ExpressionParser* parser_;
    int links_ = 0;
  };

  // Scoped save/restore of a parser flag or counter.
  template <typename T>
  class Saved {
   public:
    Saved(T* slot, T value) : slot_(slot), old_(*slot) { *slot = value; }
    ~Saved() { *slot_ = old_; }

   private:
    T* slot_;
    T old_;
  };

  struct TupleMode {
    bool simplified = false;       // items are primaries (assignment targets)
    bool with_condexpr = true;     // items may be `a if b else c`
    bool explicit_parens = false;  // `()` is an empty tuple
    bool with_namespace = false;   // items may be `ns.attr`
    std::string_view extra_end;    // a name that also ends the tuple (`in`, `recursive`)
  };

  absl::StatusOr<ast::ExprPtr> ParseTuple(const TupleMode& mode);
  absl::StatusOr<ast::ExprPtr> ParseExpression(bool with_condexpr);
  absl::StatusOr<ast::ExprPtr> ParsePrimary(bool with_namespace);
  absl::StatusOr<ast::ExprPtr> ParseFilter(ast::ExprPtr node, bool start_inline);

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  bool soft_ = false;  // in if/ternary code, where jinja2 defers unknown filter errors
  bool in_macro_ = false;
  // Unknown filter/test names outside conditional code: errors once parsing is done (an
  // enclosing ternary can still make them conditional).
  std::vector<absl::Status> unknown_;

 private:
  bool IsTupleEnd(const TupleMode& mode) const;
  absl::StatusOr<ast::ExprPtr> ParseOr();
  absl::StatusOr<ast::ExprPtr> ParseAnd();
  absl::StatusOr<ast::ExprPtr> ParseNot();
  absl::StatusOr<ast::ExprPtr> ParseCompare();
  absl::StatusOr<ast::ExprPtr> ParseMath1();
  absl::StatusOr<ast::ExprPtr> ParseConcat();
  absl::StatusOr<ast::ExprPtr> ParseMath2();
  absl::StatusOr<ast::ExprPtr> ParsePow();
  static bool MaybeConstant(const ast::Expr& expr);
  absl::StatusOr<ast::ExprPtr> ParseUnary(bool with_filter);
  static ast::ExprPtr Literal(Location loc, Value value);
  absl::StatusOr<ast::ExprPtr> ParseList();
  absl::StatusOr<ast::ExprPtr> ParseDict();
  absl::StatusOr<ast::ExprPtr> ParsePostfix(ast::ExprPtr node);
  absl::StatusOr<ast::ExprPtr> ParseFilterExpr(ast::ExprPtr node);
  absl::StatusOr<ast::ExprPtr> ParseSubscript(ast::ExprPtr node);
  absl::StatusOr<ast::ExprPtr> ParseSubscribed();
  absl::StatusOr<ast::Args> ParseCallArgs();
  absl::StatusOr<ast::ExprPtr> ParseCall(ast::ExprPtr callee);
  absl::StatusOr<std::string> ParseDottedName();
  absl::StatusOr<ast::ExprPtr> ParseTest(ast::ExprPtr node);
};

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_EXPRESSION_PARSER_H_
