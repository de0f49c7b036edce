#include "server/model_routes.h"

#include <cstdlib>
#include <memory>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moeserve {
namespace {

// Only stats() is used by /health.
class StatsEngine : public Engine {
 public:
  absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(Request) override {
    return absl::UnimplementedError("not used by /health");
  }
  const Tokenizer& tokenizer() const override { std::abort(); }
  const ChatTemplate& chat_template() const override { std::abort(); }
  const ModelInfo& model_info() const override { return info_; }
  EngineStats stats() const override { return stats_; }
  void Shutdown() override {}

  EngineStats stats_;
  ModelInfo info_;
};

TEST(ModelRoutesTest, HealthCarriesTheEngineSnapshot) {
  StatsEngine engine;
  engine.stats_.num_running = 3;
  engine.stats_.num_waiting = 2;
  engine.stats_.num_blocks = 100;
  engine.stats_.num_free_blocks = 91;
  engine.stats_.num_preemptions = 7;  // not shown
  const HttpResponse health = HandleHealth(&engine);
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(nlohmann::json::parse(health.body), nlohmann::json::parse(R"({"status": "ok",
      "engine": {"num_running": 3, "num_waiting": 2, "num_blocks": 100,
                 "num_free_blocks": 91}})"));
  EXPECT_EQ(nlohmann::json::parse(HandleHealth().body), nlohmann::json({{"status", "ok"}}));
}

}  // namespace
}  // namespace moeserve
