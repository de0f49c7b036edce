// upcycle and split end to end on small sources: the tiny random Llama of
// tests/fixtures/tiny_llama (f16 safetensors) and a hand-built F32 GGUF whose q/k rows carry
// llama.cpp's permutation. Outputs are read back with the repo's safetensors reader and
// hf_config: config keys, tensor names, shapes, dtypes, and that every expert is the right
// copy or slice of the dense tensors. Then the command line and its errors.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/absl_strings.h"
#include "engine/loaders/hf_config.h"
#include "engine/loaders/json_lite.h"
#include "engine/loaders/safetensors_reader.h"
#include "engine/tokenizer/hf_tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/byte_level.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/test_paths.h"
#include "tools/convert/cli.h"
#include "tools/convert/split.h"
#include "tools/convert/upcycle.h"

namespace moeserve::convert {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A fresh directory under the test's temp dir.
std::string NewDir(const std::string& name) {
  static int counter = 0;
  return Cat(testing::TempDir(), "/", name, "_", counter++);
}

// The tiny Llama's weights and config with its tokenizer files beside them.
const std::string& TinySource() {
  static const std::string* dir = [] {
    auto* path = new std::string(NewDir("tiny_src"));
    fs::create_directories(*path);
    for (const char* sub :
         {"tests/fixtures/tiny_llama/safetensors", "tests/fixtures/tiny_llama/tokenizer"}) {
      for (const auto& entry : fs::directory_iterator(testing::SourcePath(sub))) {
        fs::copy_file(entry.path(), fs::path(*path) / entry.path().filename());
      }
    }
    return path;
  }();
  return *dir;
}

// A tensor's values as f32, whatever its float dtype.
std::vector<float> Values(const TensorView& view) {
  const int64_t n = view.num_bytes / (view.dtype == DType::kF32 ? 4 : 2);
  std::vector<float> out(n);
  for (int64_t i = 0; i < n; ++i) {
    if (view.dtype == DType::kF32) {
      std::memcpy(&out[i], view.data + 4 * i, 4);
    } else {
      uint16_t bits;
      std::memcpy(&bits, view.data + 2 * i, 2);
      out[i] = view.dtype == DType::kF16 ? F16ToF32(bits) : BF16ToF32(bits);
    }
  }
  return out;
}

std::vector<float> Rows(const std::vector<float>& m, int64_t cols, int64_t begin, int64_t rows) {
  return std::vector<float>(m.begin() + begin * cols, m.begin() + (begin + rows) * cols);
}

std::vector<float> Columns(const std::vector<float>& m, int64_t cols, int64_t begin,
                           int64_t width) {
  std::vector<float> out;
  for (int64_t r = 0; r < static_cast<int64_t>(m.size()) / cols; ++r) {
    for (int64_t c = begin; c < begin + width; ++c) out.push_back(m[r * cols + c]);
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

json_lite::Value ReadJson(const std::string& path) {
  auto value = json_lite::Parse(ReadFile(path));
  EXPECT_TRUE(value.ok()) << path << ": " << value.status();
  return value.ok() ? *value : json_lite::Value{};
}

struct Output {
  std::unique_ptr<SafetensorsSource> tensors;
  ModelConfig config;
  json_lite::Value json;
};

Output ReadOutput(const std::string& dst) {
  Output out;
  auto tensors = SafetensorsSource::Open(dst + "/model.safetensors");
  EXPECT_TRUE(tensors.ok()) << tensors.status();
  if (tensors.ok()) out.tensors = std::move(tensors).value();
  auto config = ModelConfigFromHfConfig(dst + "/config.json");
  EXPECT_TRUE(config.ok()) << config.status();
  if (config.ok()) out.config = *config;
  out.json = ReadJson(dst + "/config.json");
  return out;
}

std::set<std::string> Names(const TensorSource& source) {
  std::set<std::string> names;
  for (const TensorView& view : source.tensors()) names.insert(view.name);
  return names;
}

class TinyLlamaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dense = SafetensorsSource::Open(TinySource() + "/model.safetensors");
    ASSERT_TRUE(dense.ok()) << dense.status();
    dense_ = std::move(dense).value();
    auto config = ModelConfigFromHfConfig(TinySource() + "/config.json");
    ASSERT_TRUE(config.ok());
    dense_config_ = *config;
  }
  std::vector<float> Dense(const std::string& name) const {
    const TensorView* view = dense_->Find(name);
    EXPECT_NE(view, nullptr) << name;
    return view == nullptr ? std::vector<float>() : Values(*view);
  }
  // Every field the conversion carries over from the dense config.
  void ExpectLlamaFields(const ModelConfig& c) const {
    const ModelConfig& d = dense_config_;
    EXPECT_EQ(c.vocab_size, d.vocab_size);
    EXPECT_EQ(c.hidden_size, d.hidden_size);
    EXPECT_EQ(c.intermediate_size, d.intermediate_size);
    EXPECT_EQ(c.num_layers, d.num_layers);
    EXPECT_EQ(c.num_heads, d.num_heads);
    EXPECT_EQ(c.num_kv_heads, d.num_kv_heads);
    EXPECT_EQ(c.head_dim, d.head_dim);
    EXPECT_EQ(c.rms_norm_eps, d.rms_norm_eps);
    EXPECT_EQ(c.rope_theta, d.rope_theta);
    EXPECT_EQ(c.max_position_embeddings, d.max_position_embeddings);
    EXPECT_EQ(c.tie_word_embeddings, d.tie_word_embeddings);
    EXPECT_EQ(c.bos_token_id, d.bos_token_id);
    EXPECT_EQ(c.eos_token_ids, d.eos_token_ids);
  }
  // The attention, norm, embedding and lm_head tensors equal the dense ones exactly.
  void ExpectSharedTensors(const TensorSource& out) const {
    for (const TensorView& view : dense_->tensors()) {
      if (view.name.find(".mlp.") != std::string::npos) continue;
      const TensorView* got = out.Find(view.name);
      ASSERT_NE(got, nullptr) << view.name;
      EXPECT_EQ(got->shape, view.shape) << view.name;
      EXPECT_EQ(Values(*got), Values(view)) << view.name;
    }
  }

  std::unique_ptr<SafetensorsSource> dense_;
  ModelConfig dense_config_;
};

TEST_F(TinyLlamaTest, UpcycleWritesMixtral) {
  const std::string dst = NewDir("up");
  ASSERT_TRUE(Upcycle(TinySource(), dst, {.num_experts = 4, .top_k = 2, .seed = 7}).ok());
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(dst + "/" + file)) << file;
  }
  const Output out = ReadOutput(dst);
  ASSERT_NE(out.tensors, nullptr);
  EXPECT_EQ(out.config.family, ModelFamily::kMixtral);
  EXPECT_EQ(out.config.moe.num_experts, 4);
  EXPECT_EQ(out.config.moe.top_k, 2);
  EXPECT_EQ(out.config.moe.router, RouterKind::kSoftmaxTopK);
  EXPECT_TRUE(out.config.moe.norm_topk_prob);
  EXPECT_EQ(out.config.torch_dtype, "float16");
  ExpectLlamaFields(out.config);
  EXPECT_EQ(out.json.Find("architectures")->as_array()[0].as_string(), "MixtralForCausalLM");
  EXPECT_EQ(out.json.Find("num_local_experts")->as_int(), 4);
  EXPECT_EQ(out.json.Find("num_experts_per_tok")->as_int(), 2);

  const int64_t hidden = 64, inter = 128;
  std::set<std::string> want = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"};
  for (int l = 0; l < 2; ++l) {
    const std::string p = Cat("model.layers.", l, ".");
    for (const char* leaf :
         {"input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
          "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
          "block_sparse_moe.gate.weight"}) {
      want.insert(p + leaf);
    }
    const TensorView* router = out.tensors->Find(p + "block_sparse_moe.gate.weight");
    ASSERT_NE(router, nullptr);
    EXPECT_THAT(router->shape, ElementsAre(4, hidden));
    double sum = 0, sum_sq = 0;
    for (const float v : Values(*router)) sum += v, sum_sq += double{v} * v;
    const double n = 4.0 * hidden;
    const double std = std::sqrt(sum_sq / n - (sum / n) * (sum / n));
    EXPECT_GT(std, 0.015) << "router init std " << std;
    EXPECT_LT(std, 0.025) << "router init std " << std;
    for (int e = 0; e < 4; ++e) {
      const std::string x = Cat(p, "block_sparse_moe.experts.", e, ".");
      want.insert({x + "w1.weight", x + "w2.weight", x + "w3.weight"});
      const TensorView* w1 = out.tensors->Find(x + "w1.weight");
      const TensorView* w2 = out.tensors->Find(x + "w2.weight");
      const TensorView* w3 = out.tensors->Find(x + "w3.weight");
      ASSERT_TRUE(w1 != nullptr && w2 != nullptr && w3 != nullptr);
      EXPECT_THAT(w1->shape, ElementsAre(inter, hidden));
      EXPECT_THAT(w2->shape, ElementsAre(hidden, inter));
      EXPECT_THAT(w3->shape, ElementsAre(inter, hidden));
      EXPECT_EQ(Values(*w1), Dense(p + "mlp.gate_proj.weight")) << x;
      EXPECT_EQ(Values(*w2), Dense(p + "mlp.down_proj.weight")) << x;
      EXPECT_EQ(Values(*w3), Dense(p + "mlp.up_proj.weight")) << x;
    }
  }
  EXPECT_EQ(Names(*out.tensors), want);
  for (const TensorView& view : out.tensors->tensors()) EXPECT_EQ(view.dtype, DType::kF16);
  ExpectSharedTensors(*out.tensors);
  // HF sources keep their tokenizer files byte for byte.
  EXPECT_EQ(ReadFile(dst + "/tokenizer.json"), ReadFile(TinySource() + "/tokenizer.json"));
}

