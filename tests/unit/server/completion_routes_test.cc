#include "server/completion_routes.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "engine/request.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/model_routes.h"
#include "server/tokenize_routes.h"
#include "tests/unit/server/fake_engine.h"

namespace moeserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

constexpr int32_t T(char c) { return static_cast<unsigned char>(c) + 10; }  // FakeTokenizer id

HttpRequest Request(const std::string& path, const std::string& body, bool connected = true) {
  HttpRequest request;
  request.method = "POST";
  request.path = path;
  request.body = body;
  request.client_connected = [connected] { return connected; };
  return request;
}

class CompletionRoutesTest : public ::testing::Test {
 protected:
  CompletionRoutesTest()
      : handler_(&engine_, ServedModel{"smol", kMaxModelLen, 1700000000}, absl::Milliseconds(5)) {}

  HttpResponse Post(const std::string& body, bool connected = true) {
    return handler_.Handle(Request("/v1/completions", body, connected));
  }

  // Pulls a streamed response to its end and parses its SSE data payloads; "[DONE]" is
  // kept as the string "[DONE]".
  static std::vector<Json> Drain(const HttpResponse& response) {
    EXPECT_EQ(response.content_type, "text/event-stream");
    std::string all;
    for (int i = 0; i < 1000; ++i) {
      if (!response.stream->next(&all)) break;
    }
    std::vector<Json> events;
    for (absl::string_view event : absl::StrSplit(all, "\n\n", absl::SkipEmpty())) {
      EXPECT_THAT(std::string(event), StartsWith("data: "));
      const std::string data(event.substr(6));
      events.push_back(data == "[DONE]" ? Json("[DONE]") : Json::parse(data));
    }
    return events;
  }

  static Json ErrorOf(const HttpResponse& response) { return Json::parse(response.body)["error"]; }

  FakeEngine engine_;
  CompletionHandler handler_;
};

TEST_F(CompletionRoutesTest, Completes) {
  engine_.script = {Output("Hel", 1), Output("lo", 2, FinishReason::kStop)};
  const HttpResponse response = Post(R"({"model": "smol", "prompt": "hi"})");
  ASSERT_EQ(response.status, 200) << response.body;
  const Json body = Json::parse(response.body);
  EXPECT_THAT(body["id"].get<std::string>(), StartsWith("cmpl-"));
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["model"], "smol");
  ASSERT_EQ(body["choices"].size(), 1u);
  EXPECT_EQ(
      body["choices"][0],
      Json({{"index", 0}, {"text", "Hello"}, {"logprobs", nullptr}, {"finish_reason", "stop"}}));
  // BOS + "hi": no chat template.
  ASSERT_EQ(engine_.submitted.size(), 1u);
  EXPECT_THAT(engine_.submitted[0].prompt_token_ids, ElementsAre(kBos, T('h'), T('i')));
  EXPECT_EQ(engine_.submitted[0].sampling.max_tokens, 16);
  EXPECT_EQ(engine_.submitted[0].id, body["id"]);
  EXPECT_EQ(body["usage"],
            Json({{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}));
  EXPECT_FALSE(engine_.handles[0]->aborted());
}

