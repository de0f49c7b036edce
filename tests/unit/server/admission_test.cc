#include "server/admission.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moeserve {
namespace {

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("sk-secret", "sk-secret"));
  EXPECT_FALSE(ConstantTimeEquals("sk-secret", "sk-secreT"));
  EXPECT_FALSE(ConstantTimeEquals("sk-secret", "sk-secre"));
  EXPECT_FALSE(ConstantTimeEquals("sk-secre", "sk-secret"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  // A shorter string padded with NULs is still not equal.
  EXPECT_FALSE(ConstantTimeEquals("ab", std::string("ab\0", 3)));
}

HttpRequest Get(std::string path, std::string authorization = "") {
  HttpRequest request;
  request.method = "GET";
  request.path = std::move(path);
  if (!authorization.empty()) request.headers["authorization"] = std::move(authorization);
  return request;
}

nlohmann::json ErrorOf(const HttpResponse& response) {
  EXPECT_EQ(response.content_type, "application/json");
  const nlohmann::json body = nlohmann::json::parse(response.body);
  EXPECT_TRUE(body["error"]["message"].is_string()) << response.body;
  return body["error"];
}

TEST(RequestGateTest, WithoutKeyLetsEverythingThrough) {
  const RequestGate gate("");
  EXPECT_FALSE(gate.Check(Get("/v1/models")).has_value());
  EXPECT_FALSE(gate.Check(Get("/v1/chat/completions", "Bearer anything")).has_value());
  EXPECT_FALSE(gate.Check(Get("/health")).has_value());
}

TEST(RequestGateTest, MissingKeyIs401) {
  const RequestGate gate("sk-test");
  for (const char* header : {"", "Bearer ", "Basic c2stdGVzdA==", "sk-test", "Bearersk-test"}) {
    const std::optional<HttpResponse> refusal = gate.Check(Get("/v1/models", header));
    ASSERT_TRUE(refusal.has_value()) << header;
    EXPECT_EQ(refusal->status, 401) << header;
    const nlohmann::json error = ErrorOf(*refusal);
    EXPECT_EQ(error["type"], "invalid_request_error");
    EXPECT_TRUE(error["code"].is_null());
    EXPECT_NE(error["message"].get<std::string>().find("didn't provide an API key"),
              std::string::npos);
  }
}

TEST(RequestGateTest, WrongKeyIs401InvalidApiKey) {
  const RequestGate gate("sk-test");
  for (const char* header : {"Bearer sk-tes", "Bearer sk-test2", "Bearer SK-TEST", "Bearer x"}) {
    const std::optional<HttpResponse> refusal = gate.Check(Get("/v1/chat/completions", header));
    ASSERT_TRUE(refusal.has_value()) << header;
    EXPECT_EQ(refusal->status, 401);
    const nlohmann::json error = ErrorOf(*refusal);
    EXPECT_EQ(error["type"], "invalid_request_error");
    EXPECT_EQ(error["code"], "invalid_api_key");
    // The key the client sent is not echoed back.
    EXPECT_EQ(refusal->body.find(std::string(header).substr(7)), std::string::npos) << header;
  }
}

TEST(RequestGateTest, RightKeyPasses) {
  const RequestGate gate("sk-test");
  // The scheme is case-insensitive (RFC 9110); spaces around the key are not part of it.
  for (const char* header : {"Bearer sk-test", "bearer sk-test", "BEARER  sk-test "}) {
    EXPECT_FALSE(gate.Check(Get("/v1/models", header)).has_value()) << header;
  }
}

TEST(RequestGateTest, HealthAndMetricsNeedNoKey) {
  const RequestGate gate("sk-test");
  EXPECT_FALSE(gate.Check(Get("/health")).has_value());
  EXPECT_FALSE(gate.Check(Get("/metrics", "Bearer wrong")).has_value());
  EXPECT_TRUE(gate.Check(Get("/health/")).has_value());
}

HttpRequest Post(std::string content_type) {
  HttpRequest request;
  request.method = "POST";
  request.path = "/v1/chat/completions";
  if (!content_type.empty()) request.headers["content-type"] = std::move(content_type);
  request.body = "{}";
  return request;
}

TEST(RequestGateTest, PostBodiesMustBeJson) {
  const RequestGate gate("");
  for (const char* type :
       {"application/json", "Application/JSON", "application/json; charset=utf-8", ""}) {
    EXPECT_FALSE(gate.Check(Post(type)).has_value()) << type;
  }
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded",
                           "multipart/form-data; boundary=x", "application/jsonx"}) {
    const std::optional<HttpResponse> refusal = gate.Check(Post(type));
    ASSERT_TRUE(refusal.has_value()) << type;
    EXPECT_EQ(refusal->status, 400);
    EXPECT_NE(ErrorOf(*refusal)["message"].get<std::string>().find("application/json"),
              std::string::npos);
  }
}

