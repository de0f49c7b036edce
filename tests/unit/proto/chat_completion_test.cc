#include "proto/chat_completion.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/error_body.h"
#include "proto/json_util.h"

namespace moeserve::proto {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kMinimal[] = R"({"messages": [{"role": "user", "content": "hi"}]})";

// The minimal valid request with `patch` merged over it (JSON merge patch; null deletes).
Json Body(const std::string& patch) {
  Json body = Json::parse(kMinimal);
  body.merge_patch(Json::parse(patch));
  return body;
}

TEST(ChatCompletionRequestTest, Defaults) {
  absl::StatusOr<ChatCompletionRequest> request = ParseChatCompletionRequest(Json::parse(kMinimal));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_FALSE(request->model.has_value());
  ASSERT_EQ(request->messages.size(), 1u);
  EXPECT_EQ(request->messages[0].role, "user");
  EXPECT_EQ(request->messages[0].content, "hi");
  EXPECT_FALSE(request->max_tokens.has_value());
  EXPECT_EQ(request->temperature, 1.0f);
  EXPECT_EQ(request->top_p, 1.0f);
  EXPECT_EQ(request->top_k, 0);
  EXPECT_FALSE(request->seed.has_value());
  EXPECT_FALSE(request->ignore_eos);
  EXPECT_FALSE(request->stream);
  EXPECT_FALSE(request->include_usage);
  EXPECT_EQ(request->n, 1);
}

TEST(ChatCompletionRequestTest, NullMeansDefault) {
  absl::StatusOr<ChatCompletionRequest> request = ParseChatCompletionRequest(Json::parse(R"({
      "model": null, "messages": [{"role": "user", "content": "hi"}], "max_tokens": null,
      "max_completion_tokens": null, "temperature": null, "top_p": null, "top_k": null,
      "seed": null, "stream": null, "stream_options": null, "n": null, "stop": null,
      "user": null, "logprobs": null, "tools": null, "response_format": null})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_FALSE(request->model.has_value());
  EXPECT_EQ(request->temperature, 1.0f);
  EXPECT_FALSE(request->stream);
}

TEST(ChatCompletionRequestTest, EveryField) {
  absl::StatusOr<ChatCompletionRequest> request = ParseChatCompletionRequest(Json::parse(R"({
      "model": "smol", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7,
      "temperature": 0, "top_p": 0.5, "top_k": 40, "seed": 1234, "ignore_eos": true,
      "stream": true, "stream_options": {"include_usage": true}, "n": 1, "stop": [],
      "user": "alice", "logprobs": false, "presence_penalty": 0, "frequency_penalty": 0.0,
      "logit_bias": {}, "tools": [], "tool_choice": "none",
      "response_format": {"type": "text"}, "some_future_field": {"x": 1}})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->model, "smol");
  EXPECT_EQ(request->max_tokens, 7);
  EXPECT_EQ(request->temperature, 0.0f);
  EXPECT_EQ(request->top_p, 0.5f);
  EXPECT_EQ(request->top_k, 40);
  EXPECT_EQ(request->seed, 1234u);
  EXPECT_TRUE(request->ignore_eos);
  EXPECT_TRUE(request->stream);
  EXPECT_TRUE(request->include_usage);
}

TEST(ChatCompletionRequestTest, NChoices) {
  for (const auto& [body, n] : {std::pair{R"({"n": 2})", 2}, std::pair{R"({"n": 128})", 128},
                                std::pair{R"({"n": 3.0})", 3}, std::pair{R"({"n": 1})", 1}}) {
    auto request = ParseChatCompletionRequest(Body(body));
    ASSERT_TRUE(request.ok()) << body << ": " << request.status();
    EXPECT_EQ(request->n, n) << body;
  }
}

