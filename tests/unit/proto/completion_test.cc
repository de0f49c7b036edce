#include "proto/completion.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/error_body.h"
#include "proto/json_util.h"
#include "proto/tokenize.h"

namespace moeserve::proto {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// {"prompt": "hi"} with `patch` merged over it (JSON merge patch; null deletes).
Json Body(const std::string& patch) {
  Json body = {{"prompt", "hi"}};
  body.merge_patch(Json::parse(patch));
  return body;
}

TEST(CompletionRequestTest, Defaults) {
  absl::StatusOr<CompletionRequest> request = ParseCompletionRequest(Body("{}"));
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->prompts.size(), 1u);
  EXPECT_EQ(request->prompts[0].text, "hi");
  EXPECT_EQ(request->max_tokens, 16);  // OpenAI's default
  EXPECT_FALSE(request->echo);
  EXPECT_FALSE(request->logprobs.has_value());
  EXPECT_EQ(request->n, 1);
  EXPECT_EQ(request->temperature, 1.0f);
  EXPECT_FALSE(request->stream);
}

TEST(CompletionRequestTest, PromptForms) {
  absl::StatusOr<CompletionRequest> strings =
      ParseCompletionRequest(Body(R"({"prompt": ["a", "b"]})"));
  ASSERT_TRUE(strings.ok()) << strings.status();
  ASSERT_EQ(strings->prompts.size(), 2u);
  EXPECT_EQ(strings->prompts[1].text, "b");

  absl::StatusOr<CompletionRequest> ids =
      ParseCompletionRequest(Body(R"({"prompt": [5, 6.0, 7]})"));
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->prompts.size(), 1u);
  EXPECT_FALSE(ids->prompts[0].text.has_value());
  EXPECT_THAT(ids->prompts[0].token_ids, ElementsAre(5, 6, 7));

  absl::StatusOr<CompletionRequest> lists =
      ParseCompletionRequest(Body(R"({"prompt": [[1, 2], [3]]})"));
  ASSERT_TRUE(lists.ok()) << lists.status();
  ASSERT_EQ(lists->prompts.size(), 2u);
  EXPECT_THAT(lists->prompts[0].token_ids, ElementsAre(1, 2));
  EXPECT_THAT(lists->prompts[1].token_ids, ElementsAre(3));
}

TEST(CompletionRequestTest, EveryField) {
  absl::StatusOr<CompletionRequest> request = ParseCompletionRequest(Body(R"({
      "model": "m", "max_tokens": 5, "temperature": 0, "top_p": 0.5, "top_k": 3, "min_p": 0.1,
      "seed": 7, "stop": ["x", "y"], "presence_penalty": 1, "frequency_penalty": -1,
      "repetition_penalty": 1.2, "logit_bias": {"3": 5}, "n": 2, "logprobs": 2, "echo": true,
      "stream": true, "stream_options": {"include_usage": true}, "user": "u",
      "suffix": "", "best_of": 1, "some_future_field": 1})"));
  // echo with logprobs is refused (prompt logprobs); drop echo for the field check.
  EXPECT_EQ(ParamOf(request.status()), "echo");
  Json body = Body(R"({
      "model": "m", "max_tokens": 5, "temperature": 0, "top_p": 0.5, "top_k": 3, "min_p": 0.1,
      "seed": 7, "stop": ["x", "y"], "presence_penalty": 1, "frequency_penalty": -1,
      "repetition_penalty": 1.2, "logit_bias": {"3": 5}, "n": 2, "logprobs": 2,
      "stream": true, "stream_options": {"include_usage": true}, "user": "u",
      "suffix": "", "best_of": 1, "some_future_field": 1})");
  request = ParseCompletionRequest(body);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->model, "m");
  EXPECT_EQ(request->max_tokens, 5);
  EXPECT_EQ(request->temperature, 0.0f);
  EXPECT_EQ(request->top_p, 0.5f);
  EXPECT_EQ(request->top_k, 3);
  EXPECT_FLOAT_EQ(request->min_p, 0.1f);
  EXPECT_EQ(request->seed, 7u);
  EXPECT_THAT(request->stop, ElementsAre("x", "y"));
  EXPECT_EQ(request->presence_penalty, 1.0f);
  EXPECT_EQ(request->frequency_penalty, -1.0f);
  EXPECT_FLOAT_EQ(request->repetition_penalty, 1.2f);
  ASSERT_EQ(request->logit_bias.size(), 1u);
  EXPECT_EQ(request->logit_bias[0].first, 3);
  EXPECT_EQ(request->n, 2);
  EXPECT_EQ(request->logprobs, 2);
  EXPECT_TRUE(request->stream);
  EXPECT_TRUE(request->include_usage);

  absl::StatusOr<CompletionRequest> echo = ParseCompletionRequest(Body(R"({"echo": true})"));
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_TRUE(echo->echo);
  absl::StatusOr<CompletionRequest> zero = ParseCompletionRequest(Body(R"({"logprobs": 0})"));
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->logprobs, 0);
}

