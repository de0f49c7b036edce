// Hugging Face llama checkpoints end to end on a tiny random LlamaForCausalLM
// (tests/fixtures/gen_tiny_llama.py): the safetensors and the pytorch_model.bin copies load
// to bit-identical weights, the CPU forward pass gives transformers' f32 logits for three
// prompts and eight greedy steps each, and broken checkpoints fail naming file and tensor.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/absl_strings.h"
#include "engine/cpu_backend.h"
#include "engine/kv_cache.h"
#include "engine/loaders/hf_config.h"
#include "engine/loaders/safetensors_reader.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"
#include "engine/sampler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/model_fixtures.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Both sides compute in f32 on the same f16-rounded weights; only summation order differs.
// Logits are of magnitude ~3 and the printed maxima are around 1e-6.
constexpr double kMaxLogitDiff = 1e-4;
constexpr int32_t kBlockSize = 16;

std::string FixtureDir(const std::string& format) {
  return testing::SourcePath("tests/fixtures/tiny_llama/" + format);
}

absl::StatusOr<testing::HostModel> Load(const std::string& dir) {
  return testing::LoadHfCheckpoint(dir);
}

// ---- Writing modified checkpoints --------------------------------------------------------

struct RawTensor {
  std::string dtype;  // safetensors spelling: "F16", "F32", ...
  std::vector<int64_t> shape;
  std::string bytes;
};

std::map<std::string, RawTensor> ReadRaw(const TensorSource& source) {
  std::map<std::string, RawTensor> out;
  for (const TensorView& view : source.tensors()) {
    std::string dtype = view.dtype == DType::kF16    ? "F16"
                        : view.dtype == DType::kBF16 ? "BF16"
                                                     : "F32";
    out[view.name] = {dtype, view.shape,
                      std::string(reinterpret_cast<const char*>(view.data), view.num_bytes)};
  }
  return out;
}

// A safetensors file as the reference writer lays it out: 8-byte header length, JSON
// header padded with spaces to a multiple of 8, then the tensors back to back.
void WriteSafetensors(const std::string& path, const std::map<std::string, RawTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", t.dtype},
                    {"shape", t.shape},
                    {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  const uint64_t n = text.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), sizeof(n));
  out << text << data;
}

// A checkpoint directory under the test's temp dir: the fixture's config.json (edited by
// `edit_config`) and the given tensors.
std::string WriteCheckpoint(const std::string& name,
                            const std::map<std::string, RawTensor>& tensors,
                            void (*edit_config)(nlohmann::json&) = nullptr) {
  const std::string dir = testing::TempDir() + "/" + name;
  fs::create_directories(dir);
  std::ifstream in(FixtureDir("safetensors") + "/config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  if (edit_config != nullptr) edit_config(config);
  std::ofstream(dir + "/config.json") << config.dump(2);
  WriteSafetensors(dir + "/model.safetensors", tensors);
  return dir;
}

// ---- The fixture's model -------------------------------------------------------------------

class HfLlamaParityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ifstream in(testing::SourcePath("tests/fixtures/tiny_llama/expected.json"));
    expected_ = new nlohmann::json(nlohmann::json::parse(in));
  }
  static void TearDownTestSuite() { delete expected_; }

  static nlohmann::json* expected_;
};
nlohmann::json* HfLlamaParityTest::expected_ = nullptr;

TEST_F(HfLlamaParityTest, ConfigIsRead) {
  auto config = ModelConfigFromHfConfig(FixtureDir("safetensors") + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->family, ModelFamily::kLlama);
  EXPECT_EQ(config->vocab_size, 256);
  EXPECT_EQ(config->hidden_size, 64);
  EXPECT_EQ(config->intermediate_size, 128);
  EXPECT_EQ(config->num_layers, 2);
  EXPECT_EQ(config->num_heads, 4);
  EXPECT_EQ(config->num_kv_heads, 2);
  EXPECT_EQ(config->head_dim, 16);
  EXPECT_EQ(config->rotary_dim, 16);
  EXPECT_FLOAT_EQ(config->rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(config->rms_norm_eps, 1e-6f);
  EXPECT_FALSE(config->tie_word_embeddings);
  EXPECT_EQ(config->moe.num_experts, 0);
}

void ExpectSameTensor(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.DebugString(), b.DebugString()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.num_bytes()), 0) << what;
}

