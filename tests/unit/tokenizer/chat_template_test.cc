// ChatTemplate against transformers' apply_chat_template (fixtures from
// tests/fixtures/gen_chat_template_cases.py): SmolLM2's template and others, over
// conversations with and without system prompts, multi-turn, Unicode and quotes.
#include "engine/tokenizer/chat_template.h"

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::ordered_json;

constexpr char kSmolLm2Template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

std::string Msg(const absl::Status& status) { return std::string(status.message()); }

Json LoadFixture() {
  std::ifstream in(testing::SourcePath("tests/fixtures/chat_template_cases.json"));
  EXPECT_TRUE(in.good()) << "missing fixture; run tests/fixtures/gen_chat_template_cases.py";
  std::stringstream buffer;
  buffer << in.rdbuf();
  return Json::parse(buffer.str());
}

std::unique_ptr<ChatTemplate> MustCreate(const std::string& source,
                                         ChatTemplate::Options options = {}) {
  absl::StatusOr<std::unique_ptr<ChatTemplate>> tmpl = ChatTemplate::Create(source, options);
  EXPECT_TRUE(tmpl.ok()) << tmpl.status();
  return tmpl.ok() ? *std::move(tmpl) : nullptr;
}

TEST(ChatTemplateTest, SmolLm2RendersExactly) {
  auto tmpl = MustCreate(kSmolLm2Template, {"<|im_start|>", "<|im_end|>"});
  ASSERT_NE(tmpl, nullptr);
  const std::vector<ChatMessage> messages = {
      {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "What's 2+2?"}};
  EXPECT_EQ(*tmpl->Render(messages, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!"
            "<|im_end|>\n<|im_start|>user\nWhat's 2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(*tmpl->Render({{"system", "Be brief."}, {"user", "Hi"}}, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(*tmpl->Render({}, true), "<|im_start|>assistant\n");
}

TEST(ChatTemplateFixtureTest, MatchesTransformers) {
  const Json fixture = LoadFixture();
  std::map<std::string, std::unique_ptr<ChatTemplate>> templates;
  int rendered = 0;
  int errors = 0;
  for (const Json& c : fixture["chat_cases"]) {
    const std::string name = c["template"];
    SCOPED_TRACE("template " + name + ", conversation " + c["conversation"].get<std::string>() +
                 (c["add_generation_prompt"].get<bool>() ? ", add_generation_prompt" : ""));
    auto& tmpl = templates[name + c["bos_token"].get<std::string>()];
    if (tmpl == nullptr) {
      tmpl = MustCreate(fixture["templates"][name],
                        {c["bos_token"].get<std::string>(), c["eos_token"].get<std::string>()});
      ASSERT_NE(tmpl, nullptr);
    }
    std::vector<ChatMessage> messages;
    for (const Json& m : fixture["conversations"][c["conversation"].get<std::string>()]) {
      messages.push_back({m["role"], m["content"]});
    }
    absl::StatusOr<std::string> out = tmpl->Render(messages, c["add_generation_prompt"]);
    if (c.contains("error")) {
      ASSERT_FALSE(out.ok()) << "rendered, but transformers raised " << c["error"];
      EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ("TemplateError: " + Msg(out.status()), c["error"].get<std::string>());
      ++errors;
    } else {
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ(*out, c["expected"].get<std::string>());
      ++rendered;
    }
  }
  EXPECT_GT(rendered, 250);
  EXPECT_GT(errors, 5);
}

TEST(ChatTemplateTest, RaiseExceptionPropagatesAsInvalidArgument) {
  auto tmpl = MustCreate(
      "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}"
      "{{ raise_exception('Unsupported role: ' + m.role) }}{% endif %}{{ m.content }}{% endfor %}");
  ASSERT_NE(tmpl, nullptr);
  EXPECT_EQ(*tmpl->Render({{"user", "a"}}, false), "a");
  absl::StatusOr<std::string> out = tmpl->Render({{"system", "s"}}, false);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(out.status()), "Unsupported role: system");
}

TEST(ChatTemplateTest, CreateRejectsSyntaxErrorsWithPosition) {
  absl::StatusOr<std::unique_ptr<ChatTemplate>> tmpl =
      ChatTemplate::Create("{% for m in messages %}\n{{ m.content + }}\n{% endfor %}", {});
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(tmpl.status()), StartsWith("line 2, column 16: "));

  tmpl = ChatTemplate::Create("{% for m in messages %}{{ m.content }}", {});
  ASSERT_FALSE(tmpl.ok());
  EXPECT_THAT(Msg(tmpl.status()), HasSubstr("endfor"));
}

