// GET /v1/models on the wire: the list of served models in OpenAI's shape.
#ifndef MOESERVE_PROTO_MODEL_LIST_H_
#define MOESERVE_PROTO_MODEL_LIST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace moeserve::proto {

struct ModelCard {
  std::string id;       // the served model name
  int64_t created = 0;  // Unix seconds
  std::string owned_by = "moeserve";
  int32_t max_model_len = 0;  // vLLM extension
};

// {"object": "list", "data": [{"id", "object": "model", "created", "owned_by", ...}]}
nlohmann::json ModelListJson(const std::vector<ModelCard>& models);

}  // namespace moeserve::proto

#endif  // MOESERVE_PROTO_MODEL_LIST_H_
