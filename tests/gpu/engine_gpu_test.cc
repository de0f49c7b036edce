// The whole engine on the CUDA backend (--device cuda): scheduler, paged KV cache in bf16
// on the device, grouped-GEMM MoE, sampling on the host. Three concurrent greedy requests
// on the tiny Mixtral GGUF finish with their full length, start with the CPU engine's
// first token, and give every KV block back. Skips without a device.
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "kernels/cuda/device_info.h"
#include "nlohmann/json.hpp"
#include "tests/testing/model_fixtures.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

TEST(EngineGpuTest, ServesTheTinyMixtralOnTheDevice) {
  std::string error;
  if (cuda::ListDevices(&error).empty()) {
    GTEST_SKIP() << "no CUDA device: " << (error.empty() ? "none visible" : error);
  }
  std::ifstream in(testing::SourcePath("tests/fixtures/tiny_moe/mixtral/expected.json"));
  const nlohmann::json expected = nlohmann::json::parse(in);
  EngineConfig config;
  config.model_path = testing::SourcePath("tests/fixtures/tiny_moe/mixtral_gguf/model.gguf");
  config.max_num_batched_tokens = 16;  // the 17-token prompt is chunked
  config.kv_cache_memory_bytes = 1 << 20;
  config.device = "cpu";
  auto cpu = Engine::Create(config);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  config.device = "cuda";
  auto gpu = Engine::Create(config);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_EQ((*gpu)->model_info().device, "cuda");
  EXPECT_EQ((*gpu)->model_info().dtype, "bfloat16");
  std::vector<std::vector<int32_t>> prompts;
  for (const nlohmann::json& prompt : expected["prompts"]) {
    prompts.push_back(prompt["prompt_ids"].get<std::vector<int32_t>>());
  }
  const auto want = testing::GreedyTokens(**cpu, prompts, 32);
  const auto got = testing::GreedyTokens(**gpu, prompts, 32);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].size(), 32u) << "prompt " << i;
    EXPECT_EQ(got[i][0], want[i][0]) << "prompt " << i;
    int agree = 0;
    while (agree < 32 && got[i][agree] == want[i][agree]) ++agree;
    std::printf("prompt %zu: %d of 32 greedy tokens agree with the CPU engine\n", i, agree);
  }
  for (int i = 0; i < 500; ++i) {
    const EngineStats stats = (*gpu)->stats();
    if (stats.num_free_blocks == stats.num_blocks && stats.num_running == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ((*gpu)->stats().num_free_blocks, (*gpu)->stats().num_blocks);
}

}  // namespace
}  // namespace moeserve
