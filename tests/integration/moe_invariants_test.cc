// MoE invariants on the real SmolLM2, through the whole engine: the model converted by
// moeserve-convert into (a) the Llama3-8x8b-MoE recipe with 8 identical experts and a
// random top-2 router, and (b) the LLaMA-MoE recipe with its FFN split into 4 experts,
// all 4 selected by a zero gate with score_scale_factor 4, must give exactly the dense
// model's greedy tokens: (a) because any two identical experts with renormalised weights
// sum to the dense MLP, (b) because uniform scores 1/4 times 4 sum the four slices back
// into the dense FFN. Both differ from the dense model only in f32 summation order.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/model_fixtures.h"
#include "tests/testing/test_paths.h"
#include "tools/convert/split.h"
#include "tools/convert/upcycle.h"

namespace moeserve {
namespace {

namespace fs = std::filesystem;
constexpr int32_t kTokens = 24;

// Greedy tokens of every fixture prompt, submitted together.
std::vector<std::vector<int32_t>> GreedyTokens(const std::string& model_path) {
  std::ifstream in(testing::SourcePath("tests/fixtures/smollm2_greedy.json"));
  const nlohmann::json fixture = nlohmann::json::parse(in);
  std::vector<std::vector<int32_t>> prompts;
  for (const nlohmann::json& prompt : fixture["prompts"]) {
    prompts.push_back(prompt["prompt_ids"].get<std::vector<int32_t>>());
  }
  EngineConfig config;
  config.model_path = model_path;
  config.max_model_len = 256;
  config.kv_cache_memory_bytes = int64_t{64} << 20;
  auto engine = Engine::Create(config);
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (!engine.ok()) return {};
  return testing::GreedyTokens(**engine, prompts, kTokens);
}

class MoeInvariantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::DefaultModelPath().empty()) {
      GTEST_SKIP() << "default model not installed (scripts/bootstrap.sh)";
    }
    if (dense_ == nullptr) {
      dense_ = new std::vector<std::vector<int32_t>>(GreedyTokens(testing::DefaultModelPath()));
    }
  }
  static std::vector<std::vector<int32_t>>* dense_;
};
std::vector<std::vector<int32_t>>* MoeInvariantsTest::dense_ = nullptr;

TEST_F(MoeInvariantsTest, UpcycledEightExpertsTopTwoAnswerAsTheDenseModel) {
  const std::string dst = testing::TempDir() + "/smollm2_upcycled_8x2";
  convert::ConvertOptions options;
  options.num_experts = 8;
  options.top_k = 2;
  options.seed = 7;
  options.force = true;
  ASSERT_TRUE(convert::Upcycle(testing::DefaultModelPath(), dst, options).ok());
  const auto tokens = GreedyTokens(dst);
  fs::remove_all(dst);
  ASSERT_EQ(tokens.size(), dense_->size());
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tokens[i], (*dense_)[i]) << "prompt " << i;
}

TEST_F(MoeInvariantsTest, SplitFourExpertsTopFourZeroRouterAnswersAsTheDenseModel) {
  const std::string dst = testing::TempDir() + "/smollm2_split_4x4";
  convert::ConvertOptions options;
  options.num_experts = 4;
  options.top_k = 4;
  options.router = convert::RouterInit::kZero;
  options.score_scale_factor = 4.0f;
  options.force = true;
  ASSERT_TRUE(convert::Split(testing::DefaultModelPath(), dst, options).ok());
  const auto tokens = GreedyTokens(dst);
  fs::remove_all(dst);
  ASSERT_EQ(tokens.size(), dense_->size());
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tokens[i], (*dense_)[i]) << "prompt " << i;
}

}  // namespace
}  // namespace moeserve
