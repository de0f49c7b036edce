#include "proto/model_list.h"

namespace moeserve::proto {

nlohmann::json ModelListJson(const std::vector<ModelCard>& models) {
  nlohmann::json data = nlohmann::json::array();
  for (const ModelCard& model : models) {
    data.push_back({{"id", model.id},
                    {"object", "model"},
                    {"created", model.created},
                    {"owned_by", model.owned_by},
                    {"max_model_len", model.max_model_len}});
  }
  return {{"object", "list"}, {"data", std::move(data)}};
}

}  // namespace moeserve::proto