TEST_F(TinyLlamaTest, RouterSeedAndZeroInit) {
  const auto router = [](const std::string& dst) {
    auto source = SafetensorsSource::Open(dst + "/model.safetensors");
    EXPECT_TRUE(source.ok());
    return Values(*(*source)->Find("model.layers.1.block_sparse_moe.gate.weight"));
  };
  const std::string a = NewDir("seed_a"), b = NewDir("seed_b"), c = NewDir("seed_c");
  const std::string zero = NewDir("zero");
  ASSERT_TRUE(Upcycle(TinySource(), a, {.num_experts = 2, .top_k = 1, .seed = 3}).ok());
  ASSERT_TRUE(Upcycle(TinySource(), b, {.num_experts = 2, .top_k = 1, .seed = 3}).ok());
  ASSERT_TRUE(Upcycle(TinySource(), c, {.num_experts = 2, .top_k = 1, .seed = 4}).ok());
  ASSERT_TRUE(
      Upcycle(TinySource(), zero, {.num_experts = 2, .top_k = 1, .router = RouterInit::kZero})
          .ok());
  EXPECT_EQ(router(a), router(b));
  EXPECT_NE(router(a), router(c));
  EXPECT_EQ(router(zero), std::vector<float>(2 * 64, 0.0f));
}

