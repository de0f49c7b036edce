// The published chat templates of tests/fixtures/chat_templates/*.jinja (SmolLM2, Llama 2,
// Llama 3, Llama 3.1 with tools, Mixtral, Qwen2, Qwen1.5, DeepSeek) rendered by ChatTemplate
// against Python jinja2 through transformers (tests/fixtures/gen_published_chat_template_cases.py):
// every case byte for byte, and every conversation a template rejects rejected here too.
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/tokenizer/chat_template.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/jinja_json.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

using ::testing::EndsWith;
using ::testing::StartsWith;
using Json = nlohmann::ordered_json;

std::string ReadAll(const std::string& relative_path) {
  std::ifstream in(testing::SourcePath(relative_path), std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing " << relative_path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Json LoadFixture() {
  return Json::parse(ReadAll("tests/fixtures/published_chat_template_cases.json"));
}

// Render() when each message is just role and content and there are no tools (the
// server's path), else RenderVariables() with the variables transformers passes.
absl::StatusOr<std::string> RenderCase(const ChatTemplate& tmpl, const Json& messages,
                                       const Json& tools, bool add_generation_prompt) {
  std::vector<ChatMessage> plain;
  for (const Json& m : messages) {
    if (m.size() != 2 || !m.contains("role") || !m.contains("content")) break;
    plain.push_back({m["role"], m["content"]});
  }
  if (plain.size() == messages.size() && tools.is_null()) {
    return tmpl.Render(plain, add_generation_prompt);
  }
  jinja::Dict variables;
  variables.Set("messages", testing::JinjaValueFromJson(messages));
  variables.Set("tools", testing::JinjaValueFromJson(tools));
  variables.Set("documents", jinja::Value::None());
  variables.Set("add_generation_prompt", jinja::Value::Bool(add_generation_prompt));
  return tmpl.RenderVariables(jinja::Value::FromDict(std::move(variables)));
}

TEST(PublishedChatTemplateTest, FilesAreTheFixtureTexts) {
  const Json fixture = LoadFixture();
  ASSERT_EQ(fixture["templates"].size(), 9u);
  for (const auto& [name, info] : fixture["templates"].items()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(ReadAll(info["file"].get<std::string>()), info["text"].get<std::string>());
    EXPECT_FALSE(info["source"].get<std::string>().empty());
  }
}

TEST(PublishedChatTemplateTest, MatchesJinja2ByteForByte) {
  const Json fixture = LoadFixture();
  std::map<std::string, std::unique_ptr<ChatTemplate>> templates;
  for (const auto& [name, info] : fixture["templates"].items()) {
    absl::StatusOr<std::unique_ptr<ChatTemplate>> tmpl = ChatTemplate::Create(
        ReadAll(info["file"].get<std::string>()),
        {info["bos_token"].get<std::string>(), info["eos_token"].get<std::string>()});
    ASSERT_TRUE(tmpl.ok()) << name << ": " << tmpl.status();
    templates[name] = *std::move(tmpl);
  }
  std::map<std::string, int> rendered;
  std::map<std::string, std::set<std::string>> run;            // conversations without tools
  std::map<std::string, std::set<std::string>> conversations;  // ... that rendered
  int errors = 0;
  for (const Json& c : fixture["cases"]) {
    const std::string name = c["template"];
    const bool with_tools = c.contains("tool_conversation");
    const std::string conversation = with_tools ? c["tool_conversation"] : c["conversation"];
    const bool add_generation_prompt = c["add_generation_prompt"];
    const Json tools = with_tools ? c["tools"] : Json();
    SCOPED_TRACE("template " + name + ", conversation " + conversation +
                 (add_generation_prompt ? ", add_generation_prompt" : "") +
                 (tools.is_null() ? "" : ", tools"));
    const Json& messages =
        fixture[with_tools ? "tool_conversations" : "conversations"][conversation];
    absl::StatusOr<std::string> out =
        RenderCase(*templates.at(name), messages, tools, add_generation_prompt);
    if (!with_tools) run[name].insert(conversation);
    if (c.contains("error")) {
      ASSERT_FALSE(out.ok()) << "rendered " << *out << "\nbut jinja2 raised " << c["error"];
      EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
      const std::string error = c["error"];
      const std::string message(out.status().message());
      if (c["raised"].get<bool>()) {  // raise_exception(): the message verbatim
        EXPECT_EQ("TemplateError: " + message, error);
      } else {  // jinja2's own error: ours names the position, then the same text
        EXPECT_THAT(message, StartsWith("line "));
        EXPECT_THAT(message, EndsWith(error.substr(error.find(": ") + 2)));
      }
      ++errors;
    } else {
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ(*out, c["expected"].get<std::string>());
      ++rendered[name];
      if (!with_tools) conversations[name].insert(conversation);
    }
  }
  // Every template runs over every conversation (at least 30, each with and without a
  // generation prompt); the ones it rejects are checked above as errors. Mixtral's 2023 text
  // rejects every system message, so fewer of its conversations render.
  for (const auto& [name, count] : rendered) {
    SCOPED_TRACE(name);
    EXPECT_GE(run[name].size(), 30u);
    EXPECT_GE(conversations[name].size(), name == "mixtral_instruct_2023" ? 15u : 25u);
    EXPECT_GE(count, 30);
  }
  EXPECT_EQ(rendered.size(), 9u);
  EXPECT_GT(errors, 50);
}

}  // namespace
}  // namespace moeserve
