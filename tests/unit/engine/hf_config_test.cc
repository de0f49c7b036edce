// ModelConfigFromHfConfig against tests/fixtures/hf_configs: each <name>.json was written
// by transformers' config classes (or by hand after a public config, for families
// transformers lacks) and <name>.expected.txt says, field by field, what we must read from
// it (tests/fixtures/gen_hf_configs.py). Then class defaults for absent keys, and errors
// that name the file and the key.
#include "engine/loaders/hf_config.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/absl_strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string F32(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v));
  return buf;
}

template <typename T, typename Fn>
std::string Join(const std::vector<T>& items, const char* sep, Fn fn) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += fn(items[i]);
  }
  return out;
}

const char* RopeKindName(RopeScalingKind kind) {
  switch (kind) {
    case RopeScalingKind::kNone:
      return "none";
    case RopeScalingKind::kLinear:
      return "linear";
    case RopeScalingKind::kLlama3:
      return "llama3";
  }
  return "?";
}

const char* RouterName(RouterKind kind) {
  switch (kind) {
    case RouterKind::kSoftmaxTopK:
      return "softmax_topk";
    case RouterKind::kLlamaMoeMlpTanh:
      return "llama_moe_mlp_tanh";
    case RouterKind::kLlamaMoeLinear:
      return "llama_moe_linear";
  }
  return "?";
}

// The same "key value" summary the generator writes.
std::map<std::string, std::string> Summary(const ModelConfig& c) {
  auto b = [](bool v) { return std::string(v ? "1" : "0"); };
  auto i = [](int32_t v) { return std::to_string(v); };
  std::vector<int32_t> moe_layers;
  for (int layer = 0; layer < c.num_layers; ++layer) {
    if (c.IsMoeLayer(layer)) moe_layers.push_back(layer);
  }
  const MoeConfig& m = c.moe;
  return {
      {"model_type", ModelFamilyName(c.family)},
      {"vocab_size", i(c.vocab_size)},
      {"hidden_size", i(c.hidden_size)},
      {"intermediate_size", i(c.intermediate_size)},
      {"num_layers", i(c.num_layers)},
      {"num_heads", i(c.num_heads)},
      {"num_kv_heads", i(c.num_kv_heads)},
      {"head_dim", i(c.head_dim)},
      {"rotary_dim", i(c.rotary_dim)},
      {"rope_theta", F32(c.rope_theta)},
      {"rms_norm_eps", F32(c.rms_norm_eps)},
      {"max_position_embeddings", i(c.max_position_embeddings)},
      {"tie_word_embeddings", b(c.tie_word_embeddings)},
      {"rope_scaling", RopeKindName(c.rope_scaling.kind)},
      {"rope_factor", F32(c.rope_scaling.factor)},
      {"rope_low_freq_factor", F32(c.rope_scaling.low_freq_factor)},
      {"rope_high_freq_factor", F32(c.rope_scaling.high_freq_factor)},
      {"rope_original_max_position_embeddings", i(c.rope_scaling.original_max_position_embeddings)},
      {"attention_bias", b(c.attention_bias)},
      {"attention_out_bias", b(c.attention_out_bias)},
      {"qk_norm", b(c.qk_norm)},
      {"torch_dtype", c.torch_dtype},
      {"bos_token_id", i(c.bos_token_id)},
      {"eos_token_ids", Join(c.eos_token_ids, ",", i)},
      {"num_experts", i(m.num_experts)},
      {"top_k", i(m.top_k)},
      {"router", RouterName(m.router)},
      {"norm_topk_prob", b(m.norm_topk_prob)},
      {"moe_layers", Join(moe_layers, ",", i)},
      {"expert_sizes", Join(m.expert_intermediate_sizes, ";",
                            [&](const std::vector<int32_t>& v) { return Join(v, ",", i); })},
      {"num_shared_experts", i(m.num_shared_experts)},
      {"shared_expert_intermediate_size", i(m.shared_expert_intermediate_size)},
      {"shared_expert_gate", b(m.shared_expert_gate)},
      {"gate_use_softmax", b(m.gate_use_softmax)},
      {"multiply_gate_scores", b(m.multiply_gate_scores)},
      {"score_scale_factors", Join(m.score_scale_factors, ",", F32)},
  };
}

