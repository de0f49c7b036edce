#include "server/chat_routes.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "engine/request.h"
#include "engine/request_handle.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/model_routes.h"
#include "tests/unit/server/fake_engine.h"

namespace moeserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

class ChatRoutesTest : public ::testing::Test {
 protected:
  ChatRoutesTest()
      : handler_(&engine_, ServedModel{"smol", kMaxModelLen, 1700000000}, absl::Milliseconds(5)) {}

  HttpResponse Post(const std::string& body, bool connected = true) {
    HttpRequest request;
    request.method = "POST";
    request.path = "/v1/chat/completions";
    request.body = body;
    request.client_connected = [connected] { return connected; };
    return handler_.Handle(request);
  }

  // Pulls a streamed response to its end and splits it into SSE data payloads.
  static std::vector<std::string> Drain(const HttpResponse& response) {
    std::string all;
    for (int i = 0; i < 1000; ++i) {
      if (!response.stream->next(&all)) break;
    }
    std::vector<std::string> events;
    for (absl::string_view event : absl::StrSplit(all, "\n\n", absl::SkipEmpty())) {
      EXPECT_THAT(std::string(event), StartsWith("data: "));
      events.emplace_back(std::string(event.substr(6)));
    }
    return events;
  }

  static Json ErrorOf(const HttpResponse& response) {
    EXPECT_EQ(response.content_type, "application/json");
    return Json::parse(response.body)["error"];
  }

  FakeEngine engine_;
  ChatCompletionHandler handler_;
};

constexpr char kHello[] = R"({"model": "smol", "messages": [{"role": "user", "content": "hi"}]})";

// Tokens arriving faster than the poll interval must not hide a client that left.
TEST(ChatRoutesDisconnectTest, PlainRequestOfAGoneClientIsAbortedWhileTokensFlow) {
  FakeEngine engine;
  std::thread producer;
  std::atomic<int> pushed{0};
  engine.on_submit = [&](std::shared_ptr<RequestHandle> handle) {
    producer = std::thread([handle, &pushed] {
      for (int i = 1; i <= 5000 && !handle->aborted(); ++i) {
        handle->Push(Output("x", i));
        pushed.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  };
  ChatCompletionHandler handler(&engine, ServedModel{"smol", kMaxModelLen, 1700000000},
                                absl::Milliseconds(5));
  HttpRequest request;
  request.method = "POST";
  request.path = "/v1/chat/completions";
  request.body = R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 40})";
  request.client_connected = [] { return false; };
  const HttpResponse response = handler.Handle(request);
  producer.join();
  EXPECT_EQ(response.status, 503);
  ASSERT_EQ(engine.handles.size(), 1u);
  EXPECT_TRUE(engine.handles[0]->aborted());
  EXPECT_LT(pushed.load(), 5000);
}
// "<user>hi<assistant>": 19 bytes, plus BOS.
constexpr int32_t kHelloPromptTokens = 20;

TEST_F(ChatRoutesTest, Completes) {
  engine_.script = {Output("Hel", 1), Output("lo!", 2, FinishReason::kStop)};
  const HttpResponse response = Post(R"({"model": "smol", "temperature": 0.5, "top_p": 0.9,
      "top_k": 7, "seed": 3, "messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.stream, nullptr);
  const Json body = Json::parse(response.body);
  EXPECT_THAT(body["id"].get<std::string>(), StartsWith("chatcmpl-"));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["model"], "smol");
  EXPECT_EQ(body["choices"][0]["message"], Json({{"role", "assistant"}, {"content", "Hello!"}}));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"], Json({{"prompt_tokens", kHelloPromptTokens},
                                 {"completion_tokens", 2},
                                 {"total_tokens", kHelloPromptTokens + 2}}));

  ASSERT_EQ(engine_.submitted.size(), 1u);
  const Request& request = engine_.submitted[0];
  EXPECT_EQ(request.id, body["id"]);
  const std::string prompt = "<user>hi<assistant>";
  ASSERT_EQ(request.prompt_token_ids.size(), prompt.size() + 1);
  EXPECT_EQ(request.prompt_token_ids[0], kBos);
  EXPECT_EQ(request.prompt_token_ids[1], '<' + 10);
  EXPECT_EQ(request.sampling.temperature, 0.5f);
  EXPECT_EQ(request.sampling.top_p, 0.9f);
  EXPECT_EQ(request.sampling.top_k, 7);
  EXPECT_EQ(request.sampling.seed, 3u);
  EXPECT_EQ(request.sampling.max_tokens, kMaxModelLen - kHelloPromptTokens)
      << "default: until the context is full";
  EXPECT_FALSE(engine_.handles[0]->aborted());
}