TEST_F(HfLlamaParityTest, SafetensorsAndBinLoadIdentically) {
  auto st = Load(FixtureDir("safetensors"));
  ASSERT_TRUE(st.ok()) << st.status();
  auto bin = Load(FixtureDir("bin"));
  ASSERT_TRUE(bin.ok()) << bin.status();

  const ModelConfig& a = st->config;
  const ModelConfig& b = bin->config;
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);

  const ModelWeights& x = st->weights;
  const ModelWeights& y = bin->weights;
  EXPECT_EQ(x.num_parameters, y.num_parameters);
  // 256*64 embedding + lm_head, 2 layers of (64+64) norms, 128x64 qkv, 64x64 o, 3 x 128x64.
  EXPECT_EQ(x.num_parameters, 2 * 256 * 64 + 2 * (128 + 128 * 64 + 64 * 64 + 3 * 128 * 64) + 64);
  ExpectSameTensor(x.embedding, y.embedding, "embedding");
  ASSERT_EQ(x.layers.size(), 2u);
  ASSERT_EQ(y.layers.size(), 2u);
  for (size_t l = 0; l < x.layers.size(); ++l) {
    const std::string at = " of layer " + std::to_string(l);
    ExpectSameTensor(x.layers[l].attn_norm, y.layers[l].attn_norm, "attn_norm" + at);
    ExpectSameTensor(x.layers[l].qkv, y.layers[l].qkv, "qkv" + at);
    ExpectSameTensor(x.layers[l].o_proj, y.layers[l].o_proj, "o_proj" + at);
    ExpectSameTensor(x.layers[l].ffn_norm, y.layers[l].ffn_norm, "ffn_norm" + at);
    ExpectSameTensor(x.layers[l].gate_up, y.layers[l].gate_up, "gate_up" + at);
    ExpectSameTensor(x.layers[l].down_proj, y.layers[l].down_proj, "down_proj" + at);
  }
  ExpectSameTensor(x.final_norm, y.final_norm, "final_norm");
  ExpectSameTensor(x.lm_head, y.lm_head, "lm_head");
  EXPECT_NE(x.lm_head.data(), x.embedding.data());  // untied
}

// A copy with every tensor widened to F32 loads to the same values as the F16 original.
TEST_F(HfLlamaParityTest, F32CheckpointLoadsTheSameValues) {
  auto st = Load(FixtureDir("safetensors"));
  ASSERT_TRUE(st.ok()) << st.status();
  std::map<std::string, RawTensor> tensors = ReadRaw(*st->source);
  for (auto& [name, t] : tensors) {
    ASSERT_EQ(t.dtype, "F16") << name;
    std::string wide(t.bytes.size() * 2, '\0');
    for (size_t i = 0; i < t.bytes.size() / 2; ++i) {
      uint16_t h;
      std::memcpy(&h, t.bytes.data() + 2 * i, 2);
      const float f = F16ToF32(h);
      std::memcpy(wide.data() + 4 * i, &f, 4);
    }
    t = {"F32", t.shape, wide};
  }
  auto wide = Load(WriteCheckpoint("f32", tensors));
  ASSERT_TRUE(wide.ok()) << wide.status();
  ExpectSameTensor(st->weights.embedding, wide->weights.embedding, "embedding");
  ExpectSameTensor(st->weights.layers[1].qkv, wide->weights.layers[1].qkv, "qkv");
  ExpectSameTensor(st->weights.lm_head, wide->weights.lm_head, "lm_head");
}

