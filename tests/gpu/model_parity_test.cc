// The whole model on the CUDA backend against the CPU backend: every tiny family fixture
// (tests/fixtures/tiny_moe, tiny_llama) and the real SmolLM2, the same host weights
// uploaded to the device. Dense models also run in f32 on the GPU, which must give the
// CPU's logits closely and the same greedy tokens; every model runs in bf16 (the serving
// dtype): first-step logits within bf16 error and the same first greedy token (later
// tokens may part ways at near-ties; how many agree is printed). Skips without a device.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/cpu_backend.h"
#include "engine/cuda_backend.h"
#include "engine/kv_cache.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/loaders/hf_config.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"
#include "engine/sampler.h"
#include "gtest/gtest.h"
#include "kernels/cuda/device_info.h"
#include "tests/testing/model_fixtures.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

constexpr int32_t kBlockSize = 16;
constexpr int kSteps = 24;

using testing::HostModel;

HostModel Loaded(absl::StatusOr<HostModel> model) {
  CHECK_MSG(model.ok(), std::string(model.status().message()));
  return *std::move(model);
}

HostModel LoadHf(const std::string& dir) { return Loaded(testing::LoadHfCheckpoint(dir)); }
HostModel LoadGguf(const std::string& path) { return Loaded(testing::LoadGgufModel(path)); }

// Greedy decoding of `prompts` batched together for kSteps steps; every step's logits.
struct Trace {
  std::vector<std::vector<int32_t>> tokens;             // [prompt][step]
  std::vector<std::vector<std::vector<float>>> logits;  // [prompt][step][vocab]
};

Trace RunGreedy(Model& model, KvCache& cache, const std::vector<std::vector<int32_t>>& prompts) {
  const int32_t vocab = model.config().vocab_size;
  const size_t n = prompts.size();
  const int32_t blocks_per_seq = cache.num_blocks() / static_cast<int32_t>(n);
  std::vector<std::vector<int32_t>> tables(n), tokens = prompts;
  for (size_t s = 0; s < n; ++s) {
    for (int32_t b = 0; b < blocks_per_seq; ++b) {
      tables[s].push_back(static_cast<int32_t>(s) * blocks_per_seq + b);
    }
  }
  std::vector<int32_t> computed(n, 0);
  Trace trace;
  trace.tokens.resize(n);
  trace.logits.resize(n);
  std::vector<float> logits(n * vocab);
  for (int step = 0; step < kSteps; ++step) {
    ForwardBatch batch;
    for (size_t s = 0; s < n; ++s) {
      const int32_t begin = static_cast<int32_t>(batch.token_ids.size());
      const int32_t count = static_cast<int32_t>(tokens[s].size()) - computed[s];
      for (int32_t p = computed[s]; p < computed[s] + count; ++p) {
        batch.token_ids.push_back(tokens[s][p]);
        batch.positions.push_back(p);
        batch.slots.push_back(tables[s][p / kBlockSize] * kBlockSize + p % kBlockSize);
      }
      batch.sequences.push_back({begin, count, computed[s] + count, tables[s].data()});
      computed[s] += count;
    }
    model.Forward(batch, &cache, logits.data());
    for (size_t s = 0; s < n; ++s) {
      const absl::Span<const float> row(logits.data() + s * vocab, vocab);
      const int32_t token = ArgMax(row);
      trace.tokens[s].push_back(token);
      trace.logits[s].emplace_back(row.begin(), row.end());
      tokens[s].push_back(token);
    }
  }
  return trace;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0.0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double{a[i]} - b[i]));
  return d;
}

class ModelParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string error;
    if (cuda::ListDevices(&error).empty()) {
      GTEST_SKIP() << "no CUDA device: " << (error.empty() ? "none visible" : error);
    }
  }

  HostModel Load() {
    const std::string& name = GetParam();
    if (name == "smollm2") {
      if (testing::DefaultModelPath().empty()) return {};
      return LoadGguf(testing::DefaultModelPath());
    }
    if (name == "mixtral_gguf") {
      return LoadGguf(testing::SourcePath("tests/fixtures/tiny_moe/mixtral_gguf/model.gguf"));
    }
    if (name == "tiny_llama") {
      return LoadHf(testing::SourcePath("tests/fixtures/tiny_llama/safetensors"));
    }
    return LoadHf(testing::SourcePath("tests/fixtures/tiny_moe/" + name + "/safetensors"));
  }
};

