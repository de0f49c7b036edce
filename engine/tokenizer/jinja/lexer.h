// Splits a template into tokens exactly as jinja2's lexer does: template data between tags,
// and inside {{ }} / {% %} the expression tokens. Whitespace control ({%- -%}, {{- -}},
// {#- -#}, {%+ +%}), trim_blocks, lstrip_blocks, newline normalisation and
// keep_trailing_newline are all applied here, so the parser never sees them. Comments and
// {% raw %} never reach the parser either (raw content becomes data).
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_LEXER_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_LEXER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja/errors.h"

namespace moeserve::jinja {

// jinja2's Environment options that change lexing. The defaults are the environment
// transformers compiles chat templates with.
struct LexerOptions {
  bool trim_blocks = true;             // drop the first newline after a block or comment tag
  bool lstrip_blocks = true;           // drop whitespace before a block or comment tag on its line
  bool keep_trailing_newline = false;  // keep a single newline at the end of the template
};

enum class TokenType : uint8_t {
  kData,           // template text; `text` is the text
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,           // identifiers and keywords alike (jinja2 has no reserved words)
  kString,         // `text` is the unescaped value
  kInteger,        // `int_value`
  kFloat,          // `float_value`
  kOperator,  // `text` is the operator: + - * / // % ** ~ == != < <= > >= = . : | , ; ( ) [ ] { }
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
  Location loc;
};

// Ends with a kEof token. Errors are jinja2's TemplateSyntaxErrors, with a position.
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source, const LexerOptions& options);

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_LEXER_H_
