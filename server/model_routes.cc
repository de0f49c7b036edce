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

HttpResponse HandleHealth() {
  HttpResponse response;
  response.body = proto::DumpJson({{"status", "ok"}});
  return response;
}

void RegisterModelRoutes(const ServedModel& model, HttpServer* server) {
  server->Route("GET", "/v1/models",
                [model](const HttpRequest&) { return HandleListModels(model); });
  server->Route("GET", "/health", [](const HttpRequest&) { return HandleHealth(); });
}

}  // namespace moeserve