std::map<std::string, std::string> ReadExpected(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

class HfConfigFixtureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(HfConfigFixtureTest, MatchesTransformers) {
  const std::string base =
      testing::SourcePath(std::string("tests/fixtures/hf_configs/") + GetParam());
  const std::map<std::string, std::string> expected = ReadExpected(base + ".expected.txt");
  ASSERT_FALSE(expected.empty()) << base << ".expected.txt";
  absl::StatusOr<ModelConfig> config = ModelConfigFromHfConfig(base + ".json");
  ASSERT_TRUE(config.ok()) << config.status();
  const std::map<std::string, std::string> got = Summary(*config);
  EXPECT_EQ(got.size(), expected.size()) << "summary keys differ from the generator's";
  for (const auto& [key, want] : expected) {
    auto it = got.find(key);
    ASSERT_NE(it, got.end()) << key;
    EXPECT_EQ(it->second, want) << GetParam() << ": " << key;
  }
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, HfConfigFixtureTest,
                         ::testing::Values("llama", "llama3", "llama3_moe", "mixtral", "qwen2_moe",
                                           "olmoe", "deepseek", "llama_moe", "llama_moe_linear"));

absl::StatusOr<ModelConfig> FromText(const std::string& text) {
  return ModelConfigFromHfConfigText(text, "test/config.json");
}

// The five shape keys every config must state, then `extra` members.
std::string Minimal(const std::string& model_type, const std::string& extra = "") {
  return Cat("{\"model_type\": \"", model_type,
             "\", \"vocab_size\": 1000, \"hidden_size\": 256, \"intermediate_size\": 128, "
             "\"num_hidden_layers\": 4, \"num_attention_heads\": 16",
             extra.empty() ? "" : ", ", extra, "}");
}

TEST(HfConfigDefaultsTest, AbsentKeysTakeTheClassDefaults) {
  absl::StatusOr<ModelConfig> llama = FromText(Minimal("llama"));
  ASSERT_TRUE(llama.ok()) << llama.status();
  EXPECT_EQ(llama->num_kv_heads, 16);
  EXPECT_EQ(llama->head_dim, 16);
  EXPECT_EQ(llama->max_position_embeddings, 2048);
  EXPECT_FLOAT_EQ(llama->rms_norm_eps, 1e-6f);
  EXPECT_EQ(llama->rope_theta, 10000.0f);
  EXPECT_EQ(llama->bos_token_id, 1);
  EXPECT_EQ(llama->eos_token_ids, std::vector<int32_t>{2});
  EXPECT_EQ(llama->moe.num_experts, 0);
  EXPECT_FALSE(llama->IsMoeLayer(0));

  const std::string mixtral_text =
      "{\"model_type\": \"mixtral\", \"vocab_size\": 32000, \"hidden_size\": 4096, "
      "\"intermediate_size\": 14336, \"num_hidden_layers\": 2, \"num_attention_heads\": 32}";
  absl::StatusOr<ModelConfig> mixtral = FromText(mixtral_text);
  ASSERT_TRUE(mixtral.ok()) << mixtral.status();
  EXPECT_EQ(mixtral->num_kv_heads, 8);
  EXPECT_EQ(mixtral->rope_theta, 1e6f);
  EXPECT_EQ(mixtral->max_position_embeddings, 131072);
  EXPECT_FLOAT_EQ(mixtral->rms_norm_eps, 1e-5f);
  EXPECT_EQ(mixtral->moe.num_experts, 8);
  EXPECT_EQ(mixtral->moe.top_k, 2);
  EXPECT_TRUE(mixtral->moe.norm_topk_prob);

  const std::string deepseek_text =
      "{\"model_type\": \"deepseek\", \"vocab_size\": 102400, \"hidden_size\": 1024, "
      "\"intermediate_size\": 128, \"num_hidden_layers\": 2, \"num_attention_heads\": 64}";
  absl::StatusOr<ModelConfig> deepseek = FromText(deepseek_text);
  ASSERT_TRUE(deepseek.ok()) << deepseek.status();
  EXPECT_EQ(deepseek->moe.num_experts, 0);  // n_routed_experts None: a dense model
  EXPECT_EQ(deepseek->num_kv_heads, 32);    // DeepseekConfig's default, not the head count
  EXPECT_EQ(deepseek->bos_token_id, 100000);
  EXPECT_EQ(deepseek->eos_token_ids, std::vector<int32_t>{100001});

  absl::StatusOr<ModelConfig> llama_moe = FromText(Minimal("llama_moe"));
  ASSERT_TRUE(llama_moe.ok()) << llama_moe.status();
  EXPECT_EQ(llama_moe->moe.num_experts, 16);
  EXPECT_EQ(llama_moe->moe.top_k, 4);
  EXPECT_EQ(llama_moe->moe.router, RouterKind::kLlamaMoeMlpTanh);
  EXPECT_TRUE(llama_moe->moe.gate_use_softmax);
  EXPECT_TRUE(llama_moe->moe.multiply_gate_scores);
  EXPECT_EQ(llama_moe->moe.expert_intermediate_sizes[3], std::vector<int32_t>(16, 8));
  EXPECT_EQ(llama_moe->moe.score_scale_factors, std::vector<float>(4, 1.0f));
}

TEST(HfConfigDefaultsTest, Qwen2MoeClassDefaults) {
  const std::string text =
      "{\"model_type\": \"qwen2_moe\", \"vocab_size\": 151936, \"hidden_size\": 2048, "
      "\"intermediate_size\": 5632, \"num_hidden_layers\": 2, \"num_attention_heads\": 16}";
  absl::StatusOr<ModelConfig> c = FromText(text);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_kv_heads, 16);
  EXPECT_EQ(c->max_position_embeddings, 32768);
  EXPECT_EQ(c->moe.num_experts, 60);
  EXPECT_EQ(c->moe.top_k, 4);
  EXPECT_FALSE(c->moe.norm_topk_prob);
  EXPECT_EQ(c->moe.expert_intermediate_sizes[0], std::vector<int32_t>(60, 1408));
  EXPECT_EQ(c->moe.shared_expert_intermediate_size, 5632);
  EXPECT_TRUE(c->moe.shared_expert_gate);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_FALSE(c->attention_out_bias);
  EXPECT_TRUE(c->eos_token_ids.empty());
  EXPECT_EQ(c->bos_token_id, -1);
}

