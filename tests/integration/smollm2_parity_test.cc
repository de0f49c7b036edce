// The CPU forward pass on the real SmolLM2-135M-Instruct GGUF against Hugging Face
// transformers loading the same file (tests/fixtures/generate_smollm2_logits.py):
// identical greedy tokens for 32 steps, with the largest logit difference of each step
// (over the fixture's top-40 and 64 probe ids) printed and bounded.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

#include "engine/cpu_backend.h"
#include "engine/kv_cache.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"
#include "engine/sampler.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

// Logits of HF f32 and ours differ by summation order only: the printed per-step maxima
// are 1e-5 to 6e-5 on logits of magnitude ~20; this bound leaves 20x headroom.
constexpr double kMaxLogitDiff = 1e-3;
constexpr int kBlockSize = 16;

class SmolLm2ParityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = testing::DefaultModelPath();
    if (path.empty()) return;
    auto file = gguf::GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    auto config = ModelConfigFromGguf(**file);
    ASSERT_TRUE(config.ok()) << config.status();
    auto weights = LoadGgufWeights(**file, *config);
    ASSERT_TRUE(weights.ok()) << weights.status();
    backend_ = new CpuBackend(0);
    model_ = new Model(*config, *std::move(weights), backend_, 512, 4);
    std::ifstream in(testing::SourcePath("tests/fixtures/smollm2_greedy.json"));
    fixture_ = new nlohmann::json(nlohmann::json::parse(in));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete backend_;
    delete fixture_;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "default model not installed (scripts/bootstrap.sh)";
  }

  // A sequence with its own blocks in a shared cache.
  struct Seq {
    std::vector<int32_t> tokens;
    std::vector<int32_t> blocks;
    int32_t computed = 0;
  };

  static void AddChunk(Seq& seq, int32_t n, ForwardBatch* batch) {
    BatchSequence entry{static_cast<int32_t>(batch->token_ids.size()), n, seq.computed + n,
                        seq.blocks.data()};
    for (int32_t p = seq.computed; p < seq.computed + n; ++p) {
      batch->token_ids.push_back(seq.tokens[p]);
      batch->positions.push_back(p);
      batch->slots.push_back(seq.blocks[p / kBlockSize] * kBlockSize + p % kBlockSize);
    }
    batch->sequences.push_back(entry);
    seq.computed += n;
  }

  static std::vector<float> RunChunk(Seq& seq, int32_t n, KvCache* cache) {
    ForwardBatch batch;
    AddChunk(seq, n, &batch);
    std::vector<float> logits(model_->config().vocab_size);
    model_->Forward(batch, cache, logits.data());
    return logits;
  }

  static Seq NewSeq(const std::vector<int32_t>& prompt, int32_t first_block, int32_t blocks) {
    Seq seq{prompt, {}, 0};
    for (int32_t b = 0; b < blocks; ++b) seq.blocks.push_back(first_block + blocks - 1 - b);
    return seq;
  }

  static CpuBackend* backend_;
  static Model* model_;
  static nlohmann::json* fixture_;
};
CpuBackend* SmolLm2ParityTest::backend_ = nullptr;
Model* SmolLm2ParityTest::model_ = nullptr;
nlohmann::json* SmolLm2ParityTest::fixture_ = nullptr;

