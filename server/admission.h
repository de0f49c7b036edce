// Admission control: which requests the server takes on, decided before any work starts.
//
// RequestGate runs in front of every route (HttpServer::Options::gate): while the server
// drains for shutdown it answers 503 to everything, /health included; with an API key set
// it answers 401 to requests without "Authorization: Bearer <key>", except on /health and
// /metrics; it answers 400 to a POST whose Content-Type is given and is not JSON.
// QueueLimitedEngine wraps the engine and refuses a generation request with 429 (ResourceExhausted,
// Retry-After) while --max-queued-requests requests already wait.
#ifndef MOESERVE_SERVER_ADMISSION_H_
#define MOESERVE_SERVER_ADMISSION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "engine/engine.h"
#include "server/http_server.h"

namespace moeserve {

// Whether `a` equals `b`, in time that depends on their lengths only, not on where they
// first differ (a key must not leak one byte at a time through response timing).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

class RequestGate {
 public:
  // An empty `api_key` lets every request through.
  explicit RequestGate(std::string api_key) : api_key_(std::move(api_key)) {}

  // The refusal to send instead of running the route, or nullopt to run it. Thread-safe.
  std::optional<HttpResponse> Check(const HttpRequest& request) const;

  // From now on every request gets 503. Idempotent, thread-safe.
  void StartDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

 private:
  std::optional<HttpResponse> CheckApiKey(const HttpRequest& request) const;
  static std::optional<HttpResponse> CheckContentType(const HttpRequest& request);

  const std::string api_key_;
  std::atomic<bool> draining_{false};
};

// Forwards everything to `engine`, but Submit() returns ResourceExhausted (HTTP 429) when
// engine->stats().num_waiting, the requests queued and not yet scheduled (those submitted
// but not yet seen by the engine loop included), is at least `max_queued`. The check and
// the submission happen under one lock, so a burst cannot overshoot the limit.
class QueueLimitedEngine : public Engine {
 public:
  // REQUIRES: max_queued > 0; `engine` outlives this.
  QueueLimitedEngine(Engine* engine, int32_t max_queued);

  absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(Request request) override;
  const Tokenizer& tokenizer() const override { return engine_->tokenizer(); }
  const ChatTemplate& chat_template() const override { return engine_->chat_template(); }
  const ModelInfo& model_info() const override { return engine_->model_info(); }
  EngineStats stats() const override { return engine_->stats(); }
  void Shutdown() override { engine_->Shutdown(); }

 private:
  Engine* const engine_;
  const int32_t max_queued_;
  std::mutex submit_mutex_;
};

}  // namespace moeserve

#endif  // MOESERVE_SERVER_ADMISSION_H_