TEST(CompletionRequestTest, PromptTokenIdsAreCheckedAgainstTheVocabulary) {
  absl::StatusOr<CompletionRequest> request =
      ParseCompletionRequest(Body(R"({"prompt": [[1, 2], [3, 99]]})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_TRUE(CheckPromptTokenIds(*request, 100).ok());
  const absl::Status bad = CheckPromptTokenIds(*request, 99);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParamOf(bad), "prompt");
  EXPECT_THAT(bad.message(), HasSubstr("99"));
}

struct BadCase {
  const char* body;
  const char* param;
  const char* message;  // a part of the message
};

class BadCompletionRequestTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadCompletionRequestTest, IsInvalidArgumentNamingTheField) {
  const BadCase& c = GetParam();
  absl::StatusOr<CompletionRequest> request = ParseCompletionRequest(Body(c.body));
  ASSERT_FALSE(request.ok()) << c.body;
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
  EXPECT_EQ(ParamOf(request.status()), c.param) << c.body;
  EXPECT_THAT(request.status().message(), HasSubstr(c.message)) << c.body;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadCompletionRequestTest,
    ::testing::Values(BadCase{R"({"prompt": null})", "prompt", "required"},
                      BadCase{R"({"prompt": 3})", "prompt", "must be a string"},
                      BadCase{R"({"prompt": []})", "prompt", "must not be empty"},
                      BadCase{R"({"prompt": [[]]})", "prompt", "must not be empty"},
                      BadCase{R"({"prompt": ["a", 1]})", "prompt", "must be a string"},
                      BadCase{R"({"prompt": [1, "a"]})", "prompt", "must be a token id"},
                      BadCase{R"({"prompt": [-1]})", "prompt", "must be a token id"},
                      BadCase{R"({"prompt": [[1], [2.5]]})", "prompt[1]", "must be a token id"},
                      BadCase{R"({"prompt": [{"a": 1}]})", "prompt", "must be a string"},
                      BadCase{R"({"suffix": "x"})", "suffix", "not supported"},
                      BadCase{R"({"logprobs": 6})", "logprobs", "between 0 and 5"},
                      BadCase{R"({"logprobs": true})", "logprobs", "between 0 and 5"},
                      BadCase{R"({"logprobs": -1})", "logprobs", "between 0 and 5"},
                      BadCase{R"({"echo": "yes"})", "echo", "boolean"},
                      BadCase{R"({"max_tokens": 0})", "max_tokens", "integer"},
                      BadCase{R"({"temperature": 3})", "temperature", "between"},
                      BadCase{R"({"n": 0})", "n", "between 1"},
                      BadCase{R"({"best_of": 2})", "best_of", "not supported"},
                      BadCase{R"({"stream_options": {"include_usage": true}})", "stream_options",
                              "only allowed"},
                      BadCase{R"({"model": 1})", "model", "string"}));

TEST(CompletionRequestTest, ChoicesAreCapped) {
  Json body = {{"prompt", Json::array()}, {"n", 128}};
  for (int i = 0; i < 8; ++i) body["prompt"].push_back("p");
  EXPECT_TRUE(ParseCompletionRequest(body).ok());
  body["prompt"].push_back("p");
  const absl::Status too_many = ParseCompletionRequest(body).status();
  EXPECT_EQ(ParamOf(too_many), "prompt");
  EXPECT_THAT(too_many.message(), HasSubstr("At most 1024 choices"));
}