TEST(RequestGateTest, DrainingRefusesEverythingWith503) {
  RequestGate gate("sk-test");
  EXPECT_FALSE(gate.draining());
  gate.StartDraining();
  gate.StartDraining();  // idempotent
  EXPECT_TRUE(gate.draining());
  for (const HttpRequest& request :
       {Get("/health"), Get("/v1/models", "Bearer sk-test"), Get("/v1/models")}) {
    const std::optional<HttpResponse> refusal = gate.Check(request);
    ASSERT_TRUE(refusal.has_value()) << request.path;
    EXPECT_EQ(refusal->status, 503);
    EXPECT_EQ(ErrorOf(*refusal)["type"], "service_unavailable_error");
  }
}

// Counts submissions; each one it accepts waits (num_waiting) until Admit() is called.
class WaitingEngine : public Engine {
 public:
  absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(Request request) override {
    // Widen the window between a caller's stats() and its Submit(): without the limiter's
    // lock, every thread of a burst would see the same count.
    std::this_thread::yield();
    waiting_.fetch_add(1);
    submitted_.fetch_add(1);
    return std::make_shared<RequestHandle>(request.id);
  }
  const Tokenizer& tokenizer() const override { std::abort(); }
  const ChatTemplate& chat_template() const override { std::abort(); }
  const ModelInfo& model_info() const override { return info_; }
  EngineStats stats() const override {
    EngineStats stats;
    stats.num_waiting = waiting_.load();
    stats.num_running = 3;  // running requests do not count against the limit
    return stats;
  }
  void Shutdown() override { shut_down_ = true; }

  void Admit() { waiting_.store(0); }
  int submitted() const { return submitted_.load(); }
  bool shut_down() const { return shut_down_; }

 private:
  ModelInfo info_;
  std::atomic<int> waiting_{0};
  std::atomic<int> submitted_{0};
  bool shut_down_ = false;
};

TEST(QueueLimitedEngineTest, RefusesWhileTheQueueIsFull) {
  WaitingEngine engine;
  QueueLimitedEngine limited(&engine, 2);
  EXPECT_TRUE(limited.Submit(Request{"a", {1}, {}}).ok());
  EXPECT_TRUE(limited.Submit(Request{"b", {1}, {}}).ok());
  const absl::StatusOr<std::shared_ptr<RequestHandle>> refused =
      limited.Submit(Request{"c", {1}, {}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("--max-queued-requests 2"), absl::string_view::npos);
  EXPECT_EQ(engine.submitted(), 2);
  engine.Admit();  // the engine scheduled them
  EXPECT_TRUE(limited.Submit(Request{"d", {1}, {}}).ok());
  EXPECT_EQ(engine.submitted(), 3);
  limited.Shutdown();
  EXPECT_TRUE(engine.shut_down());
}

TEST(QueueLimitedEngineTest, ABurstCannotOvershoot) {
  WaitingEngine engine;
  QueueLimitedEngine limited(&engine, 4);
  std::atomic<int> admitted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 64; ++i) {
    clients.emplace_back([&limited, &admitted, &refused, i] {
      const absl::StatusOr<std::shared_ptr<RequestHandle>> handle =
          limited.Submit(Request{std::to_string(i), {1}, {}});
      if (handle.ok()) {
        ++admitted;
      } else if (absl::IsResourceExhausted(handle.status())) {
        ++refused;
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(admitted.load(), 4);
  EXPECT_EQ(refused.load(), 60);
}

}  // namespace
}  // namespace moeserve