TEST_F(CompletionRoutesTest, SamplingParametersReachTheEngine) {
  engine_.script = {Output("x", 1, FinishReason::kStop)};
  ASSERT_EQ(Post(R"({"prompt": "hi", "max_tokens": 5, "temperature": 0.5, "top_p": 0.9,
      "top_k": 4, "min_p": 0.1, "seed": 9, "stop": ["a"], "presence_penalty": 0.5,
      "frequency_penalty": -0.5, "repetition_penalty": 1.2, "logit_bias": {"20": 3}})")
                .status,
            200);
  const SamplingParams& sampling = engine_.submitted[0].sampling;
  EXPECT_EQ(sampling.max_tokens, 5);
  EXPECT_EQ(sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(sampling.top_p, 0.9f);
  EXPECT_EQ(sampling.top_k, 4);
  EXPECT_FLOAT_EQ(sampling.min_p, 0.1f);
  EXPECT_EQ(sampling.seed, 9u);
  EXPECT_THAT(sampling.stop, ElementsAre("a"));
  EXPECT_EQ(sampling.presence_penalty, 0.5f);
  EXPECT_EQ(sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(sampling.repetition_penalty, 1.2f);
  ASSERT_EQ(sampling.logit_bias.size(), 1u);
  EXPECT_FALSE(sampling.logprobs);
}

TEST_F(CompletionRoutesTest, SeveralPromptsTimesNChoices) {
  // Every prompt's handle gets this script: choice 1 finishes first.
  engine_.script = {OfChoice(0, Output("a", 1)), OfChoice(1, Output("b", 1, FinishReason::kStop)),
                    OfChoice(0, Output("c", 2, FinishReason::kLength))};
  const HttpResponse response = Post(R"({"prompt": [[20, 21], [22]], "n": 2})");
  ASSERT_EQ(response.status, 200) << response.body;
  ASSERT_EQ(engine_.submitted.size(), 2u);
  // Token prompts are used as given (no BOS).
  EXPECT_THAT(engine_.submitted[0].prompt_token_ids, ElementsAre(20, 21));
  EXPECT_THAT(engine_.submitted[1].prompt_token_ids, ElementsAre(22));
  EXPECT_EQ(engine_.submitted[0].sampling.n, 2);
  EXPECT_NE(engine_.submitted[0].id, engine_.submitted[1].id);
  const Json body = Json::parse(response.body);
  ASSERT_EQ(body["choices"].size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(body["choices"][i]["index"], i);
    EXPECT_EQ(body["choices"][i]["text"], i % 2 == 0 ? "ac" : "b");
    EXPECT_EQ(body["choices"][i]["finish_reason"], i % 2 == 0 ? "length" : "stop");
  }
  EXPECT_EQ(body["usage"],
            Json({{"prompt_tokens", 3}, {"completion_tokens", 6}, {"total_tokens", 9}}));
}

TEST_F(CompletionRoutesTest, EchoPrependsThePrompt) {
  engine_.script = {Output("!", 1, FinishReason::kStop)};
  Json body = Json::parse(Post(R"({"prompt": "hi", "echo": true})").body);
  EXPECT_EQ(body["choices"][0]["text"], "hi!");
  // Token prompts echo their decoded text.
  body = Json::parse(Post(R"({"prompt": [1, 114, 124], "echo": true})").body);
  EXPECT_EQ(body["choices"][0]["text"], "<s>hr!");
}

RequestOutput WithLogprobs(RequestOutput output, int32_t token, float logprob) {
  output.token_ids.assign(1, token);
  output.logprobs.push_back(TokenLogprob{token, logprob, {{T('J'), -0.125f}, {token, logprob}}});
  return output;
}

TEST_F(CompletionRoutesTest, LogprobsPlainAndStreamed) {
  engine_.script = {WithLogprobs(Output("H", 1), T('H'), -0.5f),
                    WithLogprobs(Output("i", 2, FinishReason::kStop), T('i'), -0.25f)};
  const Json expected = Json::parse(R"({
      "tokens": ["H", "i"], "token_logprobs": [-0.5, -0.25],
      "top_logprobs": [{"J": -0.125, "H": -0.5}, {"J": -0.125, "i": -0.25}],
      "text_offset": [0, 1]})");
  const HttpResponse plain = Post(R"({"prompt": "hi", "logprobs": 2})");
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_TRUE(engine_.submitted[0].sampling.logprobs);
  EXPECT_EQ(engine_.submitted[0].sampling.top_logprobs, 2);
  EXPECT_EQ(Json::parse(plain.body)["choices"][0]["logprobs"], expected);

  // Streamed, the outputs that piled up in the handle come as one chunk.
  std::vector<Json> events = Drain(Post(R"({"prompt": "hi", "logprobs": 2, "stream": true})"));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["choices"][0]["logprobs"], expected);
  EXPECT_EQ(events[1], "[DONE]");

  // Outputs that do come apart continue each other's offsets.
  engine_.script = {OfChoice(0, WithLogprobs(Output("H", 1), T('H'), -0.5f)),
                    OfChoice(1, WithLogprobs(Output("Q", 1, FinishReason::kStop), T('Q'), -1.0f)),
                    OfChoice(0, WithLogprobs(Output("i", 2, FinishReason::kStop), T('i'), -0.25f))};
  events = Drain(Post(R"({"prompt": "hi", "n": 2, "logprobs": 2, "stream": true})"));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0]["choices"][0]["logprobs"]["text_offset"], Json({0}));
  EXPECT_EQ(events[1]["choices"][0]["index"], 1);
  EXPECT_EQ(events[1]["choices"][0]["logprobs"]["text_offset"], Json({0}));
  EXPECT_EQ(events[2]["choices"][0]["index"], 0);
  EXPECT_EQ(events[2]["choices"][0]["logprobs"]["text_offset"], Json({1}));
  EXPECT_EQ(events[2]["choices"][0]["logprobs"]["tokens"], Json({"i"}));
  EXPECT_EQ(events[2]["choices"][0]["finish_reason"], "stop");
}