void ExpectError(const std::string& text, const std::vector<std::string>& parts) {
  absl::StatusOr<ModelConfig> c = FromText(text);
  ASSERT_FALSE(c.ok()) << text;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("test/config.json"));
  for (const std::string& part : parts) {
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(part)) << text;
  }
}

TEST(HfConfigErrorTest, UnknownModelTypeListsTheSupportedOnes) {
  ExpectError(Minimal("gpt2"), {"'model_type'", "gpt2",
                                "llama, mixtral, llama_moe, qwen2_moe, "
                                "deepseek, olmoe"});
  ExpectError("{\"vocab_size\": 3}", {"'model_type'", "missing"});
}

TEST(HfConfigErrorTest, WrongTypesNameTheKey) {
  ExpectError(
      "{\"model_type\": \"llama\", \"vocab_size\": \"1000\", \"hidden_size\": 64, "
      "\"intermediate_size\": 128, \"num_hidden_layers\": 4, "
      "\"num_attention_heads\": 4}",
      {"'vocab_size'", "integer", "string"});
  ExpectError(Minimal("llama", "\"rms_norm_eps\": true"), {"'rms_norm_eps'", "number"});
  ExpectError(Minimal("llama", "\"tie_word_embeddings\": 1"), {"'tie_word_embeddings'"});
  ExpectError(Minimal("mixtral", "\"num_local_experts\": 8.5"), {"'num_local_experts'"});
  ExpectError(Minimal("llama", "\"eos_token_id\": [1, \"x\"]"), {"'eos_token_id'"});
  ExpectError("[1, 2]", {"object"});
  ExpectError("{\"model_type\": \"llama\",}", {"invalid JSON"});
  ExpectError(Minimal("llama", "\"vocab_size\": 5"), {"invalid JSON", "duplicate key"});
}