TEST_F(TinyLlamaTest, DtypeOverride) {
  for (const DType dtype : {DType::kF32, DType::kBF16}) {
    const std::string dst = NewDir("dtype");
    ASSERT_TRUE(Upcycle(TinySource(), dst, {.num_experts = 1, .top_k = 1, .dtype = dtype}).ok());
    const Output out = ReadOutput(dst);
    ASSERT_NE(out.tensors, nullptr);
    EXPECT_EQ(out.config.torch_dtype, dtype == DType::kF32 ? "float32" : "bfloat16");
    const TensorView* w2 = out.tensors->Find("model.layers.0.block_sparse_moe.experts.0.w2.weight");
    ASSERT_NE(w2, nullptr);
    EXPECT_EQ(w2->dtype, dtype);
    std::vector<float> want = Dense("model.layers.0.mlp.down_proj.weight");
    if (dtype == DType::kBF16) {
      for (float& v : want) v = BF16ToF32(F32ToBF16(v));
    }
    EXPECT_EQ(Values(*w2), want);
  }
}

TEST_F(TinyLlamaTest, SplitWritesLlamaMoe) {
  const std::string dst = NewDir("split");
  ASSERT_TRUE(Split(TinySource(), dst, {.num_experts = 4, .top_k = 2, .seed = 1}).ok());
  const Output out = ReadOutput(dst);
  ASSERT_NE(out.tensors, nullptr);
  const ModelConfig& c = out.config;
  EXPECT_EQ(c.family, ModelFamily::kLlamaMoe);
  EXPECT_EQ(c.moe.num_experts, 4);
  EXPECT_EQ(c.moe.top_k, 2);
  EXPECT_EQ(c.moe.router, RouterKind::kLlamaMoeMlpTanh);
  EXPECT_TRUE(c.moe.gate_use_softmax);
  EXPECT_TRUE(c.moe.multiply_gate_scores);
  EXPECT_THAT(c.moe.score_scale_factors, ElementsAre(2.0f, 2.0f));  // E / K
  EXPECT_THAT(c.moe.expert_intermediate_sizes,
              ElementsAre(ElementsAre(32, 32, 32, 32), ElementsAre(32, 32, 32, 32)));
  ExpectLlamaFields(c);
  EXPECT_EQ(out.json.Find("architectures")->as_array()[0].as_string(), "LlamaMoEForCausalLM");
  EXPECT_EQ(out.json.Find("gate_network")->as_string(), "mlp");
  EXPECT_EQ(out.json.Find("calculator_type")->as_string(), "UniversalCalculator");

  const int64_t hidden = 64, inter = 128, width = 32;
  std::set<std::string> want = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"};
  for (int l = 0; l < 2; ++l) {
    const std::string p = Cat("model.layers.", l, ".");
    for (const char* leaf :
         {"input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
          "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
          "mlp.gate.gate_network.0.weight", "mlp.gate.gate_network.2.weight",
          "mlp.gate.weight_noise.weight"}) {
      want.insert(p + leaf);
    }
    EXPECT_THAT(out.tensors->Find(p + "mlp.gate.gate_network.0.weight")->shape,
                ElementsAre(4, hidden));
    EXPECT_THAT(out.tensors->Find(p + "mlp.gate.gate_network.2.weight")->shape, ElementsAre(4, 4));
    EXPECT_EQ(Values(*out.tensors->Find(p + "mlp.gate.weight_noise.weight")),
              std::vector<float>(4 * hidden, 0.0f));
    const std::vector<float> gate = Dense(p + "mlp.gate_proj.weight");
    const std::vector<float> up = Dense(p + "mlp.up_proj.weight");
    const std::vector<float> down = Dense(p + "mlp.down_proj.weight");
    for (int e = 0; e < 4; ++e) {
      const std::string x = Cat(p, "mlp.calculator.experts.");
      const std::string g = Cat(x, "weight_gate.", e), u = Cat(x, "weight_up.", e),
                        d = Cat(x, "weight_down.", e);
      want.insert({g, u, d});
      ASSERT_TRUE(out.tensors->Find(g) && out.tensors->Find(u) && out.tensors->Find(d));
      EXPECT_THAT(out.tensors->Find(g)->shape, ElementsAre(width, hidden));
      EXPECT_THAT(out.tensors->Find(d)->shape, ElementsAre(hidden, width));
      EXPECT_EQ(Values(*out.tensors->Find(g)), Rows(gate, hidden, e * width, width)) << g;
      EXPECT_EQ(Values(*out.tensors->Find(u)), Rows(up, hidden, e * width, width)) << u;
      EXPECT_EQ(Values(*out.tensors->Find(d)), Columns(down, inter, e * width, width)) << d;
    }
  }
  EXPECT_EQ(Names(*out.tensors), want);
  ExpectSharedTensors(*out.tensors);
}