TEST_F(CompletionRoutesTest, NoLogprobsFieldsUnlessAsked) {
  engine_.script = {WithLogprobs(Output("H", 1, FinishReason::kStop), T('H'), -0.5f)};
  EXPECT_TRUE(Json::parse(Post(R"({"prompt": "hi"})").body)["choices"][0]["logprobs"].is_null());
}

TEST_F(CompletionRoutesTest, StreamsSeveralPromptsWithUsage) {
  engine_.script = {OfChoice(0, Output("a", 1)), OfChoice(1, Output("b", 1, FinishReason::kStop)),
                    OfChoice(0, Output("c", 2, FinishReason::kLength))};
  const HttpResponse response = Post(
      R"({"prompt": ["x", "yz"], "n": 2, "stream": true, "echo": true,
          "stream_options": {"include_usage": true}})");
  ASSERT_EQ(response.status, 200) << response.body;
  const std::vector<Json> events = Drain(response);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  const Json& usage = events[events.size() - 2];
  EXPECT_EQ(usage["choices"], Json::array());
  // BOS + "x", BOS + "yz"; three tokens per prompt's two choices.
  EXPECT_EQ(usage["usage"],
            Json({{"prompt_tokens", 5}, {"completion_tokens", 6}, {"total_tokens", 11}}));
  std::vector<std::string> texts(4);
  std::vector<std::string> finish(4);
  for (size_t e = 0; e + 2 < events.size(); ++e) {
    const Json& chunk = events[e];
    EXPECT_EQ(chunk["object"], "text_completion");
    EXPECT_TRUE(chunk.contains("usage") && chunk["usage"].is_null());
    ASSERT_EQ(chunk["choices"].size(), 1u);
    const int index = chunk["choices"][0]["index"];
    ASSERT_TRUE(index >= 0 && index < 4);
    EXPECT_TRUE(finish[index].empty()) << "a chunk after the choice's finish";
    texts[index] += chunk["choices"][0]["text"].get<std::string>();
    if (!chunk["choices"][0]["finish_reason"].is_null())
      finish[index] = chunk["choices"][0]["finish_reason"];
  }
  EXPECT_THAT(texts, ElementsAre("xac", "xb", "yzac", "yzb"));
  EXPECT_THAT(finish, ElementsAre("length", "stop", "length", "stop"));
}

TEST_F(CompletionRoutesTest, EngineErrorEndsTheStreamWithAnErrorEvent) {
  RequestOutput failed = Output("", 0);
  failed.error = absl::InternalError("boom");
  engine_.script = {Output("a", 1), failed};
  const std::vector<Json> events = Drain(Post(R"({"prompt": "hi", "stream": true})"));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["choices"][0]["text"], "a");
  EXPECT_TRUE(events[1].contains("error"));
  EXPECT_TRUE(engine_.handles[0]->aborted());
}

TEST_F(CompletionRoutesTest, DisconnectAbortsEveryPrompt) {
  const HttpResponse response = Post(R"({"prompt": ["a", "b"]})", /*connected=*/false);
  EXPECT_EQ(response.status, 503);
  ASSERT_EQ(engine_.handles.size(), 2u);
  EXPECT_TRUE(engine_.handles[0]->aborted());
  EXPECT_TRUE(engine_.handles[1]->aborted());
}

TEST_F(CompletionRoutesTest, DisconnectAbortsAStream) {
  HttpResponse response = Post(R"({"prompt": ["a", "b"], "stream": true})");
  ASSERT_TRUE(response.stream != nullptr);
  response.stream->on_client_gone();
  EXPECT_TRUE(engine_.handles[0]->aborted());
  EXPECT_TRUE(engine_.handles[1]->aborted());
}

