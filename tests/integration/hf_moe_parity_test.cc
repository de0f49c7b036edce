// Every MoE family end to end on tiny random checkpoints (tests/fixtures/gen_tiny_moe.py):
// transformers' Mixtral, Qwen2-MoE and OLMoE, the Llama3-8x8b-MoE layout (computed as
// Mixtral), and independent PyTorch references of DeepSeek-MoE v1 and LLaMA-MoE v1. For
// each case the config reads as the generator describes it, the safetensors and
// pytorch_model.bin copies load to bit-identical weights, the CPU forward pass gives the
// reference's f32 logits and 32 identical greedy tokens (one request at a time and all
// prompts batched), and the routing op's per-expert counts equal the reference's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/cpu_backend.h"
#include "engine/engine.h"
#include "engine/kv_cache.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/loaders/hf_config.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"
#include "engine/sampler.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/model_fixtures.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

// Both sides compute in f32 on the same f16-rounded weights; only summation order differs
// (the generator records f32 noise of ~1e-6 between two torch runs).
constexpr double kMaxLogitDiff = 1e-4;
constexpr int32_t kBlockSize = 16;

std::string CaseDir(const std::string& name) {
  return testing::SourcePath("tests/fixtures/tiny_moe/" + name);
}

nlohmann::json ReadExpected(const std::string& name) {
  std::ifstream in(CaseDir(name) + "/expected.json");
  return nlohmann::json::parse(in);
}

absl::StatusOr<testing::HostModel> LoadHf(const std::string& dir) {
  return testing::LoadHfCheckpoint(dir);
}

const char* RouterName(const ModelConfig& c) {
  switch (c.moe.router) {
    case RouterKind::kSoftmaxTopK:
      return "softmax_topk";
    case RouterKind::kLlamaMoeMlpTanh:
      return "llama_moe_mlp_tanh";
    case RouterKind::kLlamaMoeLinear:
      return "llama_moe_linear";
  }
  return "";
}

void ExpectConfigMatches(const ModelConfig& c, const nlohmann::json& want) {
  EXPECT_EQ(c.vocab_size, want["vocab_size"].get<int32_t>());
  EXPECT_EQ(c.hidden_size, want["hidden_size"].get<int32_t>());
  EXPECT_EQ(c.num_layers, want["num_layers"].get<int32_t>());
  EXPECT_EQ(c.num_heads, want["num_heads"].get<int32_t>());
  EXPECT_EQ(c.num_kv_heads, want["num_kv_heads"].get<int32_t>());
  EXPECT_EQ(c.head_dim, want["head_dim"].get<int32_t>());
  EXPECT_FLOAT_EQ(c.rope_theta, want["rope_theta"].get<float>());
  EXPECT_FLOAT_EQ(c.rms_norm_eps, want["rms_norm_eps"].get<float>());
  EXPECT_EQ(c.tie_word_embeddings, want["tie_word_embeddings"].get<bool>());
  EXPECT_EQ(c.intermediate_size, want["intermediate_size"].get<int32_t>());
  EXPECT_EQ(c.attention_bias, want["attention_bias"].get<bool>());
  EXPECT_EQ(c.qk_norm, want["qk_norm"].get<bool>());
  const MoeConfig& m = c.moe;
  EXPECT_EQ(m.num_experts, want["num_experts"].get<int32_t>());
  EXPECT_EQ(m.top_k, want["top_k"].get<int32_t>());
  EXPECT_EQ(RouterName(c), want["router"].get<std::string>());
  EXPECT_EQ(m.norm_topk_prob, want["norm_topk_prob"].get<bool>());
  EXPECT_EQ(m.num_shared_experts, want["num_shared_experts"].get<int32_t>());
  EXPECT_EQ(m.shared_expert_intermediate_size,
            want["shared_expert_intermediate_size"].get<int32_t>());
  EXPECT_EQ(m.shared_expert_gate, want["shared_expert_gate"].get<bool>());
  EXPECT_EQ(m.gate_use_softmax, want["gate_use_softmax"].get<bool>());
  EXPECT_EQ(m.multiply_gate_scores, want["multiply_gate_scores"].get<bool>());
  EXPECT_EQ(m.expert_intermediate_sizes,
            want["expert_intermediate_sizes"].get<std::vector<std::vector<int32_t>>>());
  std::vector<int32_t> moe_layers;
  std::vector<float> scales;
  for (int32_t l = 0; l < c.num_layers; ++l) {
    if (c.IsMoeLayer(l)) moe_layers.push_back(l);
    scales.push_back(c.ScoreScaleFactor(l));
  }
  EXPECT_EQ(moe_layers, want["moe_layers"].get<std::vector<int32_t>>());
  EXPECT_EQ(scales, want["score_scale_factors"].get<std::vector<float>>());
}

