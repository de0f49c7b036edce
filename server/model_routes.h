// GET /v1/models (the served model in OpenAI's list shape) and GET /health, plus the
// description of the served model that the chat routes share.
#ifndef MOESERVE_SERVER_MODEL_ROUTES_H_
#define MOESERVE_SERVER_MODEL_ROUTES_H_

#include <cstdint>
#include <string>

#include "server/http_server.h"

namespace moeserve {

struct ServedModel {
  std::string name;           // --served-model-name; requests must name it (or nothing)
  int32_t max_model_len = 0;  // prompt + generated tokens, at most
  int64_t created = 0;        // Unix seconds, when the server started
};

HttpResponse HandleListModels(const ServedModel& model);
HttpResponse HandleHealth();  // 200 {"status": "ok"}

// Routes GET /v1/models and GET /health. `model` is copied.
void RegisterModelRoutes(const ServedModel& model, HttpServer* server);

}  // namespace moeserve

#endif  // MOESERVE_SERVER_MODEL_ROUTES_H_
