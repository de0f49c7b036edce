// The converted checkpoints run in moeserve's engine as the dense model does: the upcycled
// Mixtral (identical experts, top-k weights renormalised to 1, any router) and the split
// LLaMA-MoE with K = E, a zero gate and score_scale_factor E give the dense model's logits
// up to f32 summation order, step after step of greedy decoding. Sources: the tiny random
// Llama (HF, f16) and, when installed, SmolLM2's GGUF (upcycle).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/absl_strings.h"
#include "common/status.h"
#include "engine/cpu_backend.h"
#include "engine/kv_cache.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/loaders/hf_config.h"
#include "engine/model.h"
#include "engine/model_weights.h"
#include "gtest/gtest.h"
#include "tests/testing/model_fixtures.h"
#include "tests/testing/test_paths.h"
#include "tools/convert/split.h"
#include "tools/convert/upcycle.h"

namespace moeserve::convert {
namespace {

namespace fs = std::filesystem;
constexpr int32_t kBlockSize = 16;

std::string NewDir(const std::string& name) {
  static int counter = 0;
  return Cat(testing::TempDir(), "/", name, "_", counter++);
}

std::string TinySource() {
  const std::string dir = NewDir("tiny_src");
  fs::create_directories(dir);
  for (const auto& entry :
       fs::directory_iterator(testing::SourcePath("tests/fixtures/tiny_llama/safetensors"))) {
    fs::copy_file(entry.path(), fs::path(dir) / entry.path().filename());
  }
  return dir;
}

using Loaded = testing::HostModel;

absl::StatusOr<Loaded> LoadHf(const std::string& dir) { return testing::LoadHfCheckpoint(dir); }
absl::StatusOr<Loaded> LoadGguf(const std::string& path) { return testing::LoadGgufModel(path); }

// Greedy-decodes `steps` tokens after `prompt` on both models (fed the dense model's
// choice), returning the largest logit difference; the argmax must agree at every step.
double MaxLogitDiff(Loaded dense, Loaded moe, const std::vector<int32_t>& prompt, int steps) {
  CpuBackend backend(0);
  const int32_t max_tokens = 64;
  Model a(dense.config, std::move(dense.weights), &backend, max_tokens, 1);
  Model b(moe.config, std::move(moe.weights), &backend, max_tokens, 1);
  KvCache cache_a(a.config(), max_tokens / kBlockSize, kBlockSize);
  KvCache cache_b(b.config(), max_tokens / kBlockSize, kBlockSize);
  const std::vector<int32_t> blocks = {0, 1, 2, 3};
  const int32_t vocab = a.config().vocab_size;
  std::vector<int32_t> tokens = prompt;
  int32_t computed = 0;
  double worst = 0;
  for (int step = 0; step < steps; ++step) {
    ForwardBatch batch;
    const int32_t n = static_cast<int32_t>(tokens.size()) - computed;
    for (int32_t p = computed; p < computed + n; ++p) {
      batch.token_ids.push_back(tokens[p]);
      batch.positions.push_back(p);
      batch.slots.push_back(blocks[p / kBlockSize] * kBlockSize + p % kBlockSize);
    }
    batch.sequences.push_back({0, n, computed + n, blocks.data()});
    computed += n;
    std::vector<float> la(vocab), lb(vocab);
    a.Forward(batch, &cache_a, la.data());
    b.Forward(batch, &cache_b, lb.data());
    for (int32_t v = 0; v < vocab; ++v) {
      worst = std::max(worst, static_cast<double>(std::fabs(la[v] - lb[v])));
    }
    const int32_t next = static_cast<int32_t>(std::max_element(la.begin(), la.end()) - la.begin());
    EXPECT_EQ(std::max_element(lb.begin(), lb.end()) - lb.begin(), next) << "step " << step;
    tokens.push_back(next);
  }
  return worst;
}

std::vector<int32_t> RandomPrompt(int32_t vocab, int n) {
  std::mt19937 rng(5);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % vocab);
  return ids;
}

TEST(ConvertParityTest, TinyLlamaUpcycleRunsAsDense) {
  const std::string src = TinySource();
  const std::string dst = NewDir("up");
  ASSERT_TRUE(Upcycle(src, dst, {.num_experts = 4, .top_k = 2, .seed = 11}).ok());
  auto dense = LoadHf(src);
  ASSERT_TRUE(dense.ok()) << dense.status();
  auto moe = LoadHf(dst);
  ASSERT_TRUE(moe.ok()) << moe.status();
  ASSERT_EQ(moe->config.moe.num_experts, 4);
  const double diff = MaxLogitDiff(*std::move(dense), *std::move(moe), RandomPrompt(256, 12), 8);
  EXPECT_LT(diff, 1e-4);
  std::printf("tiny upcycle E=4 K=2: max |logit diff| %.2e\n", diff);
}

TEST(ConvertParityTest, TinyLlamaSplitWithZeroGateRunsAsDense) {
  const std::string src = TinySource();
  const std::string dst = NewDir("split");
  ASSERT_TRUE(
      Split(src, dst,
            {.num_experts = 4, .top_k = 4, .router = RouterInit::kZero, .score_scale_factor = 4.0f})
          .ok());
  auto dense = LoadHf(src);
  ASSERT_TRUE(dense.ok()) << dense.status();
  auto moe = LoadHf(dst);
  ASSERT_TRUE(moe.ok()) << moe.status();
  ASSERT_EQ(moe->config.family, ModelFamily::kLlamaMoe);
  const double diff = MaxLogitDiff(*std::move(dense), *std::move(moe), RandomPrompt(256, 12), 8);
  EXPECT_LT(diff, 1e-4);
  std::printf("tiny split E=K=4, zero gate, scale 4: max |logit diff| %.2e\n", diff);
}

TEST(ConvertParityTest, SmolLm2UpcycleRunsAsDense) {
  if (testing::DefaultModelPath().empty()) GTEST_SKIP() << "default model not installed";
  const std::string dst = NewDir("smol_up");
  ASSERT_TRUE(Upcycle(testing::DefaultModelPath(), dst, {.num_experts = 2, .top_k = 2}).ok());
  auto dense = LoadGguf(testing::DefaultModelPath());
  ASSERT_TRUE(dense.ok()) << dense.status();
  auto moe = LoadHf(dst);
  ASSERT_TRUE(moe.ok()) << moe.status();
  const double diff = MaxLogitDiff(*std::move(dense), *std::move(moe), RandomPrompt(49152, 10), 6);
  EXPECT_LT(diff, 1e-3);
  std::printf("SmolLM2 upcycle E=2 K=2: max |logit diff| %.2e\n", diff);
  fs::remove_all(dst);
}

}  // namespace
}  // namespace moeserve::convert