TEST_F(TinyLlamaTest, SplitZeroRouterAndScaleOverride) {
  const std::string dst = NewDir("split_zero");
  ASSERT_TRUE(
      Split(TinySource(), dst,
            {.num_experts = 4, .top_k = 4, .router = RouterInit::kZero, .score_scale_factor = 4.0f})
          .ok());
  const Output out = ReadOutput(dst);
  ASSERT_NE(out.tensors, nullptr);
  EXPECT_THAT(out.config.moe.score_scale_factors, ElementsAre(4.0f, 4.0f));
  for (const char* name : {"model.layers.0.mlp.gate.gate_network.0.weight",
                           "model.layers.1.mlp.gate.gate_network.2.weight"}) {
    for (const float v : Values(*out.tensors->Find(name))) ASSERT_EQ(v, 0.0f) << name;
  }
}

// --- GGUF sources ------------------------------------------------------------------------

// A one-layer llama GGUF in F32: hidden 8, 2 heads of 4 (1 KV head), FFN 8, a byte-level
// vocabulary (256 bytes + 2 control tokens), no output.weight (tied). Every tensor element
// is distinct, so a misplaced row shows.
std::string TinyGguf() {
  static const std::string* path = [] {
    testing::GgufWriter w;
    w.AddString("general.architecture", "llama");
    w.AddUint32("llama.block_count", 1);
    w.AddUint32("llama.embedding_length", 8);
    w.AddUint32("llama.feed_forward_length", 8);
    w.AddUint32("llama.attention.head_count", 2);
    w.AddUint32("llama.attention.head_count_kv", 1);
    w.AddUint32("llama.context_length", 64);
    w.AddFloat32("llama.rope.freq_base", 50000.0f);
    w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    std::vector<std::string> tokens = {"<s>", "</s>"};
    std::vector<int32_t> types = {3, 3};
    for (int b = 0; b < 256; ++b) {
      tokens.push_back(testing::ByteLevelChar(b));
      types.push_back(1);
    }
    w.AddString("tokenizer.ggml.model", "gpt2");
    w.AddString("tokenizer.ggml.pre", "llama-bpe");
    w.AddStringArray("tokenizer.ggml.tokens", tokens);
    w.AddInt32Array("tokenizer.ggml.token_type", types);
    w.AddStringArray("tokenizer.ggml.merges", {});
    w.AddUint32("tokenizer.ggml.bos_token_id", 0);
    w.AddUint32("tokenizer.ggml.eos_token_id", 1);
    float next = 0;
    const auto add = [&](const char* name, std::vector<int64_t> shape) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      std::vector<float> values(n);
      for (float& v : values) v = next++;
      w.AddF32Tensor(name, shape, values);
    };
    add("token_embd.weight", {8, 258});
    add("blk.0.attn_norm.weight", {8});
    add("blk.0.attn_q.weight", {8, 8});
    add("blk.0.attn_k.weight", {8, 4});
    add("blk.0.attn_v.weight", {8, 4});
    add("blk.0.attn_output.weight", {8, 8});
    add("blk.0.ffn_norm.weight", {8});
    add("blk.0.ffn_gate.weight", {8, 8});
    add("blk.0.ffn_up.weight", {8, 8});
    add("blk.0.ffn_down.weight", {8, 8});
    add("output_norm.weight", {8});
    auto* file = new std::string(NewDir("tiny") + ".gguf");
    EXPECT_TRUE(w.WriteTo(*file).ok());
    return file;
  }();
  return *path;
}

