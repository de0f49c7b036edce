// POST /v1/chat/completions: validates the request (proto/), renders the conversation with
// the model's chat template, tokenizes it, submits it to the engine and answers with one
// JSON body or, with "stream": true, with server-sent events as outputs arrive. A client
// that disconnects gets its request aborted, so its KV blocks return to the pool.
#ifndef MOESERVE_SERVER_CHAT_ROUTES_H_
#define MOESERVE_SERVER_CHAT_ROUTES_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "proto/chat_completion.h"
#include "server/http_server.h"
#include "server/model_routes.h"

namespace moeserve {

class ChatCompletionHandler {
 public:
  // `engine` must outlive the handler. `poll_interval` bounds how long a request waits for
  // output before checking that its client is still there.
  ChatCompletionHandler(Engine* engine, ServedModel model,
                        absl::Duration poll_interval = absl::Milliseconds(100))
      : engine_(engine), model_(std::move(model)), poll_interval_(poll_interval) {}

  // Thread-safe; blocks until the completion is done unless it streams.
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  Engine* const engine_;
  const ServedModel model_;
  const absl::Duration poll_interval_;
};

// The prompt's token ids for a conversation: rendered with the model's chat template,
// special tokens parsed, BOS in front when the model wants one and the template did not
// already write it (Llama 3 templates start with {{ bos_token }}; a second BOS would change
// the output). A conversation the template rejects is a 400 naming "messages".
absl::StatusOr<std::vector<int32_t>> BuildChatPrompt(
    const Engine& engine, const std::vector<proto::ChatMessageParam>& messages,
    bool add_generation_prompt);

// Routes POST /v1/chat/completions to a ChatCompletionHandler.
void RegisterChatRoutes(Engine* engine, const ServedModel& model, HttpServer* server);

}  // namespace moeserve

#endif  // MOESERVE_SERVER_CHAT_ROUTES_H_