void ExpectSameTensor(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.DebugString(), b.DebugString()) << what;
  if (a.data() == nullptr) return;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.num_bytes()), 0) << what;
}

void ExpectSameWeights(const ModelWeights& x, const ModelWeights& y) {
  EXPECT_EQ(x.num_parameters, y.num_parameters);
  ExpectSameTensor(x.embedding, y.embedding, "embedding");
  ASSERT_EQ(x.layers.size(), y.layers.size());
  for (size_t l = 0; l < x.layers.size(); ++l) {
    const LayerWeights& a = x.layers[l];
    const LayerWeights& b = y.layers[l];
    const std::string at = " of layer " + std::to_string(l);
    for (auto [ta, tb, name] : {std::tuple{&a.attn_norm, &b.attn_norm, "attn_norm"},
                                {&a.qkv, &b.qkv, "qkv"},
                                {&a.qkv_bias, &b.qkv_bias, "qkv_bias"},
                                {&a.q_norm, &b.q_norm, "q_norm"},
                                {&a.k_norm, &b.k_norm, "k_norm"},
                                {&a.o_proj, &b.o_proj, "o_proj"},
                                {&a.ffn_norm, &b.ffn_norm, "ffn_norm"},
                                {&a.gate_up, &b.gate_up, "gate_up"},
                                {&a.down_proj, &b.down_proj, "down_proj"},
                                {&a.moe.router, &b.moe.router, "router"},
                                {&a.moe.router_out, &b.moe.router_out, "router_out"},
                                {&a.moe.experts_gate_up, &b.moe.experts_gate_up, "experts_gate_up"},
                                {&a.moe.experts_down, &b.moe.experts_down, "experts_down"},
                                {&a.moe.shared_gate_up, &b.moe.shared_gate_up, "shared_gate_up"},
                                {&a.moe.shared_down, &b.moe.shared_down, "shared_down"},
                                {&a.moe.shared_gate, &b.moe.shared_gate, "shared_gate"}}) {
      ExpectSameTensor(*ta, *tb, name + at);
    }
  }
  ExpectSameTensor(x.final_norm, y.final_norm, "final_norm");
  ExpectSameTensor(x.lm_head, y.lm_head, "lm_head");
}

// One sequence of the run: its tokens so far and how many the KV cache holds.
struct Stream {
  std::vector<int32_t> tokens;
  std::vector<int32_t> blocks;
  int32_t computed = 0;
};