TEST(GgufSourceTest, UpcycleUnpermutesQkAndTies) {
  const std::string dst = NewDir("gguf_up");
  ASSERT_TRUE(Upcycle(TinyGguf(), dst, {.num_experts = 2, .top_k = 1}).ok());
  const Output out = ReadOutput(dst);
  ASSERT_NE(out.tensors, nullptr);
  EXPECT_EQ(out.config.torch_dtype, "float32");
  EXPECT_TRUE(out.config.tie_word_embeddings);
  EXPECT_EQ(out.config.rope_theta, 50000.0f);
  EXPECT_EQ(out.config.bos_token_id, 0);
  EXPECT_THAT(out.config.eos_token_ids, ElementsAre(1));
  EXPECT_EQ(out.tensors->Find("lm_head.weight"), nullptr);
  // GGUF q/k row (h, 2i + s) is Hugging Face row (h, s * head_dim/2 + i). The tensors were
  // filled with consecutive numbers in file order: embedding (2064), attn_norm (8), then q.
  const float q_start = 258 * 8 + 8;
  const std::vector<float> q = Values(*out.tensors->Find("model.layers.0.self_attn.q_proj.weight"));
  ASSERT_EQ(q.size(), 64u);
  for (int h = 0; h < 2; ++h) {
    for (int s = 0; s < 2; ++s) {
      for (int i = 0; i < 2; ++i) {
        const int hf_row = h * 4 + s * 2 + i;
        const int gguf_row = h * 4 + 2 * i + s;
        EXPECT_EQ(q[hf_row * 8], q_start + gguf_row * 8) << "row " << hf_row;
      }
    }
  }
  const float k_start = q_start + 64;
  const std::vector<float> k = Values(*out.tensors->Find("model.layers.0.self_attn.k_proj.weight"));
  EXPECT_EQ(k[1 * 8], k_start + 2 * 8);  // HF row (0, 0, 1) is GGUF row (0, 1, 0)
  EXPECT_EQ(k[2 * 8], k_start + 1 * 8);
  const float v_start = k_start + 32;
  const std::vector<float> v = Values(*out.tensors->Find("model.layers.0.self_attn.v_proj.weight"));
  EXPECT_EQ(v[1 * 8], v_start + 8);  // v is not permuted
  EXPECT_EQ(Values(*out.tensors->Find("model.layers.0.block_sparse_moe.experts.1.w1.weight")),
            Values(*out.tensors->Find("model.layers.0.block_sparse_moe.experts.0.w1.weight")));

  // The tokenizer files load in moeserve and say what the GGUF said.
  auto tokenizer = LoadHfTokenizer(dst);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->bos_id(), 0);
  EXPECT_EQ((*tokenizer)->eos_id(), 1);
  EXPECT_TRUE((*tokenizer)->add_bos_token());
  EXPECT_THAT((*tokenizer)->Encode("hi", false),
              ElementsAre(2 + static_cast<int>('h'), 2 + static_cast<int>('i')));
}

