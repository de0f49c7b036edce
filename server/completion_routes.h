// POST /v1/completions: validates the request (proto/completion.h), tokenizes each prompt
// (no chat template; BOS as the tokenizer wants) or takes its token ids, submits one
// engine request of n choices per prompt and answers with one JSON body or, with
// "stream": true, with server-sent events as outputs arrive. Choice prompt_index * n + i
// is the i-th choice of that prompt. A client that disconnects gets its requests aborted.
#ifndef MOESERVE_SERVER_COMPLETION_ROUTES_H_
#define MOESERVE_SERVER_COMPLETION_ROUTES_H_

#include <utility>

#include "absl/time/time.h"
#include "engine/engine.h"
#include "server/http_server.h"
#include "server/model_routes.h"

namespace moeserve {

class CompletionHandler {
 public:
  // `engine` must outlive the handler. `poll_interval` bounds how long a request waits for
  // output before checking that its client is still there.
  CompletionHandler(Engine* engine, ServedModel model,
                    absl::Duration poll_interval = absl::Milliseconds(100))
      : engine_(engine), model_(std::move(model)), poll_interval_(poll_interval) {}

  // Thread-safe; blocks until the completion is done unless it streams.
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  Engine* const engine_;
  const ServedModel model_;
  const absl::Duration poll_interval_;
};

// Routes POST /v1/completions to a CompletionHandler.
void RegisterCompletionRoutes(Engine* engine, const ServedModel& model, HttpServer* server);

}  // namespace moeserve

#endif  // MOESERVE_SERVER_COMPLETION_ROUTES_H_
