// Weight loading from hand-built GGUF files: the q/k un-permutation against llama.cpp's
// permutation, and errors that name the file and the tensor.
#include "engine/model_weights.h"

#include <numeric>
#include <string>
#include <vector>

#include "engine/loaders/gguf_reader.h"
#include "engine/model_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

using ::testing::HasSubstr;

constexpr int kHidden = 8, kHeads = 2, kKvHeads = 1, kHeadDim = 4, kInter = 16, kVocab = 10;

std::vector<float> Iota(size_t n, float start) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

// llama.cpp's convert permute(): HF row (h, s, i) is stored at GGUF row (h, i, s).
std::vector<float> PermuteLikeLlamaCpp(const std::vector<float>& hf, int heads, int cols) {
  std::vector<float> out(hf.size());
  const int half = kHeadDim / 2;
  for (int h = 0; h < heads; ++h) {
    for (int s = 0; s < 2; ++s) {
      for (int i = 0; i < half; ++i) {
        for (int c = 0; c < cols; ++c) {
          out[((h * kHeadDim) + 2 * i + s) * cols + c] =
              hf[((h * kHeadDim) + s * half + i) * cols + c];
        }
      }
    }
  }
  return out;
}

// A one-layer llama in F32; `skip` leaves a tensor out, `bad_shape` gives it a wrong shape.
testing::GgufWriter TinyLlama(const std::string& skip = "", const std::string& bad_shape = "") {
  testing::GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddUint32("llama.block_count", 1);
  w.AddUint32("llama.context_length", 32);
  w.AddUint32("llama.embedding_length", kHidden);
  w.AddUint32("llama.feed_forward_length", kInter);
  w.AddUint32("llama.attention.head_count", kHeads);
  w.AddUint32("llama.attention.head_count_kv", kKvHeads);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float start) {
    if (name == skip) return;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (name == bad_shape) shape[0] += 1, n += n / (shape[0] - 1);
    w.AddF32Tensor(name, shape, Iota(n, start));
  };
  add("token_embd.weight", {kHidden, kVocab}, 0);
  add("blk.0.attn_norm.weight", {kHidden}, 1);
  add("blk.0.attn_q.weight", {kHidden, kHeads * kHeadDim}, 100);
  add("blk.0.attn_k.weight", {kHidden, kKvHeads * kHeadDim}, 200);
  add("blk.0.attn_v.weight", {kHidden, kKvHeads * kHeadDim}, 300);
  add("blk.0.attn_output.weight", {kHeads * kHeadDim, kHidden}, 400);
  add("blk.0.ffn_norm.weight", {kHidden}, 1);
  add("blk.0.ffn_gate.weight", {kHidden, kInter}, 500);
  add("blk.0.ffn_up.weight", {kHidden, kInter}, 600);
  add("blk.0.ffn_down.weight", {kInter, kHidden}, 700);
  add("output_norm.weight", {kHidden}, 1);
  return w;
}

struct Loaded {
  absl::StatusOr<std::unique_ptr<gguf::GgufFile>> file;
  absl::StatusOr<ModelConfig> config;
  absl::StatusOr<ModelWeights> weights;
};

Loaded Load(const testing::GgufWriter& w, const std::string& name) {
  const std::string path = testing::TempDir() + "/" + name;
  EXPECT_TRUE(w.WriteTo(path).ok());
  Loaded l;
  l.file = gguf::GgufFile::Open(path);
  if (!l.file.ok()) return l;
  l.config = ModelConfigFromGguf(**l.file);
  if (!l.config.ok()) return l;
  l.weights = LoadGgufWeights(**l.file, *l.config);
  return l;
}

TEST(ModelWeightsTest, UnpermuteInvertsLlamaCppsPermutation) {
  const std::vector<float> hf = Iota(kHeads * kHeadDim * 3, 0);
  const std::vector<float> gguf = PermuteLikeLlamaCpp(hf, kHeads, 3);
  std::vector<float> back(hf.size());
  UnpermuteQkRows(gguf.data(), kHeads, kHeadDim, 3, back.data());
  EXPECT_EQ(back, hf);
}