TEST_F(ChatRoutesTest, ModelMayBeOmittedAndMaxTokensIsPassed) {
  engine_.script = {Output("x", 1, FinishReason::kLength)};
  const HttpResponse response =
      Post(R"({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(Json::parse(response.body)["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(engine_.submitted[0].sampling.max_tokens, 5);
}

TEST_F(ChatRoutesTest, NoSecondBosWhenTheTemplateWritesOne) {
  engine_.mutable_template().prefix = "<s>";
  engine_.script = {Output("x", 1, FinishReason::kStop)};
  ASSERT_EQ(Post(kHello).status, 200);
  const std::vector<int32_t>& ids = engine_.submitted[0].prompt_token_ids;
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], kBos);
  EXPECT_NE(ids[1], kBos);
}

TEST_F(ChatRoutesTest, Streams) {
  engine_.script = {Output("Hel", 1), Output("lo!", 2, FinishReason::kStop)};
  const HttpResponse response = Post(R"({"model": "smol", "stream": true,
      "stream_options": {"include_usage": true},
      "messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.content_type, "text/event-stream");
  ASSERT_NE(response.stream, nullptr);
  const std::vector<std::string> events = Drain(response);
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(events.back(), "[DONE]");

  const Json first = Json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], Json({{"role", "assistant"}, {"content", ""}}));
  std::string content;
  for (size_t i = 1; i + 3 < events.size(); ++i) {
    const Json chunk = Json::parse(events[i]);
    EXPECT_EQ(chunk["id"], first["id"]);
    EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
    EXPECT_TRUE(chunk["usage"].is_null());
    content += chunk["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(content, "Hello!");
  const Json finish = Json::parse(events[events.size() - 3]);
  EXPECT_EQ(finish["choices"][0]["delta"], Json::object());
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "stop");
  const Json usage = Json::parse(events[events.size() - 2]);
  EXPECT_EQ(usage["choices"], Json::array());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 2);
  EXPECT_EQ(usage["usage"]["prompt_tokens"], kHelloPromptTokens);
  EXPECT_FALSE(engine_.handles[0]->aborted());
}

TEST_F(ChatRoutesTest, CompletesSeveralChoices) {
  // The choices' outputs interleave; choice 1 finishes first.
  engine_.script = {OfChoice(0, Output("He", 1)), OfChoice(1, Output("Bye", 1)),
                    OfChoice(1, Output("!", 2, FinishReason::kStop)), OfChoice(0, Output("llo", 2)),
                    OfChoice(0, Output(" you", 3, FinishReason::kLength))};
  const HttpResponse response =
      Post(R"({"n": 2, "seed": 5, "messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(engine_.submitted[0].sampling.n, 2);
  const Json body = Json::parse(response.body);
  ASSERT_EQ(body["choices"].size(), 2u);
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["message"]["content"], "Hello you");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["choices"][1]["index"], 1);
  EXPECT_EQ(body["choices"][1]["message"]["content"], "Bye!");
  EXPECT_EQ(body["choices"][1]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"], Json({{"prompt_tokens", kHelloPromptTokens},
                                 {"completion_tokens", 5},
                                 {"total_tokens", kHelloPromptTokens + 5}}));
  EXPECT_FALSE(engine_.handles[0]->aborted());
}