TEST(HfConfigErrorTest, MissingRequiredKey) {
  ExpectError(
      "{\"model_type\": \"llama\", \"vocab_size\": 1000, \"hidden_size\": 64, "
      "\"num_hidden_layers\": 4, \"num_attention_heads\": 4}",
      {"'intermediate_size'", "required"});
}

TEST(HfConfigErrorTest, InconsistentValues) {
  ExpectError(Minimal("mixtral", "\"num_local_experts\": 4, \"num_experts_per_tok\": 5"),
              {"'num_experts_per_tok'", "5"});
  ExpectError(Minimal("olmoe", "\"num_experts\": 8, \"num_experts_per_tok\": 0"),
              {"'num_experts_per_tok'"});
  ExpectError(Minimal("llama", "\"num_key_value_heads\": 3"), {"'num_key_value_heads'"});
  ExpectError(Minimal("mixtral", "\"num_local_experts\": -3"), {"'num_local_experts'", "-3"});
  ExpectError(Minimal("olmoe", "\"num_experts\": 0"), {"'num_experts'", "positive"});
  ExpectError(Minimal("qwen2_moe", "\"moe_intermediate_size\": -8"), {"expert of size -8"});
  ExpectError(Minimal("llama_moe",
                      "\"num_experts\": 2, \"num_selects\": 1, "
                      "\"size_experts\": [[64, 64], [64, 64], [64, 64]]"),
              {"'size_experts'", "4"});
  ExpectError(Minimal("llama_moe",
                      "\"num_experts\": 2, \"num_selects\": 1, "
                      "\"size_experts\": [[64, 64], [64], [64, 64], [64, 64]]"),
              {"'size_experts[1]'", "2 expert sizes"});
  ExpectError(Minimal("llama_moe",
                      "\"num_experts\": 2, \"num_selects\": 1, "
                      "\"size_experts\": [[64, 64], [60, 64], [64, 64], [64, 64]]"),
              {"'size_experts[1]'", "sums to 124"});
  ExpectError(Minimal("llama_moe", "\"num_experts\": 3, \"num_selects\": 1"),
              {"'intermediate_size'", "divisible"});
  ExpectError(Minimal("llama_moe", "\"score_scale_factor\": [1.0, 2.0]"),
              {"'score_scale_factor'", "4 layers"});
  ExpectError(Minimal("llama_moe", "\"gate_network\": \"conv\""), {"'gate_network'"});
  ExpectError(Minimal("deepseek",
                      "\"n_routed_experts\": 4, \"scoring_func\": \"sigmoid\", "
                      "\"num_experts_per_tok\": 2, \"num_key_value_heads\": 16"),
              {"'scoring_func'"});
  ExpectError(Minimal("qwen2_moe", "\"mlp_only_layers\": [7]"), {"mlp_only_layers", "7"});
  // Found by tests/fuzz: the shared experts' total size overflowed int32.
  ExpectError(Minimal("deepseek",
                      "\"n_routed_experts\": 4, \"num_experts_per_tok\": 2, "
                      "\"n_shared_experts\": 22, \"moe_intermediate_size\": 100000000, "
                      "\"num_key_value_heads\": 16"),
              {"'n_shared_experts'", "2200000000", "out of range"});
  // And 10^8 layers (or 2^29 experts per layer) sized per-layer tables to gigabytes.
  ExpectError(
      "{\"model_type\": \"mixtral\", \"vocab_size\": 1000, \"hidden_size\": 256, "
      "\"intermediate_size\": 128, \"num_hidden_layers\": 100000000, "
      "\"num_attention_heads\": 16}",
      {"'num_hidden_layers'", "100000000", "more than moeserve supports"});
  ExpectError(Minimal("mixtral", "\"num_local_experts\": 536870912"),
              {"'num_local_experts'", "536870912", "more than moeserve supports"});
}