// Runs the fixture's prompts through `model`, `batched` ones all in the same steps (else
// one after another), checking every step against the reference. Returns the largest
// logit difference seen.
double RunPrompts(Model& model, const nlohmann::json& expected, bool batched,
                  const std::string& label) {
  const nlohmann::json& prompts = expected["prompts"];
  const int32_t vocab = model.config().vocab_size;
  const int32_t blocks_per_seq = 4;
  KvCache cache(model.config(), blocks_per_seq * static_cast<int32_t>(prompts.size()), kBlockSize);
  std::vector<Stream> streams(prompts.size());
  for (size_t s = 0; s < prompts.size(); ++s) {
    streams[s].tokens = prompts[s]["prompt_ids"].get<std::vector<int32_t>>();
    // Blocks in reverse, interleaved between sequences: the block tables are used.
    for (int32_t b = blocks_per_seq - 1; b >= 0; --b) {
      streams[s].blocks.push_back(b * static_cast<int32_t>(prompts.size()) +
                                  static_cast<int32_t>(s));
    }
  }
  const size_t steps = prompts[0]["steps"].size();
  double worst = 0.0;
  // Sequential: sequence s runs all its steps before s + 1 starts.
  const size_t rounds = batched ? 1 : prompts.size();
  for (size_t round = 0; round < rounds; ++round) {
    for (size_t step = 0; step < steps; ++step) {
      ForwardBatch batch;
      std::vector<size_t> in_batch;
      for (size_t s = 0; s < prompts.size(); ++s) {
        if (!batched && s != round) continue;
        Stream& st = streams[s];
        const int32_t n = static_cast<int32_t>(st.tokens.size()) - st.computed;
        const int32_t begin = static_cast<int32_t>(batch.token_ids.size());
        for (int32_t p = st.computed; p < st.computed + n; ++p) {
          batch.token_ids.push_back(st.tokens[p]);
          batch.positions.push_back(p);
          batch.slots.push_back(st.blocks[p / kBlockSize] * kBlockSize + p % kBlockSize);
        }
        batch.sequences.push_back({begin, n, st.computed + n, st.blocks.data()});
        st.computed += n;
        in_batch.push_back(s);
      }
      std::vector<float> logits(in_batch.size() * vocab);
      model.Forward(batch, &cache, logits.data());
      for (size_t i = 0; i < in_batch.size(); ++i) {
        const size_t s = in_batch[i];
        const nlohmann::json& want = prompts[s]["steps"][step];
        const float* row = logits.data() + i * vocab;
        if (want.contains("logits")) {
          const auto ref = want["logits"].get<std::vector<double>>();
          EXPECT_EQ(ref.size(), static_cast<size_t>(vocab));
          double diff = 0.0;
          for (int32_t v = 0; v < vocab; ++v) diff = std::max(diff, std::fabs(row[v] - ref[v]));
          EXPECT_LT(diff, kMaxLogitDiff) << label << " prompt " << s << " step " << step;
          worst = std::max(worst, diff);
        }
        const int32_t token = ArgMax(absl::MakeConstSpan(row, vocab));
        EXPECT_EQ(token, want["token"].get<int32_t>())
            << label << " prompt " << s << " step " << step;
        streams[s].tokens.push_back(want["token"].get<int32_t>());  // stay on the reference
      }
    }
  }
  return worst;
}

class HfMoeParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HfMoeParityTest, ConfigIsRead) {
  const nlohmann::json expected = ReadExpected(GetParam());
  auto config = ModelConfigFromHfConfig(CaseDir(GetParam()) + "/safetensors/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(ModelFamilyName(config->family), expected["model_type"].get<std::string>());
  ExpectConfigMatches(*config, expected["config"]);
}

TEST_P(HfMoeParityTest, SafetensorsAndBinLoadIdentically) {
  auto st = LoadHf(CaseDir(GetParam()) + "/safetensors");
  ASSERT_TRUE(st.ok()) << st.status();
  auto bin = LoadHf(CaseDir(GetParam()) + "/bin");
  ASSERT_TRUE(bin.ok()) << bin.status();
  ExpectSameWeights(st->weights, bin->weights);
  // Every parameter of the checkpoint is loaded, but the training-only gate noise.
  const nlohmann::json expected = ReadExpected(GetParam());
  int64_t parameters = 0;
  for (const auto& [name, shape] : expected["tensors"].items()) {
    if (name.find("weight_noise") != std::string::npos) continue;
    int64_t n = 1;
    for (int64_t d : shape.get<std::vector<int64_t>>()) n *= d;
    parameters += n;
  }
  EXPECT_EQ(st->weights.num_parameters, parameters);
}

TEST_P(HfMoeParityTest, ForwardMatchesReference) {
  const nlohmann::json expected = ReadExpected(GetParam());
  for (const char* format : {"safetensors", "bin"}) {
    auto loaded = LoadHf(CaseDir(GetParam()) + "/" + format);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    CpuBackend backend(0);
    Model model(loaded->config, std::move(loaded->weights), &backend, 64, 4);
    const double sequential = RunPrompts(model, expected, false, format);
    const double batched = RunPrompts(model, expected, true, std::string(format) + " batched");
    std::printf("%s %s: max |logit diff| %.2e sequential, %.2e batched\n", GetParam().c_str(),
                format, sequential, batched);
  }
}

// The routing op's per-expert counts over the first prompt's prefill equal the
// reference's top-k choices.
TEST_P(HfMoeParityTest, ExpertCountsMatchReference) {
  const nlohmann::json expected = ReadExpected(GetParam());
  auto loaded = LoadHf(CaseDir(GetParam()) + "/safetensors");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  CpuBackend backend(0);
  Model model(loaded->config, std::move(loaded->weights), &backend, 64, 1);
  KvCache cache(model.config(), 4, kBlockSize);
  const auto prompt = expected["prompts"][0]["prompt_ids"].get<std::vector<int32_t>>();
  const std::vector<int32_t> blocks = {0, 1, 2, 3};
  ForwardBatch batch;
  for (size_t p = 0; p < prompt.size(); ++p) {
    batch.token_ids.push_back(prompt[p]);
    batch.positions.push_back(static_cast<int32_t>(p));
    batch.slots.push_back(static_cast<int32_t>(p));
  }
  batch.sequences.push_back(
      {0, static_cast<int32_t>(prompt.size()), static_cast<int32_t>(prompt.size()), blocks.data()});
  std::vector<float> logits(model.config().vocab_size);
  model.Forward(batch, &cache, logits.data());
  const int32_t experts = model.config().moe.num_experts;
  const std::vector<int32_t>& counts = model.expert_counts();
  ASSERT_EQ(counts.size(), static_cast<size_t>(model.config().num_layers * experts));
  for (int32_t l = 0; l < model.config().num_layers; ++l) {
    if (model.config().IsMoeLayer(l)) continue;
    for (int32_t e = 0; e < experts; ++e) EXPECT_EQ(counts[l * experts + e], 0) << l;
  }
  for (const nlohmann::json& layer : expected["expert_token_counts"]) {
    const int32_t l = layer["layer"].get<int32_t>();
    const std::vector<int32_t> got(counts.begin() + l * experts,
                                   counts.begin() + (l + 1) * experts);
    EXPECT_EQ(got, layer["counts"].get<std::vector<int32_t>>()) << "layer " << l;
  }
}

// Rounds every matrix of host f32 weights to bf16 values, in place.
void RoundMatricesToBf16(ModelWeights& w) {
  auto round = [](const Tensor& t) {
    if (t.data() == nullptr || t.ndim() < 2) return;
    float* data = t.data_as<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i) data[i] = BF16ToF32(F32ToBF16(data[i]));
  };
  round(w.embedding);
  if (w.lm_head.data() != w.embedding.data()) round(w.lm_head);
  for (const LayerWeights& l : w.layers) {
    for (const Tensor* t : {&l.qkv, &l.o_proj, &l.gate_up, &l.down_proj, &l.moe.router,
                            &l.moe.router_out, &l.moe.experts_gate_up, &l.moe.experts_down,
                            &l.moe.shared_gate_up, &l.moe.shared_down, &l.moe.shared_gate}) {
      round(*t);
    }
  }
}

