// jinja2 compiles each frame (the template, a loop body, a macro, a {% with %} / {% filter %}
// / {% set %} block body) to Python locals whose starting values it decides statically
// (jinja2/idtracking.py). A name whose first mention in a frame is an unconditional
// {% set %}, and that no enclosing frame mentions, starts out Undefined: it hides the
// context's value even from code that runs before the set (an earlier loop or macro call).
// This pass finds those names for every frame; the interpreter binds them on frame entry.
// The other cases (aliases of outer variables, context lookups) are what the interpreter's
// scope chain does anyway.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_SCOPE_ANALYSIS_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_SCOPE_ANALYSIS_H_

#include "engine/tokenizer/jinja/ast.h"

namespace moeserve::jinja {

// Fills program->locals and the `locals` of every frame statement in program->body.
void AnalyzeScopes(ast::Program* program);

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_SCOPE_ANALYSIS_H_