TEST(HfConfigErrorTest, UnsupportedRopeAndAttention) {
  ExpectError(Minimal("llama", "\"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2.0}"),
              {"'rope_scaling.rope_type'", "dynamic", "not supported"});
  ExpectError(Minimal("llama",
                      "\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4.0,"
                      " \"rope_theta\": 10000.0}"),
              {"'rope_parameters.rope_type'", "yarn"});
  ExpectError(Minimal("llama", "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}"),
              {"low_freq_factor"});
  ExpectError(Minimal("mixtral", "\"sliding_window\": 1024"), {"'sliding_window'"});
  ExpectError(Minimal("olmoe", "\"clip_qkv\": 8.0"), {"'clip_qkv'"});
  ExpectError(Minimal("llama", "\"hidden_act\": \"gelu\""), {"'hidden_act'"});
}

TEST(HfConfigTest, Llama3RopeOriginalContextDefaultsToMaxPositions) {
  absl::StatusOr<ModelConfig> c =
      FromText(Minimal("llama",
                       "\"max_position_embeddings\": 4096, \"rope_theta\": 500000.0, "
                       "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                       "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0}"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope_scaling.kind, RopeScalingKind::kLlama3);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_EQ(c->rope_theta, 500000.0f);
}

TEST(HfConfigTest, MissingFileNamesThePath) {
  absl::StatusOr<ModelConfig> c = ModelConfigFromHfConfig("/nonexistent/config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/config.json"));
}

TEST(ModelConfigTest, IsMoeLayerRules) {
  ModelConfig c;
  c.num_layers = 8;
  c.moe.num_experts = 4;
  c.family = ModelFamily::kQwen2Moe;
  c.moe.decoder_sparse_step = 2;
  c.moe.mlp_only_layers = {5};
  std::vector<int> sparse;
  for (int l = 0; l < 8; ++l) {
    if (c.IsMoeLayer(l)) sparse.push_back(l);
  }
  EXPECT_EQ(sparse, (std::vector<int>{1, 3, 7}));
  c.family = ModelFamily::kDeepseek;
  c.moe.first_k_dense_replace = 1;
  c.moe.moe_layer_freq = 3;
  sparse.clear();
  for (int l = 0; l < 8; ++l) {
    if (c.IsMoeLayer(l)) sparse.push_back(l);
  }
  EXPECT_EQ(sparse, (std::vector<int>{3, 6}));
  c.family = ModelFamily::kMixtral;
  EXPECT_TRUE(c.IsMoeLayer(0));
  c.moe.num_experts = 0;
  EXPECT_FALSE(c.IsMoeLayer(0));
}

TEST(ModelConfigTest, ValidateChecksTheMoeFields) {
  absl::StatusOr<ModelConfig> c = FromText(Minimal("mixtral", "\"num_local_experts\": 4"));
  ASSERT_TRUE(c.ok()) << c.status();
  ModelConfig bad = *c;
  bad.moe.top_k = 5;
  EXPECT_THAT(std::string(bad.Validate().message()), HasSubstr("top_k"));
  bad = *c;
  bad.moe.expert_intermediate_sizes.pop_back();
  EXPECT_THAT(std::string(bad.Validate().message()), HasSubstr("expert_intermediate_sizes"));
  bad = *c;
  bad.moe.expert_intermediate_sizes[1][2] = 0;
  EXPECT_THAT(std::string(bad.Validate().message()), HasSubstr("layer 1"));
  bad = *c;
  bad.moe.score_scale_factors = {1.0f};
  EXPECT_THAT(std::string(bad.Validate().message()), HasSubstr("score_scale_factor"));
  bad = *c;
  bad.moe.num_shared_experts = 1;
  EXPECT_THAT(std::string(bad.Validate().message()), HasSubstr("shared"));
  bad = *c;
  bad.moe.router = RouterKind::kLlamaMoeLinear;
  EXPECT_THAT(std::string(bad.Validate().message()), HasSubstr("router"));
}

}  // namespace
}  // namespace moeserve
