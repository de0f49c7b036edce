// A Jinja2 template interpreter for chat templates: the public entry point of jinja/.
// Parse() runs lexer -> parser once and rejects, with line and column, both invalid
// templates and valid ones using constructs that are not implemented; Render() then
// evaluates the immutable syntax tree, so one Template serves concurrent renders.
//
// The environment is the one transformers renders chat templates with: jinja2's
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with loop controls,
// globals raise_exception() and strftime_now(), and |tojson as json.dumps(ensure_ascii=False).
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_TEMPLATE_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_TEMPLATE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja/ast.h"
#include "engine/tokenizer/jinja/lexer.h"
#include "engine/tokenizer/jinja/value.h"

namespace moeserve::jinja {

using TemplateOptions = LexerOptions;

class Template {
 public:
  // Errors: InvalidArgument (not valid Jinja) or Unimplemented (valid but unsupported),
  // both "line L, column C: ...".
  static absl::StatusOr<Template> Parse(std::string_view source,
                                        const TemplateOptions& options = {});

  // `variables` is a dict of the names the template sees (a non-dict gives none).
  // Errors: InvalidArgument, "line L, column C: ..." for template errors (undefined
  // attributes, type errors), or raise_exception()'s message verbatim; Unimplemented for
  // runtime cases not supported (they would not render what jinja2 renders).
  absl::StatusOr<std::string> Render(const Value& variables) const;

 private:
  explicit Template(std::shared_ptr<const ast::Program> program) : program_(std::move(program)) {}

  std::shared_ptr<const ast::Program> program_;
};

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_TEMPLATE_H_
