#include "engine/tokenizer/chat_template.h"

#include <utility>

#include "common/status.h"
#include "engine/tokenizer/jinja/template.h"

namespace moeserve {
namespace {

using jinja::Dict;
using jinja::Value;

// The chat template over the jinja interpreter, with the variables transformers'
// apply_chat_template passes: messages, add_generation_prompt, tools and documents
// (None here), and the tokenizer's bos_token / eos_token.
class JinjaChatTemplate final : public ChatTemplate {
 public:
  JinjaChatTemplate(jinja::Template tmpl, Options options)
      : template_(std::move(tmpl)), options_(std::move(options)) {}

  absl::StatusOr<std::string> Render(const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt) const override {
    std::vector<Value> list;
    list.reserve(messages.size());
    for (const ChatMessage& message : messages) {
      Dict dict;
      dict.Set("role", Value::String(message.role));
      dict.Set("content", Value::String(message.content));
      list.push_back(Value::FromDict(std::move(dict)));
    }
    Dict variables;
    variables.Set("messages", Value::List(std::move(list)));
    variables.Set("tools", Value::None());
    variables.Set("documents", Value::None());
    variables.Set("add_generation_prompt", Value::Bool(add_generation_prompt));
    return RenderVariables(Value::FromDict(std::move(variables)));
  }

  absl::StatusOr<std::string> RenderVariables(const Value& variables) const override {
    Dict all;
    all.Set("bos_token", Value::String(options_.bos_token));
    all.Set("eos_token", Value::String(options_.eos_token));
    if (variables.is_dict()) {
      for (const auto& [key, value] : variables.dict().entries()) all.Set(key, value);
    }
    return template_.Render(Value::FromDict(std::move(all)));
  }

 private:
  const jinja::Template template_;
  const Options options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::Create(const std::string& source,
                                                                   Options options) {
  MOESERVE_ASSIGN_OR_RETURN(jinja::Template tmpl, jinja::Template::Parse(source));
  return std::make_unique<JinjaChatTemplate>(std::move(tmpl), std::move(options));
}

}  // namespace moeserve