// --- Errors ------------------------------------------------------------------------------

TEST(ConvertErrorsTest, BadOptions) {
  const std::string src = TinySource();
  absl::Status s = Split(src, NewDir("e"), {.num_experts = 3, .top_k = 2});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("--experts 3 does not divide"));
  EXPECT_THAT(s.message(), HasSubstr("intermediate_size 128"));
  s = Upcycle(src, NewDir("e"), {.num_experts = 2, .top_k = 3});
  EXPECT_THAT(s.message(), HasSubstr("--top-k 3 must be in [1, --experts 2]"));
  s = Upcycle(src, NewDir("e"), {.num_experts = 0, .top_k = 1});
  EXPECT_THAT(s.message(), HasSubstr("--experts 0 must be at least 1"));
  s = Split(src, NewDir("e"), {.num_experts = 2, .top_k = 0});
  EXPECT_THAT(s.message(), HasSubstr("--top-k 0"));
}

TEST(ConvertErrorsTest, BadSourceOrDestination) {
  const std::string missing = NewDir("no_such_model");
  absl::Status s = Upcycle(missing, NewDir("e"), {.num_experts = 2, .top_k = 1});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(missing + ": SRC does not exist"));

  const std::string dst = NewDir("busy");
  fs::create_directories(dst);
  std::ofstream(dst + "/keep.txt") << "x";
  s = Upcycle(TinySource(), dst, {.num_experts = 2, .top_k = 1});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(dst + ": DST exists and is not empty (pass --force"));
  EXPECT_TRUE(Upcycle(TinySource(), dst, {.num_experts = 2, .top_k = 1, .force = true}).ok());
  EXPECT_TRUE(fs::exists(dst + "/model.safetensors"));

  const std::string file = NewDir("file");
  std::ofstream(file) << "x";
  s = Split(TinySource(), file, {.num_experts = 2, .top_k = 1});
  EXPECT_THAT(s.message(), HasSubstr("DST exists and is not a directory"));

  // An MoE model is not a dense source.
  s = Upcycle(dst, NewDir("e"), {.num_experts = 2, .top_k = 1});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("model_type 'mixtral' is not a dense llama model"));
}