TEST(CompletionRequestTest, NotAnObject) {
  EXPECT_EQ(ParseCompletionRequest(Json::array()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CompletionLogprobsTest, Shape) {
  int64_t offset = 3;
  const Json logprobs = CompletionLogprobsJson(
      {{"He", -0.5f, {{"He", -0.5f}, {"Hi", -1.5f}}}, {"é", -1e30f, {{"x", -2.0f}}}}, &offset);
  EXPECT_EQ(logprobs["tokens"], Json({"He", "é"}));
  EXPECT_EQ(logprobs["token_logprobs"], Json({-0.5, -9999.0}));
  EXPECT_EQ(logprobs["top_logprobs"][0], Json({{"He", -0.5}, {"Hi", -1.5}}));
  // The chosen token is in its position's dict even when not among the alternatives.
  EXPECT_EQ(logprobs["top_logprobs"][1], Json({{"x", -2.0}, {"é", -9999.0}}));
  EXPECT_EQ(logprobs["text_offset"], Json({3, 5}));
  EXPECT_EQ(offset, 6);  // "é" is one character
  int64_t zero = 0;
  EXPECT_EQ(CompletionLogprobsJson({}, &zero), Json({{"tokens", Json::array()},
                                                     {"token_logprobs", Json::array()},
                                                     {"top_logprobs", Json::array()},
                                                     {"text_offset", Json::array()}}));
}

CompletionMeta Meta() { return CompletionMeta{"cmpl-1", 1700000000, "smol", "fp"}; }

TEST(CompletionJsonTest, Response) {
  const Json response = CompletionJson(
      Meta(), {{"a", "stop", nullptr}, {"b", "length", Json::object()}}, Usage{4, 3});
  EXPECT_EQ(response["id"], "cmpl-1");
  EXPECT_EQ(response["object"], "text_completion");
  EXPECT_EQ(response["created"], 1700000000);
  EXPECT_EQ(response["model"], "smol");
  EXPECT_EQ(response["system_fingerprint"], "fp");
  ASSERT_EQ(response["choices"].size(), 2u);
  EXPECT_EQ(response["choices"][1], Json({{"index", 1},
                                          {"text", "b"},
                                          {"logprobs", Json::object()},
                                          {"finish_reason", "length"}}));
  EXPECT_TRUE(response["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(response["usage"],
            Json({{"prompt_tokens", 4}, {"completion_tokens", 3}, {"total_tokens", 7}}));
}

TEST(CompletionJsonTest, Chunks) {
  const CompletionChunkBuilder plain(Meta(), /*include_usage=*/false);
  const Json text = plain.TextChunk(3, "hey");
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_FALSE(text.contains("usage"));
  EXPECT_EQ(
      text["choices"],
      Json::array(
          {{{"index", 3}, {"text", "hey"}, {"logprobs", nullptr}, {"finish_reason", nullptr}}}));
  EXPECT_EQ(plain.TextChunk(0, "", nullptr, "stop")["choices"][0]["finish_reason"], "stop");

  const CompletionChunkBuilder with_usage(Meta(), /*include_usage=*/true);
  EXPECT_TRUE(with_usage.TextChunk(0, "x").at("usage").is_null());
  const Json usage = with_usage.UsageChunk(Usage{2, 5});
  EXPECT_EQ(usage["choices"], Json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 7);
}

TEST(CountCodePointsTest, CountsCharacters) {
  EXPECT_EQ(CountCodePoints(""), 0);
  EXPECT_EQ(CountCodePoints("abc"), 3);
  EXPECT_EQ(CountCodePoints("h\xC3\xA9llo \xE2\x82\xAC"), 7);
}

TEST(TokenizeRequestTest, PromptForm) {
  absl::StatusOr<TokenizeRequest> request = ParseTokenizeRequest(Json{{"prompt", "hi"}});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->prompt, "hi");
  EXPECT_TRUE(request->add_special_tokens);
  request = ParseTokenizeRequest(Json{{"prompt", "hi"}, {"add_special_tokens", false}});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_FALSE(request->add_special_tokens);
}

TEST(TokenizeRequestTest, MessagesForm) {
  absl::StatusOr<TokenizeRequest> request = ParseTokenizeRequest(Json::parse(
      R"({"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": false})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_FALSE(request->prompt.has_value());
  ASSERT_EQ(request->messages.size(), 1u);
  EXPECT_EQ(request->messages[0].content, "hi");
  EXPECT_FALSE(request->add_generation_prompt);
}

TEST(TokenizeRequestTest, BadRequests) {
  for (const char* body :
       {R"({})", R"({"prompt": "a", "messages": [{"role": "user", "content": "x"}]})",
        R"({"prompt": 1})", R"({"messages": []})", R"({"prompt": "a", "add_special_tokens": 1})",
        R"([])"}) {
    absl::StatusOr<TokenizeRequest> request = ParseTokenizeRequest(Json::parse(body));
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(TokenizeResponseTest, Shape) {
  EXPECT_EQ(TokenizeResponseJson({1, 2, 3}, 64),
            Json({{"count", 3}, {"max_model_len", 64}, {"tokens", {1, 2, 3}}}));
  EXPECT_EQ(DetokenizeResponseJson("hi"), Json({{"prompt", "hi"}}));
}

TEST(DetokenizeRequestTest, Parses) {
  absl::StatusOr<DetokenizeRequest> request = ParseDetokenizeRequest(Json{{"tokens", {1, 2}}});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->tokens, ElementsAre(1, 2));
  for (const char* body : {R"({})", R"({"tokens": "ab"})", R"({"tokens": [-1]})",
                           R"({"tokens": [1.5]})", R"({"tokens": [1], "model": 3})"}) {
    absl::StatusOr<DetokenizeRequest> bad = ParseDetokenizeRequest(Json::parse(body));
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

}  // namespace
}  // namespace moeserve::proto