// A BF16 copy (f16 -> f32 -> bf16, rounded to nearest even) widens to exactly those values.
TEST_F(HfLlamaParityTest, Bf16CheckpointLoads) {
  auto st = Load(FixtureDir("safetensors"));
  ASSERT_TRUE(st.ok()) << st.status();
  std::map<std::string, RawTensor> tensors = ReadRaw(*st->source);
  for (auto& [name, t] : tensors) {
    for (size_t i = 0; i < t.bytes.size() / 2; ++i) {
      uint16_t h;
      std::memcpy(&h, t.bytes.data() + 2 * i, 2);
      const uint16_t b = F32ToBF16(F16ToF32(h));
      std::memcpy(t.bytes.data() + 2 * i, &b, 2);
    }
    t.dtype = "BF16";
  }
  auto narrow = Load(WriteCheckpoint("bf16", tensors));
  ASSERT_TRUE(narrow.ok()) << narrow.status();
  const Tensor& a = st->weights.layers[0].gate_up;
  const Tensor& b = narrow->weights.layers[0].gate_up;
  ASSERT_EQ(a.DebugString(), b.DebugString());
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    ASSERT_EQ(b.data_as<float>()[i], BF16ToF32(F32ToBF16(a.data_as<float>()[i]))) << i;
  }
}

// With tie_word_embeddings the head is the embedding, with or without an lm_head tensor.
TEST_F(HfLlamaParityTest, TiedEmbeddingsShareTheEmbedding) {
  auto st = Load(FixtureDir("safetensors"));
  ASSERT_TRUE(st.ok()) << st.status();
  std::map<std::string, RawTensor> tensors = ReadRaw(*st->source);
  auto tie = [](nlohmann::json& c) { c["tie_word_embeddings"] = true; };
  auto with_head = Load(WriteCheckpoint("tied_with_head", tensors, tie));
  ASSERT_TRUE(with_head.ok()) << with_head.status();
  EXPECT_EQ(with_head->weights.lm_head.data(), with_head->weights.embedding.data());
  tensors.erase("lm_head.weight");
  auto without_head = Load(WriteCheckpoint("tied_without_head", tensors, tie));
  ASSERT_TRUE(without_head.ok()) << without_head.status();
  EXPECT_EQ(without_head->weights.lm_head.data(), without_head->weights.embedding.data());
  EXPECT_EQ(without_head->weights.num_parameters, st->weights.num_parameters - 256 * 64);
  ExpectSameTensor(without_head->weights.embedding, st->weights.embedding, "embedding");
}

TEST_F(HfLlamaParityTest, ForwardMatchesTransformers) {
  for (const char* format : {"safetensors", "bin"}) {
    auto loaded = Load(FixtureDir(format));
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    CpuBackend backend(0);
    Model model(loaded->config, std::move(loaded->weights), &backend, 64, 1);
    KvCache cache(model.config(), 8, kBlockSize);
    const std::vector<int32_t> blocks = {3, 1};  // out of order: the block table is used
    const int32_t vocab = model.config().vocab_size;
    ASSERT_EQ(vocab, (*expected_)["vocab_size"].get<int32_t>());

    double worst = 0.0;
    for (const nlohmann::json& prompt : (*expected_)["prompts"]) {
      std::vector<int32_t> tokens = prompt["prompt_ids"].get<std::vector<int32_t>>();
      int32_t computed = 0;
      std::vector<float> logits(vocab);
      int step = 0;
      std::printf("%s, prompt of %zu tokens, max |logit diff| per step:", format, tokens.size());
      for (const nlohmann::json& expected : prompt["steps"]) {
        ForwardBatch batch;
        const int32_t n = static_cast<int32_t>(tokens.size()) - computed;
        for (int32_t p = computed; p < computed + n; ++p) {
          batch.token_ids.push_back(tokens[p]);
          batch.positions.push_back(p);
          batch.slots.push_back(blocks[p / kBlockSize] * kBlockSize + p % kBlockSize);
        }
        batch.sequences.push_back({0, n, computed + n, blocks.data()});
        computed += n;
        model.Forward(batch, &cache, logits.data());

        const auto want = expected["logits"].get<std::vector<double>>();
        ASSERT_EQ(want.size(), static_cast<size_t>(vocab));
        double diff = 0.0;
        for (int32_t i = 0; i < vocab; ++i) diff = std::max(diff, std::fabs(logits[i] - want[i]));
        std::printf(" %.1e", diff);
        worst = std::max(worst, diff);
        const int32_t token = ArgMax(logits);
        ASSERT_EQ(token, expected["token"].get<int32_t>()) << format << " step " << step;
        tokens.push_back(token);
        ++step;
      }
      std::printf("\n");
      EXPECT_EQ(step, 8);
    }
    std::printf("%s: max |logit diff| over all prompts and steps: %.2e\n", format, worst);
    EXPECT_LT(worst, kMaxLogitDiff) << format;
  }
}