TEST(ChatTemplateTest, CreateRejectsUnsupportedConstructsWithPosition) {
  absl::StatusOr<std::unique_ptr<ChatTemplate>> tmpl = ChatTemplate::Create(
      "{% for m in messages %}\n  {{ m.content | wordwrap(20) }}{% endfor %}", {});
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(Msg(tmpl.status()), "line 2, column 18: unsupported filter 'wordwrap'");

  tmpl = ChatTemplate::Create("{% include 'tools.j2' %}", {});
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(Msg(tmpl.status()), "line 1, column 4: unsupported tag 'include'");
}

TEST(ChatTemplateTest, VariablesMatchTransformers) {
  auto tmpl = MustCreate(
      "{{ bos_token }}|{{ eos_token }}|{{ tools is none }}|{{ documents is none }}|"
      "{{ add_generation_prompt }}|{{ messages | tojson }}|{{ unknown is defined }}",
      {"<s>", "</s>"});
  ASSERT_NE(tmpl, nullptr);
  EXPECT_EQ(*tmpl->Render({{"user", "é \"q\""}}, true),
            "<s>|</s>|True|True|True|[{\"role\": \"user\", \"content\": \"é \\\"q\\\"\"}]|False");
}

TEST(ChatTemplateTest, RenderVariablesPassesToolCallsAndTools) {
  auto tmpl = MustCreate(
      "{{ bos_token }}{% for m in messages %}{% if m.tool_calls %}"
      "{% for call in m.tool_calls %}{{ call.function.name }}{{ call.function.arguments | tojson }}"
      "{% endfor %}{% else %}{{ m.content }}{% endif %}{% endfor %}"
      "{% if tools %}|{{ tools | map(attribute='name') | join(',') }}{% endif %}"
      "{% if enable_thinking is defined and not enable_thinking %}|no-think{% endif %}",
      {"<s>", "</s>"});
  ASSERT_NE(tmpl, nullptr);
  using jinja::Dict;
  using jinja::Value;
  Dict args;
  args.Set("city", Value::String("Paris"));
  Dict function;
  function.Set("name", Value::String("get_weather"));
  function.Set("arguments", Value::FromDict(args));
  Dict call;
  call.Set("function", Value::FromDict(function));
  Dict message;
  message.Set("role", Value::String("assistant"));
  message.Set("content", Value::None());
  message.Set("tool_calls", Value::List({Value::FromDict(call)}));
  Dict tool;
  tool.Set("name", Value::String("get_weather"));
  Dict variables;
  variables.Set("messages", Value::List({Value::FromDict(message)}));
  variables.Set("tools", Value::List({Value::FromDict(tool)}));
  variables.Set("enable_thinking", Value::Bool(false));
  EXPECT_EQ(*tmpl->RenderVariables(Value::FromDict(variables)),
            "<s>get_weather{\"city\": \"Paris\"}|get_weather|no-think");
}

TEST(ChatTemplateTest, RenderVariablesCanOverrideSpecialTokens) {
  auto tmpl = MustCreate("{{ bos_token }}{{ messages | length }}{{ eos_token }}", {"<s>", "</s>"});
  ASSERT_NE(tmpl, nullptr);
  jinja::Dict variables;
  variables.Set("messages", jinja::Value::List({}));
  variables.Set("bos_token", jinja::Value::String("[BOS]"));
  EXPECT_EQ(*tmpl->RenderVariables(jinja::Value::FromDict(std::move(variables))), "[BOS]0</s>");
}

TEST(ChatTemplateTest, ConcurrentRendersAgree) {
  auto tmpl = MustCreate(kSmolLm2Template, {"", ""});
  ASSERT_NE(tmpl, nullptr);
  const std::vector<ChatMessage> messages = {{"system", "s"}, {"user", "ü"}, {"assistant", "a"}};
  const std::string expected = *tmpl->Render(messages, true);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        absl::StatusOr<std::string> out = tmpl->Render(messages, true);
        if (!out.ok() || *out != expected) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(mismatches, ::testing::Each(0));
}

}  // namespace
}  // namespace moeserve