TEST(ChatCompletionRequestTest, IntegerForms) {
  // Integral floats count as integers, as in vLLM's pydantic models.
  auto request = ParseChatCompletionRequest(Body(R"({"max_tokens": 5.0, "top_k": -1})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->max_tokens, 5);
  EXPECT_EQ(request->top_k, 0) << "-1 disables top-k like 0";
}

TEST(ChatCompletionRequestTest, MaxCompletionTokensWinsOverMaxTokens) {
  auto request =
      ParseChatCompletionRequest(Body(R"({"max_tokens": 5, "max_completion_tokens": 9})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->max_tokens, 9);
  request = ParseChatCompletionRequest(Body(R"({"max_completion_tokens": 3})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->max_tokens, 3);
}

TEST(ChatCompletionRequestTest, SeedsKeepTheirBits) {
  auto request = ParseChatCompletionRequest(Body(R"({"seed": -1})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->seed, std::numeric_limits<uint64_t>::max());
  request = ParseChatCompletionRequest(Body(R"({"seed": 18446744073709551615})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->seed, std::numeric_limits<uint64_t>::max());
}

TEST(ChatCompletionRequestTest, EmptyStopIsAccepted) {
  for (const char* stop : {R"({"stop": ""})", R"({"stop": []})", R"({"stop": null})"}) {
    EXPECT_TRUE(ParseChatCompletionRequest(Body(stop)).ok()) << stop;
  }
}

TEST(ChatCompletionRequestTest, StopStrings) {
  auto request = ParseChatCompletionRequest(Body(R"({"stop": "\n"})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->stop, std::vector<std::string>{"\n"});
  request = ParseChatCompletionRequest(Body(R"({"stop": ["a", "b c", "\u20ac", "."]})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->stop, (std::vector<std::string>{"a", "b c", "\xE2\x82\xAC", "."}));
  request = ParseChatCompletionRequest(Body(R"({"stop": ""})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_TRUE(request->stop.empty());
  request = ParseChatCompletionRequest(Body(R"({"stop_token_ids": [2, 49151]})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->stop_token_ids, (std::vector<int32_t>{2, 49151}));
  EXPECT_TRUE(CheckTokenIdsInVocabulary(*request, 49152).ok());
  const absl::Status vocab = CheckTokenIdsInVocabulary(*request, 49151);
  EXPECT_EQ(ParamOf(vocab), "stop_token_ids");
  EXPECT_THAT(std::string(vocab.message()), HasSubstr("token id 49151"));
}

TEST(ChatCompletionRequestTest, PenaltiesMinPAndLogitBias) {
  auto request = ParseChatCompletionRequest(Body(R"({"presence_penalty": -2,
      "frequency_penalty": 1.5, "repetition_penalty": 1.1, "min_p": 0.05,
      "logit_bias": {"0": 100, "50256": -100, "17": 2.5}})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->presence_penalty, -2.0f);
  EXPECT_EQ(request->frequency_penalty, 1.5f);
  EXPECT_EQ(request->repetition_penalty, 1.1f);
  EXPECT_EQ(request->min_p, 0.05f);
  std::vector<std::pair<int32_t, float>> bias = request->logit_bias;
  std::sort(bias.begin(), bias.end());
  EXPECT_EQ(bias,
            (std::vector<std::pair<int32_t, float>>{{0, 100.0f}, {17, 2.5f}, {50256, -100.0f}}));
  EXPECT_TRUE(CheckTokenIdsInVocabulary(*request, 50257).ok());
  const absl::Status vocab = CheckTokenIdsInVocabulary(*request, 50256);
  EXPECT_EQ(vocab.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(vocab.message()), HasSubstr("token id 50256"));
  EXPECT_EQ(ParamOf(vocab), "logit_bias");
}

TEST(ChatCompletionRequestTest, Logprobs) {
  auto request = ParseChatCompletionRequest(Body(R"({"logprobs": true, "top_logprobs": 20})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_TRUE(request->logprobs);
  EXPECT_EQ(request->top_logprobs, 20);
  request = ParseChatCompletionRequest(Body(R"({"logprobs": true})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->top_logprobs, 0);
  // top_logprobs 0 is its default and needs nothing.
  EXPECT_TRUE(ParseChatCompletionRequest(Body(R"({"top_logprobs": 0})")).ok());
}

TEST(ChatCompletionRequestTest, Messages) {
  auto request = ParseChatCompletionRequest(Json::parse(R"({"messages": [
      {"role": "developer", "content": "be brief"},
      {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
      {"role": "user", "content": "hi", "name": "bob"},
      {"role": "assistant", "content": null},
      {"role": "assistant", "tool_calls": []},
      {"role": "user", "content": []}]})"));
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->messages.size(), 6u);
  EXPECT_EQ(request->messages[0].role, "system") << "developer is the new name of system";
  EXPECT_EQ(request->messages[0].content, "be brief");
  EXPECT_EQ(request->messages[1].content, "a\nb") << "text parts joined as vLLM joins them";
  EXPECT_EQ(request->messages[2].role, "user");
  EXPECT_EQ(request->messages[3].role, "assistant");
  EXPECT_EQ(request->messages[3].content, "");
  EXPECT_EQ(request->messages[4].content, "");
  EXPECT_EQ(request->messages[5].content, "");
}

TEST(ChatCompletionRequestTest, TheBriefsExampleMessage) {
  auto request = ParseChatCompletionRequest(Body(R"({"temperature": "hot"})"));
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(request.status().message(),
            R"('temperature' must be a number between 0 and 2, got "hot")");
  EXPECT_EQ(ParamOf(request.status()), "temperature");
}

struct BadCase {
  const char* body;     // a whole request, or a patch over kMinimal when it starts with "+"
  const char* param;    // the field the error must name
  const char* message;  // a substring of the error message
};

class BadRequestTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadRequestTest, IsInvalidArgumentNamingTheField) {
  const BadCase& c = GetParam();
  const std::string text = c.body;
  const Json body = text[0] == '+' ? Body(text.substr(1)) : Json::parse(text);
  absl::StatusOr<ChatCompletionRequest> request = ParseChatCompletionRequest(body);
  ASSERT_FALSE(request.ok()) << c.body;
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
  EXPECT_THAT(std::string(request.status().message()), HasSubstr(c.message)) << c.body;
  EXPECT_THAT(std::string(request.status().message()), HasSubstr(std::string("'") + c.param))
      << "the message names the field";
  EXPECT_EQ(ParamOf(request.status()), c.param) << c.body;
}

INSTANTIATE_TEST_SUITE_P(
    Fields, BadRequestTest,
    ::testing::Values(
        BadCase{R"(+{"model": 5})", "model", "must be a string, got 5"},
        BadCase{R"({"model": "m"})", "messages", "'messages' is required"},
        BadCase{R"({"messages": "hi"})", "messages", "must be an array of message objects"},
        BadCase{R"({"messages": []})", "messages", "at least one message"},
        BadCase{R"({"messages": [5]})", "messages[0]", "must be an object, got 5"},
        BadCase{R"({"messages": [{"content": "x"}]})", "messages[0].role", "is required"},
        BadCase{R"({"messages": [{"role": 5, "content": "x"}]})", "messages[0].role",
                "must be a string"},
        BadCase{R"({"messages": [{"role": "bot", "content": "x"}]})", "messages[0].role",
                R"(must be one of "system", "developer", "user", "assistant", got "bot")"},
        BadCase{R"({"messages": [{"role": "user", "content": "x"},
                                 {"role": "tool", "content": "x"}]})",
                "messages[1].role", "is not supported yet"},
        BadCase{R"({"messages": [{"role": "user"}]})", "messages[0].content",
                R"(is required for "user" messages)"},
        BadCase{R"({"messages": [{"role": "system", "content": null}]})", "messages[0].content",
                "is required"},
        BadCase{R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content",
                "must be a string or an array of content parts"},
        BadCase{R"({"messages": [{"role": "user", "content": [5]}]})", "messages[0].content[0]",
                "must be an object"},
        BadCase{R"({"messages": [{"role": "user", "content": [{"text": "a"}]}]})",
                "messages[0].content[0].type", "is required"},
        BadCase{R"({"messages": [{"role": "user", "content": [{"type": 1}]}]})",
                "messages[0].content[0].type", "must be a string"},
        BadCase{R"({"messages": [{"role": "user", "content": [
                    {"type": "text", "text": "a"},
                    {"type": "image_url", "image_url": {"url": "http://x"}}]}]})",
                "messages[0].content[1].type", R"("image_url" is not supported)"},
        BadCase{R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})",
                "messages[0].content[0].text", "is required"},
        BadCase{R"({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]})",
                "messages[0].content[0].text", "must be a string"},
        BadCase{R"({"messages": [{"role": "assistant", "tool_calls": [{"id": "x"}]}]})",
                "messages[0].tool_calls", "is not supported yet"},
        BadCase{R"(+{"max_tokens": "5"})", "max_tokens", "must be an integer between 1 and"},
        BadCase{R"(+{"max_tokens": 0})", "max_tokens", "got 0"},
        BadCase{R"(+{"max_tokens": -3})", "max_tokens", "got -3"},
        BadCase{R"(+{"max_tokens": 1.5})", "max_tokens", "got 1.5"},
        BadCase{R"(+{"max_tokens": 3000000000})", "max_tokens", "2147483647"},
        BadCase{R"(+{"max_tokens": true})", "max_tokens", "got true"},
        BadCase{R"(+{"max_completion_tokens": 0})", "max_completion_tokens", "got 0"},
        BadCase{R"(+{"temperature": -0.1})", "temperature", "between 0 and 2"},
        BadCase{R"(+{"temperature": 2.5})", "temperature", "got 2.5"},
        BadCase{R"(+{"temperature": true})", "temperature", "got true"},
        BadCase{R"(+{"top_p": 0})", "top_p", "greater than 0 and at most 1, got 0"},
        BadCase{R"(+{"top_p": 1.5})", "top_p", "got 1.5"},
        BadCase{R"(+{"top_p": "high"})", "top_p", R"(got "high")"},
        BadCase{R"(+{"top_k": -2})", "top_k", "between -1 and"},
        BadCase{R"(+{"top_k": 2.5})", "top_k", "got 2.5"},
        BadCase{R"(+{"top_k": "many"})", "top_k", "must be an integer"},
        BadCase{R"(+{"seed": "lucky"})", "seed", "must be an integer"},
        BadCase{R"(+{"seed": 0.5})", "seed", "got 0.5"},
        BadCase{R"(+{"ignore_eos": 1})", "ignore_eos", "must be a boolean"},
        BadCase{R"(+{"stream": "yes"})", "stream", R"(must be a boolean, got "yes")"},
        BadCase{R"(+{"stream_options": {"include_usage": true}})", "stream_options",
                "only allowed when 'stream' is true"},
        BadCase{R"(+{"stream": true, "stream_options": 5})", "stream_options", "must be an object"},
        BadCase{R"(+{"stream": true, "stream_options": {"include_usage": "yes"}})",
                "stream_options.include_usage", "must be a boolean"},
        BadCase{R"(+{"n": 0})", "n", "'n' must be an integer between 1 and 128, got 0"},
        BadCase{R"(+{"n": 129})", "n", "between 1 and 128, got 129"},
        BadCase{R"(+{"n": -1})", "n", "got -1"}, BadCase{R"(+{"n": 1.5})", "n", "got 1.5"},
        BadCase{R"(+{"n": "2"})", "n", R"(got "2")"}, BadCase{R"(+{"n": true})", "n", "got true"},
        BadCase{R"(+{"stop": 5})", "stop", "must be a string or an array of strings"},
        BadCase{R"(+{"stop": ["a", 1]})", "stop", "must be a string or an array of strings"},
        BadCase{R"(+{"stop": ["a", "b", "c", "d", "e"]})", "stop", "at most 4 strings, got 5"},
        BadCase{R"(+{"stop": ["a", ""]})", "stop", "'stop[1]' must not be empty"},
        BadCase{R"(+{"stop_token_ids": 5})", "stop_token_ids", "must be an array of token ids"},
        BadCase{R"(+{"stop_token_ids": [1, -2]})", "stop_token_ids",
                "'stop_token_ids[1]' must be a token id (a non-negative integer), got -2"},
        BadCase{R"(+{"stop_token_ids": ["1"]})", "stop_token_ids", R"(got "1")"},
        BadCase{R"(+{"logprobs": 1})", "logprobs", "must be a boolean"},
        BadCase{R"(+{"top_logprobs": 2})", "top_logprobs", "requires 'logprobs' to be true"},
        BadCase{R"(+{"logprobs": true, "top_logprobs": 21})", "top_logprobs",
                "between 0 and 20, got 21"},
        BadCase{R"(+{"logprobs": true, "top_logprobs": -1})", "top_logprobs", "got -1"},
        BadCase{R"(+{"logprobs": true, "top_logprobs": "3"})", "top_logprobs",
                "must be an integer"},
        BadCase{R"(+{"presence_penalty": 2.5})", "presence_penalty", "between -2 and 2, got 2.5"},
        BadCase{R"(+{"presence_penalty": "x"})", "presence_penalty", "must be a number"},
        BadCase{R"(+{"frequency_penalty": -3})", "frequency_penalty", "between -2 and 2, got -3"},
        BadCase{R"(+{"repetition_penalty": 0})", "repetition_penalty", "greater than 0, got 0"},
        BadCase{R"(+{"repetition_penalty": -1.5})", "repetition_penalty", "got -1.5"},
        BadCase{R"(+{"repetition_penalty": true})", "repetition_penalty", "got true"},
        BadCase{R"(+{"min_p": 1.5})", "min_p", "between 0 and 1, got 1.5"},
        BadCase{R"(+{"min_p": -0.1})", "min_p", "got -0.1"},
        BadCase{R"(+{"logit_bias": [1, 2]})", "logit_bias", "must be an object"},
        BadCase{R"(+{"logit_bias": {"abc": 1}})", "logit_bias", R"(must be token ids)"},
        BadCase{R"(+{"logit_bias": {"-5": 1}})", "logit_bias", R"(got "-5")"},
        BadCase{R"(+{"logit_bias": {"99999999999": 1}})", "logit_bias", "must be token ids"},
        BadCase{R"(+{"logit_bias": {"50256": -101}})", "logit_bias",
                "between -100 and 100, got -101 for token 50256"},
        BadCase{R"(+{"logit_bias": {"7": "big"}})", "logit_bias", R"(got "big" for token 7)"},
        BadCase{R"(+{"tools": [{"type": "function"}]})", "tools", "is not supported yet"},
        BadCase{R"(+{"tool_choice": "required"})", "tool_choice", "is not supported yet"},
        BadCase{R"(+{"response_format": {"type": "json_object"}})", "response_format",
                "is not supported yet"}));

TEST(ChatCompletionRequestTest, BodyMustBeAnObject) {
  auto request = ParseChatCompletionRequest(Json::parse("[1, 2]"));
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(request.status().message()), HasSubstr("must be a JSON object"));
  EXPECT_FALSE(ParamOf(request.status()).has_value());
}

TEST(ChatCompletionRequestTest, LongValuesAreCutInMessages) {
  const std::string long_value(500, 'x');
  Json body = Json::parse(kMinimal);
  body["temperature"] = long_value;
  auto request = ParseChatCompletionRequest(body);
  ASSERT_FALSE(request.ok());
  EXPECT_LT(request.status().message().size(), 200u);
  EXPECT_THAT(std::string(request.status().message()), HasSubstr("..."));
}

CompletionMeta Meta() { return CompletionMeta{"chatcmpl-abc", 1700000000, "smol", "fp_test"}; }

TEST(ChatCompletionResponseTest, Shape) {
  const Json response = ChatCompletionJson(Meta(), {{"Hello!", "stop"}}, Usage{12, 3});
  EXPECT_EQ(response, Json::parse(R"({
      "id": "chatcmpl-abc", "object": "chat.completion", "created": 1700000000,
      "model": "smol", "system_fingerprint": "fp_test",
      "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
                   "logprobs": null, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}})"));
}

TEST(ChatCompletionResponseTest, SeveralChoicesAreIndexedInOrder) {
  const Json logprobs = ChatLogprobsJson({});
  const Json response = ChatCompletionJson(
      Meta(), {{"Hi", "stop", logprobs}, {"Hello th", "length", logprobs}}, Usage{12, 5});
  EXPECT_EQ(response["choices"], Json::parse(R"([
      {"index": 0, "message": {"role": "assistant", "content": "Hi"},
       "logprobs": {"content": []}, "finish_reason": "stop"},
      {"index": 1, "message": {"role": "assistant", "content": "Hello th"},
       "logprobs": {"content": []}, "finish_reason": "length"}])"));
  EXPECT_EQ(response["usage"], Json::parse(R"({"prompt_tokens": 12, "completion_tokens": 5,
                                               "total_tokens": 17})"));
}

TEST(ChatCompletionChunkTest, ShapesWithoutUsage) {
  const ChatCompletionChunkBuilder chunks(Meta(), /*include_usage=*/false);
  const Json head = Json::parse(R"({"id": "chatcmpl-abc", "object": "chat.completion.chunk",
      "created": 1700000000, "model": "smol", "system_fingerprint": "fp_test"})");
  Json expected = head;
  expected["choices"] = Json::parse(
      R"([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null,
           "finish_reason": null}])");
  EXPECT_EQ(chunks.RoleChunk(0), expected);
  expected["choices"] = Json::parse(
      R"([{"index": 0, "delta": {"content": "Hel"}, "logprobs": null, "finish_reason": null}])");
  EXPECT_EQ(chunks.ContentChunk(0, "Hel"), expected);
  expected["choices"] =
      Json::parse(R"([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "length"}])");
  EXPECT_EQ(chunks.FinishChunk(0, "length"), expected);
}

TEST(ChatCompletionChunkTest, EveryChunkNamesItsChoice) {
  const ChatCompletionChunkBuilder chunks(Meta(), /*include_usage=*/false);
  EXPECT_EQ(chunks.RoleChunk(2)["choices"], Json::parse(R"([{"index": 2,
      "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}])"));
  EXPECT_EQ(chunks.ContentChunk(1, "x")["choices"], Json::parse(R"([{"index": 1,
      "delta": {"content": "x"}, "logprobs": null, "finish_reason": null}])"));
  EXPECT_EQ(chunks.FinishChunk(3, "stop")["choices"], Json::parse(R"([{"index": 3,
      "delta": {}, "logprobs": null, "finish_reason": "stop"}])"));
}

TEST(ChatCompletionResponseTest, LogprobsShape) {
  ChatTokenLogprob token{"H\xC3\xA9", "H\xC3\xA9", -0.25f, {}};
  token.top_logprobs = {{"H\xC3\xA9", "H\xC3\xA9", -0.25f},
                        {"\xEF\xBF\xBD", "\xE2\x82", -std::numeric_limits<float>::infinity()}};
  const Json logprobs = ChatLogprobsJson({token});
  EXPECT_EQ(logprobs, Json::parse(R"({"content": [{"token": "H\u00e9", "logprob": -0.25,
      "bytes": [72, 195, 169], "top_logprobs": [
          {"token": "H\u00e9", "logprob": -0.25, "bytes": [72, 195, 169]},
          {"token": "\ufffd", "logprob": -9999.0, "bytes": [226, 130]}]}]})"));
  const Json response = ChatCompletionJson(Meta(), {{"H\xC3\xA9", "stop", logprobs}}, Usage{1, 1});
  EXPECT_EQ(response["choices"][0]["logprobs"], logprobs);
  const ChatCompletionChunkBuilder chunks(Meta(), false);
  EXPECT_EQ(chunks.ContentChunk(0, "H\xC3\xA9", logprobs)["choices"][0]["logprobs"], logprobs);
  EXPECT_EQ(ChatLogprobsJson({}), Json::parse(R"({"content": []})"));
}

TEST(ChatCompletionChunkTest, UsageChunkAndNullUsageElsewhere) {
  const ChatCompletionChunkBuilder chunks(Meta(), /*include_usage=*/true);
  EXPECT_TRUE(chunks.RoleChunk(0).contains("usage"));
  EXPECT_TRUE(chunks.RoleChunk(0)["usage"].is_null());
  EXPECT_TRUE(chunks.ContentChunk(0, "x")["usage"].is_null());
  EXPECT_TRUE(chunks.FinishChunk(0, "stop")["usage"].is_null());
  EXPECT_EQ(chunks.UsageChunk(Usage{4, 2}), Json::parse(R"({
      "id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 1700000000,
      "model": "smol", "system_fingerprint": "fp_test", "choices": [],
      "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}})"));
  EXPECT_FALSE(ChatCompletionChunkBuilder(Meta(), false).RoleChunk(0).contains("usage"));
}

TEST(SseTest, Framing) {
  EXPECT_EQ(SseEvent(Json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
  // A newline inside content is escaped by JSON, so one event stays one "data:" line.
  EXPECT_EQ(SseEvent(Json{{"c", "x\ny"}}), "data: {\"c\":\"x\\ny\"}\n\n");
}

}  // namespace
}  // namespace moeserve::proto