// Two shards and a model.safetensors.index.json load to the weights of the single file.
TEST_F(HfLlamaParityTest, ShardedSafetensorsLoad) {
  auto st = Load(FixtureDir("safetensors"));
  ASSERT_TRUE(st.ok()) << st.status();
  std::map<std::string, RawTensor> shards[2];
  nlohmann::json weight_map = nlohmann::json::object();
  for (auto& [name, t] : ReadRaw(*st->source)) {
    const int shard = name.find("layers.1.") != std::string::npos || name == "lm_head.weight";
    shards[shard][name] = t;
    weight_map[name] = Cat("model-0000", shard + 1, "-of-00002.safetensors");
  }
  const std::string dir = WriteCheckpoint("sharded", shards[0]);
  fs::remove(dir + "/model.safetensors");
  WriteSafetensors(dir + "/model-00001-of-00002.safetensors", shards[0]);
  WriteSafetensors(dir + "/model-00002-of-00002.safetensors", shards[1]);
  std::ofstream(dir + "/model.safetensors.index.json")
      << nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", weight_map}};
  auto sharded = Load(dir);
  ASSERT_TRUE(sharded.ok()) << sharded.status();
  ExpectSameTensor(sharded->weights.embedding, st->weights.embedding, "embedding");
  ExpectSameTensor(sharded->weights.layers[0].qkv, st->weights.layers[0].qkv, "qkv 0");
  ExpectSameTensor(sharded->weights.layers[1].qkv, st->weights.layers[1].qkv, "qkv 1");
  ExpectSameTensor(sharded->weights.lm_head, st->weights.lm_head, "lm_head");
}

// ---- Broken checkpoints ------------------------------------------------------------------

class HfLlamaErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto source = OpenHfCheckpoint(FixtureDir("safetensors"));
    ASSERT_TRUE(source.ok()) << source.status();
    tensors_ = ReadRaw(**source);
  }
  std::map<std::string, RawTensor> tensors_;
};

