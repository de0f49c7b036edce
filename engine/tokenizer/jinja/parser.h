// Builds the syntax tree from tokens, following jinja2's parser rule for rule (operator
// precedence, tuples without parentheses, `is` tests, filter chains), so every template
// jinja2 accepts parses the same way. Constructs this interpreter does not implement
// ({% include %}, {% call %}, recursive loops, *args, unsupported filters...) fail here,
// with their position, rather than at render time.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_PARSER_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_PARSER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja/ast.h"
#include "engine/tokenizer/jinja/lexer.h"

namespace moeserve::jinja {

// REQUIRES: `tokens` ends with kEof (as Tokenize() returns them).
absl::StatusOr<ast::Body> Parse(std::vector<Token> tokens);

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_PARSER_H_