TEST_F(ChatRoutesTest, StreamsSeveralChoices) {
  engine_.script = {OfChoice(1, Output("Bye", 1)), OfChoice(0, Output("He", 1)),
                    OfChoice(1, Output("!", 2, FinishReason::kStop)),
                    OfChoice(0, Output("llo", 2, FinishReason::kLength))};
  const HttpResponse response = Post(R"({"n": 2, "stream": true,
      "stream_options": {"include_usage": true},
      "messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_EQ(response.status, 200) << response.body;
  const std::vector<std::string> events = Drain(response);
  // 2 role chunks, 4 content chunks, 2 finish chunks, usage, [DONE].
  ASSERT_EQ(events.size(), 10u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string content[2];
  std::string finish[2];
  int roles[2] = {0, 0};
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const Json chunk = Json::parse(events[i]);
    ASSERT_EQ(chunk["choices"].size(), 1u) << events[i];
    const Json& choice = chunk["choices"][0];
    const int index = choice["index"].get<int>();
    ASSERT_TRUE(index == 0 || index == 1) << events[i];
    EXPECT_TRUE(finish[index].empty()) << "a chunk after choice " << index << " finished";
    if (i < 2) {
      EXPECT_EQ(index, static_cast<int>(i)) << "the role chunks come first, in order";
      EXPECT_EQ(choice["delta"]["role"], "assistant");
      ++roles[index];
    } else if (!choice["finish_reason"].is_null()) {
      finish[index] = choice["finish_reason"].get<std::string>();
    } else {
      content[index] += choice["delta"]["content"].get<std::string>();
    }
  }
  EXPECT_EQ(roles[0], 1);
  EXPECT_EQ(roles[1], 1);
  EXPECT_EQ(content[0], "Hello");
  EXPECT_EQ(content[1], "Bye!");
  EXPECT_EQ(finish[0], "length");
  EXPECT_EQ(finish[1], "stop");
  const Json usage = Json::parse(events[events.size() - 2]);
  EXPECT_EQ(usage["choices"], Json::array());
  EXPECT_EQ(usage["usage"]["prompt_tokens"], kHelloPromptTokens);
  EXPECT_EQ(usage["usage"]["completion_tokens"], 4);
  EXPECT_FALSE(engine_.handles[0]->aborted());
}

// Token 'H' + 10 with two alternatives; logprobs are in OpenAI's chat shape.
RequestOutput WithLogprobs(RequestOutput output, int32_t token, float logprob) {
  output.token_ids.assign(1, token);
  output.logprobs.push_back(TokenLogprob{token, logprob, {{token, logprob}, {'J' + 10, -2.0f}}});
  return output;
}

TEST_F(ChatRoutesTest, SamplingParametersReachTheEngine) {
  engine_.script = {Output("x", 1, FinishReason::kStop)};
  ASSERT_EQ(Post(R"({"messages": [{"role": "user", "content": "hi"}], "stop": ["a", "bc"],
      "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.2,
      "min_p": 0.1, "logit_bias": {"265": -100}, "logprobs": true, "top_logprobs": 3,
      "stop_token_ids": [12, 13]})")
                .status,
            200);
  const SamplingParams& sampling = engine_.submitted[0].sampling;
  EXPECT_EQ(sampling.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(sampling.stop_token_ids, (std::vector<int32_t>{12, 13}));
  EXPECT_EQ(sampling.presence_penalty, 0.5f);
  EXPECT_EQ(sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(sampling.repetition_penalty, 1.2f);
  EXPECT_EQ(sampling.min_p, 0.1f);
  EXPECT_EQ(sampling.logit_bias, (std::vector<std::pair<int32_t, float>>{{265, -100.0f}}));
  EXPECT_TRUE(sampling.logprobs);
  EXPECT_EQ(sampling.top_logprobs, 3);
}

TEST_F(ChatRoutesTest, LogprobsPlainAndStreamed) {
  engine_.script = {WithLogprobs(Output("H", 1), 'H' + 10, -0.5f),
                    WithLogprobs(Output("", 2, FinishReason::kStop), 'i' + 10, -0.25f)};
  const Json expected = Json::parse(R"([
      {"token": "H", "logprob": -0.5, "bytes": [72],
       "top_logprobs": [{"token": "H", "logprob": -0.5, "bytes": [72]},
                        {"token": "J", "logprob": -2.0, "bytes": [74]}]},
      {"token": "i", "logprob": -0.25, "bytes": [105],
       "top_logprobs": [{"token": "i", "logprob": -0.25, "bytes": [105]},
                        {"token": "J", "logprob": -2.0, "bytes": [74]}]}])");
  const HttpResponse plain = Post(R"({"messages": [{"role": "user", "content": "hi"}],
      "logprobs": true, "top_logprobs": 2})");
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(Json::parse(plain.body)["choices"][0]["logprobs"]["content"], expected);

  // Streamed: outputs that pile up are merged with their logprobs.
  std::vector<std::string> events = Drain(Post(R"({"stream": true,
      "messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 2})"));
  ASSERT_EQ(events.size(), 4u);  // role, "Hi" with two logprobs, finish, [DONE]
  EXPECT_TRUE(Json::parse(events[0])["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(Json::parse(events[1])["choices"][0]["logprobs"]["content"], expected);
  EXPECT_TRUE(Json::parse(events[2])["choices"][0]["logprobs"].is_null());

  // A token whose text is held back (e.g. part of a stop string) still sends its logprobs.
  engine_.script = {WithLogprobs(Output("", 1), 'i' + 10, -0.25f)};
  const HttpResponse response = Post(R"({"stream": true,
      "messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 2})");
  std::string role, held;
  ASSERT_TRUE(response.stream->next(&role));
  ASSERT_TRUE(response.stream->next(&held));
  const Json chunk = Json::parse(held.substr(6))["choices"][0];
  EXPECT_EQ(chunk["delta"]["content"], "");
  EXPECT_EQ(chunk["logprobs"]["content"], Json::array({expected[1]}));
  engine_.handles.back()->Push(Output("", 1, FinishReason::kStop));
  events = Drain(response);
  EXPECT_EQ(events.size(), 2u);  // finish, [DONE]
}

TEST_F(ChatRoutesTest, NoLogprobsUnlessAsked) {
  engine_.script = {Output("x", 1, FinishReason::kStop)};
  const HttpResponse plain = Post(kHello);
  EXPECT_TRUE(Json::parse(plain.body)["choices"][0]["logprobs"].is_null());
}

TEST_F(ChatRoutesTest, StreamWithoutUsage) {
  engine_.script = {Output("ok", 1, FinishReason::kLength)};
  const std::vector<std::string> events = Drain(Post(R"({"stream": true,
      "messages": [{"role": "user", "content": "hi"}]})"));
  ASSERT_EQ(events.size(), 4u);  // role, content, finish, [DONE]
  EXPECT_FALSE(Json::parse(events[1]).contains("usage"));
  EXPECT_EQ(Json::parse(events[2])["choices"][0]["finish_reason"], "length");
}

TEST_F(ChatRoutesTest, EngineErrorEndsTheStreamWithAnErrorEvent) {
  RequestOutput failed = Output("", 1);
  failed.error = absl::InternalError("device lost");
  engine_.script = {Output("a", 1), failed};
  const std::vector<std::string> events =
      Drain(Post(R"({"stream": true, "messages": [{"role": "user", "content": "hi"}]})"));
  ASSERT_FALSE(events.empty());
  const Json last = Json::parse(events.back());
  EXPECT_EQ(last["error"]["message"], "device lost");
  EXPECT_EQ(last["error"]["type"], "server_error");
}

TEST_F(ChatRoutesTest, EngineErrorWithoutStreamIs500) {
  RequestOutput failed = Output("", 0);
  failed.error = absl::InternalError("device lost");
  engine_.script = {failed};
  const HttpResponse response = Post(kHello);
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(ErrorOf(response)["message"], "device lost");
}

TEST_F(ChatRoutesTest, DisconnectAbortsAWaitingRequest) {
  const HttpResponse response = Post(kHello, /*connected=*/false);
  EXPECT_EQ(response.status, 503);
  ASSERT_EQ(engine_.handles.size(), 1u);
  EXPECT_TRUE(engine_.handles[0]->aborted());
}

TEST_F(ChatRoutesTest, DisconnectAbortsAStream) {
  HttpResponse response =
      Post(R"({"stream": true, "messages": [{"role": "user", "content": "hi"}]})");
  std::string out;
  EXPECT_TRUE(response.stream->next(&out));  // role chunk
  EXPECT_TRUE(response.stream->next(&out));  // nothing yet
  EXPECT_FALSE(engine_.handles[0]->aborted());
  response.stream->on_client_gone();
  EXPECT_TRUE(engine_.handles[0]->aborted());
}

TEST_F(ChatRoutesTest, DroppingAnUnfinishedStreamAborts) {
  {
    HttpResponse response =
        Post(R"({"stream": true, "messages": [{"role": "user", "content": "hi"}]})");
    ASSERT_NE(response.stream, nullptr);
  }
  EXPECT_TRUE(engine_.handles[0]->aborted());
}

TEST_F(ChatRoutesTest, BadRequests) {
  struct Case {
    const char* body;
    int status;
    const char* param;  // "" for null
    const char* message;
  };
  const Case cases[] = {
      {"{not json", 400, "", "Malformed JSON in request body"},
      {R"({"messages": []})", 400, "messages", "at least one message"},
      {R"({"messages": [{"role": "user", "content": "hi"}], "temperature": 3})", 400, "temperature",
       "between 0 and 2"},
      {R"({"messages": [{"role": "user", "content": "hi"}], "n": 129})", 400, "n",
       "'n' must be an integer between 1 and 128, got 129"},
      {R"({"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"266": 1}})", 400,
       "logit_bias", "token id 266, outside the model's vocabulary [0, 266)"},
      {R"({"messages": [{"role": "user", "content": "hi"}], "stop_token_ids": [300]})", 400,
       "stop_token_ids", "token id 300, outside the model's vocabulary [0, 266)"},
      {R"({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]})", 404, "model",
       "The model `gpt-4` does not exist."},
      {R"({"messages": [{"role": "user", "content": "RAISE"}]})", 400, "messages",
       "Conversation roles must alternate"},
      {R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 45})", 400, "messages",
       "maximum context length is 64 tokens. However, you requested 65 tokens"},
      {R"({"messages": [{"role": "user",
                         "content": "a prompt far too long for a context of 64 tokens"}]})",
       400, "messages", "maximum context length is 64 tokens"},
  };
  for (const Case& c : cases) {
    const HttpResponse response = Post(c.body);
    EXPECT_EQ(response.status, c.status) << c.body;
    const Json error = ErrorOf(response);
    EXPECT_THAT(error["message"].get<std::string>(), HasSubstr(c.message)) << c.body;
    if (*c.param == '\0') {
      EXPECT_TRUE(error["param"].is_null()) << c.body;
    } else {
      EXPECT_EQ(error["param"], c.param) << c.body;
    }
  }
  EXPECT_TRUE(engine_.submitted.empty()) << "nothing reaches the engine";
  EXPECT_EQ(
      ErrorOf(Post(R"({"model": "x", "messages": [{"role": "user", "content": "hi"}]})"))["code"],
      "model_not_found");
}

TEST_F(ChatRoutesTest, SubmitErrorsMapToHttp) {
  engine_.submit_error = absl::UnavailableError("engine is shutting down");
  EXPECT_EQ(Post(kHello).status, 503);
  engine_.submit_error = absl::InvalidArgumentError("bad token id");
  EXPECT_EQ(Post(kHello).status, 400);
}

TEST(ModelRoutesTest, ListAndHealth) {
  const HttpResponse models = HandleListModels(ServedModel{"smol", 2048, 1700000000});
  EXPECT_EQ(models.status, 200);
  EXPECT_EQ(Json::parse(models.body), Json::parse(R"({"object": "list", "data": [{"id": "smol",
      "object": "model", "created": 1700000000, "owned_by": "moeserve",
      "max_model_len": 2048}]})"));
  const HttpResponse health = HandleHealth();
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Json::parse(health.body), Json({{"status", "ok"}}));
}

}  // namespace
}  // namespace moeserve