TEST_F(HfLlamaErrorTest, RenamedTensorNamesFileAndTensor) {
  const std::string name = "model.layers.1.mlp.up_proj.weight";
  tensors_["model.layers.1.mlp.upproj.weight"] = tensors_.at(name);
  tensors_.erase(name);
  const std::string dir = WriteCheckpoint("renamed", tensors_);
  auto loaded = Load(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.status().message(), HasSubstr(dir + "/model.safetensors"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("missing tensor '" + name + "'"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("model.layers.1.mlp.upproj.weight"));
}

TEST_F(HfLlamaErrorTest, WrongTensorShapeNamesExpectedAndActual) {
  // o_proj [64, 64] stored as [128, 32]: same bytes, wrong shape.
  tensors_.at("model.layers.0.self_attn.o_proj.weight").shape = {128, 32};
  const std::string dir = WriteCheckpoint("reshaped", tensors_);
  auto loaded = Load(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.status().message(), HasSubstr(dir + "/model.safetensors"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("model.layers.0.self_attn.o_proj.weight"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("has shape [128, 32], expected [64, 64]"));
}

TEST_F(HfLlamaErrorTest, ConfigDisagreeingWithTensorsNamesExpectedAndActual) {
  const std::string dir = WriteCheckpoint("config_inter", tensors_,
                                          [](nlohmann::json& c) { c["intermediate_size"] = 96; });
  auto loaded = Load(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.status().message(), HasSubstr(dir + "/model.safetensors"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("model.layers.0.mlp.gate_proj.weight"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("has shape [128, 64], expected [96, 64]"));
}

TEST_F(HfLlamaErrorTest, UnannouncedBiasIsRefused) {
  tensors_["model.layers.0.self_attn.q_proj.bias"] = {"F16", {64}, std::string(128, '\0')};
  const std::string dir = WriteCheckpoint("bias", tensors_);
  auto loaded = Load(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.status().message(), HasSubstr("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_THAT(loaded.status().message(), HasSubstr(dir + "/model.safetensors"));
}

TEST_F(HfLlamaErrorTest, NonFloatTensorIsRefused) {
  RawTensor& t = tensors_.at("model.norm.weight");
  t = {"I32", {64}, std::string(256, '\0')};
  auto loaded = Load(WriteCheckpoint("i32", tensors_));
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.status().message(), HasSubstr("'model.norm.weight' has dtype"));
}

// A dense checkpoint under a config that announces experts or biases: the first tensor
// the config needs and the checkpoint lacks is named, with the file.
TEST(HfLlamaConfigMismatchTest, ExpertsTheCheckpointLacksAreNamed) {
  auto config = ModelConfigFromHfConfig(FixtureDir("safetensors") + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  config->moe.num_experts = 4;
  config->moe.top_k = 2;
  config->moe.norm_topk_prob = true;
  config->moe.expert_intermediate_sizes.assign(config->num_layers, std::vector<int32_t>(4, 32));
  auto source = OpenHfCheckpoint(FixtureDir("safetensors"));
  ASSERT_TRUE(source.ok()) << source.status();
  auto weights = LoadHfWeights(**source, *config);
  ASSERT_FALSE(weights.ok());
  EXPECT_EQ(weights.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(weights.status().message(),
              HasSubstr("missing tensor 'model.layers.0.block_sparse_moe.gate.weight'"));
  EXPECT_THAT(weights.status().message(), HasSubstr("model.safetensors"));
}

TEST(HfLlamaConfigMismatchTest, BiasesTheCheckpointLacksAreNamed) {
  auto config = ModelConfigFromHfConfig(FixtureDir("safetensors") + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  config->attention_bias = true;
  auto source = OpenHfCheckpoint(FixtureDir("safetensors"));
  ASSERT_TRUE(source.ok()) << source.status();
  auto weights = LoadHfWeights(**source, *config);
  ASSERT_FALSE(weights.ok());
  EXPECT_EQ(weights.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(weights.status().message(),
              HasSubstr("missing tensor 'model.layers.0.self_attn.q_proj.bias'"));
}

TEST(OpenHfCheckpointTest, DirectoryWithoutWeightsIsNotFound) {
  const std::string empty = testing::TempDir() + "/no_weights";
  fs::create_directories(empty);
  std::ofstream(empty + "/config.json") << "{}";
  auto source = OpenHfCheckpoint(empty);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(source.status().message(), HasSubstr(empty));

  const std::string missing = testing::TempDir() + "/does_not_exist";
  source = OpenHfCheckpoint(missing);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(source.status().message(), HasSubstr(missing));
}

TEST(OpenHfCheckpointTest, PrefersSafetensorsOverBin) {
  const std::string dir = testing::TempDir() + "/both";
  fs::create_directories(dir);
  fs::copy_file(FixtureDir("safetensors") + "/model.safetensors", dir + "/model.safetensors",
                fs::copy_options::overwrite_existing);
  fs::copy_file(FixtureDir("bin") + "/pytorch_model.bin", dir + "/pytorch_model.bin",
                fs::copy_options::overwrite_existing);
  auto source = OpenHfCheckpoint(dir);
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_FALSE((*source)->tensors().empty());
  EXPECT_EQ((*source)->tensors()[0].file, dir + "/model.safetensors");
}

}  // namespace
}  // namespace moeserve