TEST_F(SmolLm2ParityTest, GreedyTokensAndLogitsMatchTransformers) {
  KvCache cache(model_->config(), 64, kBlockSize);
  const std::vector<int32_t> probes = (*fixture_)["probe_ids"].get<std::vector<int32_t>>();
  for (const nlohmann::json& prompt : (*fixture_)["prompts"]) {
    Seq seq = NewSeq(prompt["prompt_ids"].get<std::vector<int32_t>>(), 0, 20);
    std::vector<float> logits = RunChunk(seq, static_cast<int32_t>(seq.tokens.size()), &cache);
    std::printf("prompt of %zu tokens, max |logit diff| per step:", seq.tokens.size());
    double worst = 0.0;
    int step = 0;
    for (const nlohmann::json& expected : prompt["steps"]) {
      double diff = 0.0;
      const auto top_ids = expected["top_ids"].get<std::vector<int32_t>>();
      const auto top_logits = expected["top_logits"].get<std::vector<double>>();
      const auto probe_logits = expected["probe_logits"].get<std::vector<double>>();
      for (size_t i = 0; i < top_ids.size(); ++i) {
        diff = std::max(diff, std::fabs(logits[top_ids[i]] - top_logits[i]));
      }
      for (size_t i = 0; i < probes.size(); ++i) {
        diff = std::max(diff, std::fabs(logits[probes[i]] - probe_logits[i]));
      }
      std::printf(" %.1e", diff);
      worst = std::max(worst, diff);
      const int32_t token = ArgMax(logits);
      ASSERT_EQ(token, expected["token"].get<int32_t>()) << "step " << step;
      seq.tokens.push_back(token);
      logits = RunChunk(seq, 1, &cache);
      ++step;
    }
    std::printf("\n");
    EXPECT_EQ(step, 32);
    EXPECT_LT(worst, kMaxLogitDiff);
  }
}

// A prompt computed in chunks (the KV of earlier chunks read back from the paged cache)
// gives the logits of the prompt computed at once.
TEST_F(SmolLm2ParityTest, ChunkedPrefillMatchesWholePrefill) {
  KvCache cache(model_->config(), 64, kBlockSize);
  const auto prompt = (*fixture_)["prompts"][2]["prompt_ids"].get<std::vector<int32_t>>();
  Seq whole = NewSeq(prompt, 0, 8);
  const std::vector<float> expected = RunChunk(whole, static_cast<int32_t>(prompt.size()), &cache);
  Seq chunked = NewSeq(prompt, 8, 8);
  std::vector<float> logits;
  while (chunked.computed < static_cast<int32_t>(prompt.size())) {
    logits = RunChunk(chunked, std::min<int32_t>(7, prompt.size() - chunked.computed), &cache);
  }
  double diff = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) diff = std::max<double>(diff, std::fabs(logits[i] - expected[i]));
  EXPECT_LT(diff, 1e-3);
  EXPECT_EQ(ArgMax(logits), ArgMax(expected));
}

// Two sequences in one step (a decode and a prefill) give what each gives alone.
TEST_F(SmolLm2ParityTest, BatchedStepMatchesSeparateSteps) {
  KvCache cache(model_->config(), 64, kBlockSize);
  const auto p0 = (*fixture_)["prompts"][0]["prompt_ids"].get<std::vector<int32_t>>();
  const auto p1 = (*fixture_)["prompts"][4]["prompt_ids"].get<std::vector<int32_t>>();
  const int32_t vocab = model_->config().vocab_size;

  Seq a = NewSeq(p0, 0, 8);
  RunChunk(a, static_cast<int32_t>(p0.size()) - 1, &cache);  // all but the last token cached
  Seq a_alone = a;
  const std::vector<float> a_expected = RunChunk(a_alone, 1, &cache);
  Seq b_alone = NewSeq(p1, 16, 8);
  const std::vector<float> b_expected = RunChunk(b_alone, static_cast<int32_t>(p1.size()), &cache);

  Seq b = NewSeq(p1, 32, 8);
  ForwardBatch batch;
  AddChunk(a, 1, &batch);
  AddChunk(b, static_cast<int32_t>(p1.size()), &batch);
  std::vector<float> logits(2 * vocab);
  model_->Forward(batch, &cache, logits.data());
  double diff = 0.0;
  for (int32_t i = 0; i < vocab; ++i) {
    diff = std::max<double>(diff, std::fabs(logits[i] - a_expected[i]));
    diff = std::max<double>(diff, std::fabs(logits[vocab + i] - b_expected[i]));
  }
  EXPECT_LT(diff, 1e-3);
}

}  // namespace
}  // namespace moeserve
