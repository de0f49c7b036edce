#include "server/model_routes.h"

#include "proto/json_util.h"
#include "proto/model_list.h"

namespace moeserve {

HttpResponse HandleListModels(const ServedModel& model) {
  proto::ModelCard card;
  card.id = model.name;
  card.created = model.created;
  card.max_model_len = model.max_model_len;
  HttpResponse response;
  response.body = proto::DumpJson(proto::ModelListJson({card}));
  return response;
}

HttpResponse HandleHealth(const Engine* engine) {
  nlohmann::json body = {{"status", "ok"}};
  if (engine != nullptr) {
    const EngineStats stats = engine->stats();
    body["engine"] = {{"num_running", stats.num_running},
                      {"num_waiting", stats.num_waiting},
                      {"num_blocks", stats.num_blocks},
                      {"num_free_blocks", stats.num_free_blocks}};
  }
  HttpResponse response;
  response.body = proto::DumpJson(body);
  return response;
}

void RegisterModelRoutes(const ServedModel& model, const Engine* engine, HttpServer* server) {
  server->Route("GET", "/v1/models",
                [model](const HttpRequest&) { return HandleListModels(model); });
  server->Route("GET", "/health", [engine](const HttpRequest&) { return HandleHealth(engine); });
}

}  // namespace moeserve
