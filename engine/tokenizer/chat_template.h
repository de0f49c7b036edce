// Renders a chat conversation into the prompt string a model was trained on, from the
// model's own Jinja chat template (tokenizer.chat_template in GGUF, chat_template in
// tokenizer_config.json). Create() parses the template once and fails with the line and
// column of any construct the interpreter does not support; Render() is thread-safe.
#ifndef MOESERVE_ENGINE_TOKENIZER_CHAT_TEMPLATE_H_
#define MOESERVE_ENGINE_TOKENIZER_CHAT_TEMPLATE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja/value.h"

namespace moeserve {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

class ChatTemplate {
 public:
  struct Options {
    std::string bos_token;
    std::string eos_token;
  };

  // Errors: InvalidArgument for a template jinja2 rejects too, Unimplemented for a valid
  // one using a construct not supported here; both "line L, column C: ...".
  static absl::StatusOr<std::unique_ptr<ChatTemplate>> Create(const std::string& source,
                                                              Options options);
  virtual ~ChatTemplate() = default;

  // Errors (InvalidArgument) come from the template itself, e.g. raise_exception() for a
  // conversation the model does not accept, or a runtime type error.
  virtual absl::StatusOr<std::string> Render(const std::vector<ChatMessage>& messages,
                                             bool add_generation_prompt) const = 0;

  // Renders with caller-built template variables, for what ChatMessage does not carry
  // (tool calls, content parts, `tools`, extra kwargs such as enable_thinking).
  // `variables` is a jinja::Value dict; bos_token and eos_token come from Options unless it
  // sets them. Same errors as Render().
  virtual absl::StatusOr<std::string> RenderVariables(const jinja::Value& variables) const = 0;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_CHAT_TEMPLATE_H_