TEST_F(CompletionRoutesTest, BadRequests) {
  const std::string long_prompt(kMaxModelLen, 'a');
  HttpResponse response = Post(Json({{"prompt", long_prompt}}).dump());
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(ErrorOf(response)["param"], "prompt");
  // BOS + 64 bytes + the 16 default tokens.
  EXPECT_THAT(ErrorOf(response)["message"].get<std::string>(),
              HasSubstr("maximum context length is 64 tokens. However, you requested 81 tokens "
                        "(65 in the prompt, 16 in the completion)"));

  response = Post(R"({"prompt": [5, 266]})");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(ErrorOf(response)["param"], "prompt");

  response = Post(R"({"prompt": "hi", "suffix": "x"})");
  EXPECT_EQ(response.status, 400);
  EXPECT_THAT(ErrorOf(response)["message"].get<std::string>(), HasSubstr("not supported"));

  response = Post(R"({"prompt": "hi", "model": "other"})");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(ErrorOf(response)["code"], "model_not_found");

  response = Post(R"({"prompt": "hi", "logit_bias": {"266": 1}})");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(ErrorOf(response)["param"], "logit_bias");

  response = Post("{not json");
  EXPECT_EQ(response.status, 400);
  EXPECT_TRUE(engine_.submitted.empty());
}

TEST_F(CompletionRoutesTest, SubmitErrorsMapToHttp) {
  engine_.submit_error = absl::UnavailableError("shutting down");
  EXPECT_EQ(Post(R"({"prompt": "hi"})").status, 503);
}

class TokenizeRoutesTest : public ::testing::Test {
 protected:
  TokenizeRoutesTest() : handler_(&engine_, ServedModel{"smol", kMaxModelLen, 1700000000}) {}

  FakeEngine engine_;
  TokenizeHandler handler_;
};

TEST_F(TokenizeRoutesTest, TokenizesAPrompt) {
  HttpResponse response = handler_.Tokenize(Request("/tokenize", R"({"prompt": "hi"})"));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(
      Json::parse(response.body),
      Json({{"count", 3}, {"max_model_len", kMaxModelLen}, {"tokens", {kBos, T('h'), T('i')}}}));
  response = handler_.Tokenize(
      Request("/tokenize", R"({"prompt": "hi", "add_special_tokens": false, "model": "smol"})"));
  EXPECT_EQ(Json::parse(response.body)["tokens"], Json({T('h'), T('i')}));
}

TEST_F(TokenizeRoutesTest, TokenizesMessagesAsTheChatRouteDoes) {
  const HttpResponse response = handler_.Tokenize(
      Request("/tokenize", R"({"messages": [{"role": "user", "content": "x"}]})"));
  ASSERT_EQ(response.status, 200) << response.body;
  std::vector<int32_t> expected = {kBos};
  for (const char c : std::string("<user>x<assistant>")) expected.push_back(T(c));
  EXPECT_EQ(Json::parse(response.body)["tokens"], Json(expected));
  const HttpResponse no_prompt = handler_.Tokenize(Request(
      "/tokenize",
      R"({"messages": [{"role": "user", "content": "x"}], "add_generation_prompt": false})"));
  EXPECT_EQ(Json::parse(no_prompt.body)["count"], 1 + 7);
}

TEST_F(TokenizeRoutesTest, DetokenizesAndRejectsBadIds) {
  HttpResponse response = handler_.Detokenize(
      Request("/detokenize", Json({{"tokens", {kBos, T('h'), T('i')}}}).dump()));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(Json::parse(response.body), Json({{"prompt", "<s>hi"}}));
  response = handler_.Detokenize(Request("/detokenize", R"({"tokens": [266]})"));
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(Json::parse(response.body)["error"]["param"], "tokens");
  response = handler_.Detokenize(Request("/detokenize", R"({"tokens": [-3]})"));
  EXPECT_EQ(response.status, 400);
  response = handler_.Tokenize(Request("/tokenize", R"({"prompt": 5})"));
  EXPECT_EQ(response.status, 400);
  response = handler_.Tokenize(Request("/tokenize", R"({"prompt": "a", "model": "other"})"));
  EXPECT_EQ(response.status, 404);
}

}  // namespace
}  // namespace moeserve
