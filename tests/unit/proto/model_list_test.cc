#include "proto/model_list.h"

#include "gtest/gtest.h"

namespace moeserve::proto {
namespace {

TEST(ModelListTest, Shape) {
  ModelCard card;
  card.id = "smol";
  card.created = 1700000000;
  card.max_model_len = 8192;
  EXPECT_EQ(ModelListJson({card}), nlohmann::json::parse(R"({"object": "list", "data": [
      {"id": "smol", "object": "model", "created": 1700000000, "owned_by": "moeserve",
       "max_model_len": 8192}]})"));
  EXPECT_EQ(ModelListJson({}), nlohmann::json::parse(R"({"object": "list", "data": []})"));
}

}  // namespace
}  // namespace moeserve::proto