// --- Command line ------------------------------------------------------------------------

absl::StatusOr<ConvertCommand> Parse(const std::string& line) {
  std::vector<std::string> args;
  std::istringstream in(line);
  for (std::string arg; in >> arg;) args.push_back(arg);
  return ParseConvertArgs(args);
}

TEST(ConvertCliTest, ParsesBothSubcommands) {
  auto up = Parse("upcycle --experts 8 --top-k=2 --router zero --seed 5 --dtype bf16 --force a b");
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->kind, ConvertCommand::Kind::kUpcycle);
  EXPECT_EQ(up->src, "a");
  EXPECT_EQ(up->dst, "b");
  EXPECT_EQ(up->options.num_experts, 8);
  EXPECT_EQ(up->options.top_k, 2);
  EXPECT_EQ(up->options.router, RouterInit::kZero);
  EXPECT_EQ(up->options.seed, 5u);
  EXPECT_EQ(up->options.dtype, DType::kBF16);
  EXPECT_TRUE(up->options.force);

  auto split = Parse("split a --experts 4 --top_k 4 --zero-router --score-scale-factor 4 b");
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->kind, ConvertCommand::Kind::kSplit);
  EXPECT_EQ(split->options.router, RouterInit::kZero);
  EXPECT_EQ(split->options.score_scale_factor, 4.0f);
  EXPECT_EQ(split->options.dtype, std::nullopt);
  EXPECT_EQ(Parse("--help")->kind, ConvertCommand::Kind::kHelp);
  EXPECT_EQ(Parse("split --help")->kind, ConvertCommand::Kind::kHelp);
}

TEST(ConvertCliTest, ErrorsNameTheProblem) {
  const std::map<std::string, std::string> cases = {
      {"", "missing subcommand"},
      {"merge --experts 2 --top-k 1 a b", "unknown subcommand 'merge'"},
      {"upcycle --top-k 1 a b", "--experts: is required"},
      {"upcycle --experts 2 a b", "--top-k: is required"},
      {"upcycle --experts two --top-k 1 a b", "--experts: 'two' is not an integer"},
      {"upcycle --experts 2 --top-k 3 a b", "--top-k 3 must be in [1, --experts 2]"},
      {"upcycle --experts 0 --top-k 1 a b", "--experts 0 must be at least 1"},
      {"upcycle --experts 2 --top-k 1 --router sometimes a b", "--router: 'sometimes'"},
      {"upcycle --experts 2 --top-k 1 --zero-router a b", "unknown flag '--zero-router'"},
      {"split --experts 2 --top-k 1 --router zero a b", "unknown flag '--router'"},
      {"split --experts 2 --top-k 1 --dtype f8 a b", "--dtype: 'f8' is not one of"},
      {"split --experts 2 --top-k 1 --score-scale-factor -1 a b", "must be a positive number"},
      {"split --experts 2 --top-k 1 --force=yes a b", "--force: takes no value"},
      {"split --experts 2 --top-k 1 a", "missing DST"},
      {"split --experts 2 --top-k 1", "missing SRC and DST"},
      {"split --experts 2 --top-k 1 a b c", "unexpected argument 'c'"},
      {"split --experts 2 --top-k", "--top-k: needs a value"},
  };
  for (const auto& [line, message] : cases) {
    auto parsed = Parse(line);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << line;
    EXPECT_THAT(parsed.status().message(), HasSubstr(message)) << line;
  }
}

}  // namespace
}  // namespace moeserve::convert
