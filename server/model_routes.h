// GET /v1/models (the served model in OpenAI's list shape) and GET /health, plus the
// description of the served model that the chat routes share. (While the server drains
// for shutdown, the RequestGate answers /health with 503 before it gets here.)
#ifndef MOESERVE_SERVER_MODEL_ROUTES_H_
#define MOESERVE_SERVER_MODEL_ROUTES_H_

#include <cstdint>
#include <string>

#include "engine/engine.h"
#include "server/http_server.h"

namespace moeserve {

struct ServedModel {
  std::string name;           // --served-model-name; requests must name it (or nothing)
  int32_t max_model_len = 0;  // prompt + generated tokens, at most
  int64_t created = 0;        // Unix seconds, when the server started
};

HttpResponse HandleListModels(const ServedModel& model);
// 200 {"status": "ok"}, plus, given an engine, our extension "engine": a snapshot of its
// queue and KV pool (num_running, num_waiting, num_blocks, num_free_blocks), enough to
// see that aborted requests gave their blocks back until /metrics exists.
HttpResponse HandleHealth(const Engine* engine = nullptr);

// Routes GET /v1/models and GET /health. `model` is copied; `engine` (may be null) must
// outlive the server.
void RegisterModelRoutes(const ServedModel& model, const Engine* engine, HttpServer* server);

}  // namespace moeserve

#endif  // MOESERVE_SERVER_MODEL_ROUTES_H_