TEST_P(ModelParityTest, CudaMatchesCpu) {
  HostModel host = Load();
  if (host.config.num_layers == 0) GTEST_SKIP() << "default model not installed";
  const int32_t vocab = host.config.vocab_size;
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 17, 42, 99, 5},
      {3, 8, 13, 21, 34, 55, 89, 144 % vocab, 233 % vocab, 7, 11},
      {2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38}};
  const int32_t blocks = 3 * 4;

  CpuBackend cpu(0);
  CudaBackend gpu(0);
  Model cpu_model(host.config, UploadWeights(host.weights, &cpu, DType::kF32), &cpu, 64, 4);
  KvCache cpu_cache(host.config, blocks, kBlockSize);
  const Trace want = RunGreedy(cpu_model, cpu_cache, prompts);

  // f32 on the GPU (dense models: the grouped GEMM runs on bf16 tensor cores only): the
  // same greedy tokens, logits within summation-order noise.
  if (host.config.moe.num_experts == 0) {
    Model model(host.config, UploadWeights(host.weights, &gpu, DType::kF32), &gpu, 64, 4);
    KvCache cache(host.config, blocks, kBlockSize, &gpu, DType::kF32);
    const Trace got = RunGreedy(model, cache, prompts);
    double worst = 0.0;
    for (size_t s = 0; s < prompts.size(); ++s) {
      EXPECT_EQ(got.tokens[s], want.tokens[s]) << GetParam() << " f32 prompt " << s;
      for (int step = 0; step < kSteps && got.tokens[s][step] == want.tokens[s][step]; ++step) {
        worst = std::max(worst, MaxAbsDiff(got.logits[s][step], want.logits[s][step]));
      }
    }
    std::printf("%s f32: max |logit diff| %.2e\n", GetParam().c_str(), worst);
    EXPECT_LT(worst, 5e-3);
  }
  // bf16, the serving dtype: the first step's logits within bf16 error; the greedy tokens
  // agree at least until the first near-tie of the CPU's logits.
  {
    Model model(host.config, UploadWeights(host.weights, &gpu, DType::kBF16), &gpu, 64, 4);
    KvCache cache(host.config, blocks, kBlockSize, &gpu, DType::kBF16);
    const Trace got = RunGreedy(model, cache, prompts);
    for (size_t s = 0; s < prompts.size(); ++s) {
      const std::vector<float>& ref = want.logits[s][0];
      double norm = 0.0, err = 0.0;
      for (int32_t v = 0; v < vocab; ++v) {
        norm += double{ref[v]} * ref[v];
        err += (double{got.logits[s][0][v]} - ref[v]) * (double{got.logits[s][0][v]} - ref[v]);
      }
      const double rel = std::sqrt(err / norm);
      std::printf("%s bf16 prompt %zu: first-step normalised logit error %.2e, tokens:",
                  GetParam().c_str(), s, rel);
      int agree = 0;
      while (agree < kSteps && got.tokens[s][agree] == want.tokens[s][agree]) ++agree;
      std::printf(" %d of %d agree\n", agree, kSteps);
      EXPECT_LT(rel, 5e-2) << GetParam() << " prompt " << s;
      EXPECT_EQ(got.tokens[s][0], want.tokens[s][0]) << GetParam() << " prompt " << s;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ModelParityTest,
                         ::testing::Values("tiny_llama", "mixtral", "llama_moe_upcycled",
                                           "qwen2_moe", "olmoe", "deepseek", "deepseek_norm",
                                           "llama_moe", "llama_moe_linear", "llama_moe_nomul",
                                           "mixtral_gguf", "smollm2"));

}  // namespace
}  // namespace moeserve
