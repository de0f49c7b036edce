#include "engine/tokenizer/jinja/template.h"

#include <utility>

#include "common/status.h"
#include "engine/tokenizer/jinja/interpreter.h"
#include "engine/tokenizer/jinja/parser.h"
#include "engine/tokenizer/jinja/scope_analysis.h"

namespace moeserve::jinja {

absl::StatusOr<Template> Template::Parse(std::string_view source, const TemplateOptions& options) {
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source, options));
  auto program = std::make_shared<ast::Program>();
  MOESERVE_ASSIGN_OR_RETURN(program->body, jinja::Parse(std::move(tokens)));
  AnalyzeScopes(program.get());
  return Template(std::move(program));
}

absl::StatusOr<std::string> Template::Render(const Value& variables) const {
  Interpreter interpreter(variables);
  return interpreter.Render(*program_);
}

}  // namespace moeserve::jinja