TEST(ModelWeightsTest, LoadsAndFusesATinyLlama) {
  Loaded l = Load(TinyLlama(), "tiny.gguf");
  ASSERT_TRUE(l.weights.ok()) << l.weights.status();
  EXPECT_TRUE(l.config->tie_word_embeddings);
  EXPECT_EQ(l.config->head_dim, kHeadDim);
  const ModelWeights& w = *l.weights;
  EXPECT_EQ(w.lm_head.data(), w.embedding.data());
  ASSERT_EQ(w.layers.size(), 1u);
  const Tensor& qkv = w.layers[0].qkv;
  EXPECT_EQ(qkv.dim(0), (kHeads + 2 * kKvHeads) * kHeadDim);
  // The q block is the un-permuted attn_q; v follows q and k untouched.
  std::vector<float> q_gguf = Iota(kHeads * kHeadDim * kHidden, 100);
  std::vector<float> q_hf(q_gguf.size());
  UnpermuteQkRows(q_gguf.data(), kHeads, kHeadDim, kHidden, q_hf.data());
  for (size_t i = 0; i < q_hf.size(); ++i) ASSERT_EQ(qkv.data_as<float>()[i], q_hf[i]) << i;
  const float* v = qkv.data_as<float>() + (kHeads + kKvHeads) * kHeadDim * kHidden;
  EXPECT_EQ(v[0], 300.0f);
  // gate rows then up rows.
  EXPECT_EQ(w.layers[0].gate_up.data_as<float>()[0], 500.0f);
  EXPECT_EQ(w.layers[0].gate_up.data_as<float>()[kInter * kHidden], 600.0f);
}

TEST(ModelWeightsTest, MissingTensorNamesFileAndTensor) {
  Loaded l = Load(TinyLlama("blk.0.ffn_up.weight"), "missing.gguf");
  ASSERT_TRUE(l.config.ok()) << l.config.status();
  ASSERT_FALSE(l.weights.ok());
  EXPECT_THAT(std::string(l.weights.status().message()),
              HasSubstr("missing.gguf: missing tensor 'blk.0.ffn_up.weight'"));
}

TEST(ModelWeightsTest, WrongShapeNamesFileTensorAndShapes) {
  Loaded l = Load(TinyLlama("", "blk.0.attn_v.weight"), "shape.gguf");
  ASSERT_FALSE(l.weights.ok());
  EXPECT_THAT(
      std::string(l.weights.status().message()),
      HasSubstr("shape.gguf: tensor 'blk.0.attn_v.weight' has shape [9, 4], expected [8, 4]"));
}

TEST(ModelWeightsTest, UnsupportedArchitectureIsNamed) {
  testing::GgufWriter w = TinyLlama();
  w.AddString("general.architecture", "mamba");  // a second key: rejected as a duplicate
  Loaded dup = Load(w, "dup.gguf");
  EXPECT_FALSE(dup.file.ok());

  testing::GgufWriter other;
  other.AddString("general.architecture", "mamba");
  Loaded l = Load(other, "mamba.gguf");
  ASSERT_TRUE(l.file.ok());
  ASSERT_FALSE(l.config.ok());
  EXPECT_THAT(std::string(l.config.status().message()),
              HasSubstr("mamba.gguf: unsupported architecture 'mamba'"));
}

TEST(ModelWeightsTest, MissingMetadataIsNamed) {
  testing::GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddUint32("llama.embedding_length", kHidden);
  Loaded l = Load(w, "nometa.gguf");
  ASSERT_FALSE(l.config.ok());
  EXPECT_THAT(std::string(l.config.status().message()), HasSubstr("llama.feed_forward_length"));
  EXPECT_THAT(std::string(l.config.status().message()), HasSubstr("nometa.gguf"));
}

// Found by tests/fuzz: expert_count 2^29 made ModelConfigFromGguf allocate its per-layer
// expert table (2 GB) before anything checked the count.
TEST(ModelWeightsTest, HugeExpertCountIsRefused) {
  testing::GgufWriter w = TinyLlama();
  w.AddUint32("llama.expert_count", 1u << 29);
  w.AddUint32("llama.expert_used_count", 2);
  Loaded l = Load(w, "huge_experts.gguf");
  ASSERT_TRUE(l.file.ok()) << l.file.status();
  ASSERT_FALSE(l.config.ok());
  EXPECT_THAT(std::string(l.config.status().message()),
              HasSubstr("huge_experts.gguf: 536870912 experts (llama.expert_count)"));
  EXPECT_THAT(std::string(l.config.status().message()), HasSubstr("more than moeserve supports"));
}

}  // namespace
}  // namespace moeserve