// bf16 weights on the CPU (activations stay f32) compute what f32 weights holding the same
// bf16-rounded values compute, up to summation order, step after step.
TEST_P(HfMoeParityTest, Bf16WeightsOnTheCpu) {
  const nlohmann::json expected = ReadExpected(GetParam());
  auto loaded = LoadHf(CaseDir(GetParam()) + "/safetensors");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  CpuBackend backend(0);
  ModelWeights bf16 = UploadWeights(loaded->weights, &backend, DType::kBF16);
  EXPECT_EQ(bf16.layers[0].qkv.dtype(), DType::kBF16);
  EXPECT_EQ(bf16.layers[0].attn_norm.dtype(), DType::kF32);  // vectors stay f32 on the CPU
  RoundMatricesToBf16(loaded->weights);
  Model rounded(loaded->config, std::move(loaded->weights), &backend, 64, 4);
  Model narrow(loaded->config, std::move(bf16), &backend, 64, 4);
  KvCache cache_a(rounded.config(), 4, kBlockSize);
  KvCache cache_b(narrow.config(), 4, kBlockSize);
  const std::vector<int32_t> blocks = {0, 1, 2, 3};
  const int32_t vocab = rounded.config().vocab_size;
  std::vector<int32_t> tokens = expected["prompts"][2]["prompt_ids"].get<std::vector<int32_t>>();
  int32_t computed = 0;
  double worst = 0.0;
  for (int step = 0; step < 16; ++step) {
    ForwardBatch batch;
    const int32_t n = static_cast<int32_t>(tokens.size()) - computed;
    for (int32_t p = computed; p < computed + n; ++p) {
      batch.token_ids.push_back(tokens[p]);
      batch.positions.push_back(p);
      batch.slots.push_back(p);
    }
    batch.sequences.push_back({0, n, computed + n, blocks.data()});
    computed += n;
    std::vector<float> a(vocab), b(vocab);
    rounded.Forward(batch, &cache_a, a.data());
    narrow.Forward(batch, &cache_b, b.data());
    for (int32_t v = 0; v < vocab; ++v) worst = std::max(worst, double{std::fabs(a[v] - b[v])});
    ASSERT_EQ(ArgMax(a), ArgMax(b)) << GetParam() << " step " << step;
    tokens.push_back(ArgMax(a));
  }
  EXPECT_LT(worst, 1e-4) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Families, HfMoeParityTest,
                         ::testing::Values("mixtral", "llama_moe_upcycled", "qwen2_moe", "olmoe",
                                           "deepseek", "deepseek_norm", "llama_moe",
                                           "llama_moe_linear", "llama_moe_nomul"));

// The Mixtral case's weights as a llama.cpp-style GGUF (permuted q/k, stacked experts):
// the same config and the same logits.
TEST(GgufMoeParityTest, MixtralGgufMatchesTheHfReference) {
  const nlohmann::json expected = ReadExpected("mixtral");
  auto file = gguf::GgufFile::Open(CaseDir("mixtral_gguf") + "/model.gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  auto config = ModelConfigFromGguf(**file);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->moe.num_experts, 4);
  EXPECT_EQ(config->moe.top_k, 2);
  EXPECT_TRUE(config->moe.norm_topk_prob);
  auto weights = LoadGgufWeights(**file, *config);
  ASSERT_TRUE(weights.ok()) << weights.status();
  auto hf = LoadHf(CaseDir("mixtral") + "/safetensors");
  ASSERT_TRUE(hf.ok()) << hf.status();
  ExpectSameWeights(*weights, hf->weights);
  CpuBackend backend(0);
  Model model(*config, *std::move(weights), &backend, 64, 4);
  const double diff = RunPrompts(model, expected, true, "gguf batched");
  std::printf("mixtral gguf: max |logit diff| %.2e\n", diff);
}

// The whole engine (scheduler, paged KV, sampler) serving the MoE GGUF: three concurrent
// greedy requests give the reference's 32 tokens each.
TEST(EngineMoeTest, ServesTheMixtralGguf) {
  const nlohmann::json expected = ReadExpected("mixtral");
  EngineConfig config;
  config.model_path = CaseDir("mixtral_gguf") + "/model.gguf";
  config.max_num_batched_tokens = 16;  // the 17-token prompt is chunked
  config.kv_cache_memory_bytes = 1 << 20;
  auto engine = Engine::Create(config);
  ASSERT_TRUE(engine.ok()) << engine.status();
  std::vector<std::vector<int32_t>> prompts;
  for (const nlohmann::json& prompt : expected["prompts"]) {
    prompts.push_back(prompt["prompt_ids"].get<std::vector<int32_t>>());
  }
  const auto tokens = testing::GreedyTokens(**engine, prompts, 32);
  ASSERT_EQ(tokens.size(), prompts.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::vector<int32_t> want;
    for (const nlohmann::json& step : expected["prompts"][i]["steps"]) {
      want.push_back(step["token"].get<int32_t>());
    }
    EXPECT_EQ(tokens[i], want) << "prompt " << i;
  }
}

}  // namespace
}  // namespace moeserve
