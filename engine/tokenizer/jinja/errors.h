// Errors of the Jinja interpreter. Every error names the template position it comes from,
// "line L, column C: message", so that a bad chat template can be fixed from the server log.
// Codes: InvalidArgument for templates jinja2 rejects too (syntax errors) and for render
// failures (undefined values, type errors); Unimplemented for valid Jinja this interpreter
// does not support. raise_exception() messages are passed through verbatim.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_ERRORS_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_ERRORS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace moeserve::jinja {

struct Location {
  int line = 0;    // 1-based
  int column = 0;  // 1-based, in code points
};

// A template that is not valid Jinja (what jinja2 reports as TemplateSyntaxError).
absl::Status SyntaxError(Location loc, std::string_view message);

// A valid template that uses a construct this interpreter does not implement.
absl::Status Unsupported(Location loc, std::string_view what);

// A render-time failure without a position yet; the evaluator adds the position of the
// innermost expression or statement it comes through (WithLocation).
absl::Status RenderError(std::string_view message);
absl::Status RenderUnsupported(std::string_view what);

// Prefixes `status` with `loc` unless it already carries a position (or is OK).
absl::Status WithLocation(absl::Status status, Location loc);

// What raise_exception(message) produces: InvalidArgument with `message` verbatim.
absl::Status TemplateRaised(std::string_view message);

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_ERRORS_H_
