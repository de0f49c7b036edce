#include "engine/model_weights.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "engine/loaders/dequantize.h"

namespace moeserve {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

class GgufWeightReader {
 public:
  explicit GgufWeightReader(const gguf::GgufFile& file) : file_(file) {}

  // Dequantizes tensor `name`, whose GGUF shape must be {cols, rows} (or {cols} when rows
  // is 0), into dst [rows, cols].
  absl::Status Read(const std::string& name, int64_t rows, int64_t cols, float* dst) {
    const gguf::TensorInfo* info = file_.FindTensor(name);
    if (info == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_.path(), ": missing tensor '", name, "'"));
    }
    const std::vector<int64_t> expected =
        rows == 0 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows};
    if (info->shape != expected) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_.path(), ": tensor '", name, "' has shape ",
                       ShapeString(info->shape), ", expected ", ShapeString(expected)));
    }
    if (!info->dtype.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_.path(), ": tensor '", name, "' has ggml type ", info->ggml_type,
                       ", which moeserve cannot read (supported: F32, F16, BF16, Q8_0, Q4_0, ",
                       "Q4_1, Q4_K, Q6_K)"));
    }
    const int64_t num_rows = rows == 0 ? 1 : rows;
    const int64_t row_bytes = DTypeRowBytes(*info->dtype, cols);
    for (int64_t r = 0; r < num_rows; ++r) {
      absl::Status status =
          DequantizeRow(*info->dtype, info->data + r * row_bytes, dst + r * cols, cols);
      if (!status.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(file_.path(), ": tensor '", name, "': ", status.message()));
      }
    }
    return absl::OkStatus();
  }

 private:
  const gguf::GgufFile& file_;
};

}  // namespace

void UnpermuteQkRows(const float* src, int64_t num_heads, int64_t head_dim, int64_t cols,
                     float* dst) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < num_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t s = 0; s < 2; ++s) {
        const float* from = src + (h * head_dim + 2 * i + s) * cols;
        float* to = dst + (h * head_dim + s * half + i) * cols;
        std::memcpy(to, from, cols * sizeof(float));
      }
    }
  }
}

absl::StatusOr<ModelWeights> LoadGgufWeights(const gguf::GgufFile& file,
                                             const ModelConfig& config) {
  const int64_t hidden = config.hidden_size;
  const int64_t inter = config.intermediate_size;
  const int64_t q_rows = int64_t{config.num_heads} * config.head_dim;
  const int64_t kv_rows = int64_t{config.num_kv_heads} * config.head_dim;
  const int64_t vocab = config.vocab_size;

  ModelWeights weights;
  auto allocate = [&weights](int64_t n) {
    weights.storage.push_back(std::make_unique<float[]>(n));
    weights.num_parameters += n;
    return weights.storage.back().get();
  };
  GgufWeightReader reader(file);

  float* embedding = allocate(vocab * hidden);
  MOESERVE_RETURN_IF_ERROR(reader.Read("token_embd.weight", vocab, hidden, embedding));
  weights.embedding = Tensor(embedding, DType::kF32, {vocab, hidden});

  std::vector<float> scratch(std::max(q_rows, kv_rows) * hidden);
  for (int32_t l = 0; l < config.num_layers; ++l) {
    const std::string prefix = absl::StrCat("blk.", l, ".");
    LayerWeights layer;
    float* attn_norm = allocate(hidden);
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "attn_norm.weight", 0, hidden, attn_norm));
    layer.attn_norm = Tensor(attn_norm, DType::kF32, {hidden});

    float* qkv = allocate((q_rows + 2 * kv_rows) * hidden);
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "attn_q.weight", q_rows, hidden,
                                         scratch.data()));
    UnpermuteQkRows(scratch.data(), config.num_heads, config.head_dim, hidden, qkv);
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "attn_k.weight", kv_rows, hidden,
                                         scratch.data()));
    UnpermuteQkRows(scratch.data(), config.num_kv_heads, config.head_dim, hidden,
                    qkv + q_rows * hidden);
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "attn_v.weight", kv_rows, hidden,
                                         qkv + (q_rows + kv_rows) * hidden));
    layer.qkv = Tensor(qkv, DType::kF32, {q_rows + 2 * kv_rows, hidden});

    float* o_proj = allocate(hidden * q_rows);
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "attn_output.weight", hidden, q_rows, o_proj));
    layer.o_proj = Tensor(o_proj, DType::kF32, {hidden, q_rows});

    float* ffn_norm = allocate(hidden);
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "ffn_norm.weight", 0, hidden, ffn_norm));
    layer.ffn_norm = Tensor(ffn_norm, DType::kF32, {hidden});

    float* gate_up = allocate(2 * inter * hidden);
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "ffn_gate.weight", inter, hidden, gate_up));
    MOESERVE_RETURN_IF_ERROR(
        reader.Read(prefix + "ffn_up.weight", inter, hidden, gate_up + inter * hidden));
    layer.gate_up = Tensor(gate_up, DType::kF32, {2 * inter, hidden});

    float* down = allocate(hidden * inter);
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "ffn_down.weight", hidden, inter, down));
    layer.down_proj = Tensor(down, DType::kF32, {hidden, inter});
    weights.layers.push_back(layer);
  }

  float* final_norm = allocate(hidden);
  MOESERVE_RETURN_IF_ERROR(reader.Read("output_norm.weight", 0, hidden, final_norm));
  weights.final_norm = Tensor(final_norm, DType::kF32, {hidden});

  if (config.tie_word_embeddings) {
    weights.lm_head = weights.embedding;
  } else {
    float* lm_head = allocate(vocab * hidden);
    MOESERVE_RETURN_IF_ERROR(reader.Read("output.weight", vocab, hidden, lm_head));
    weights.lm_head = Tensor(lm_head, DType::kF32, {vocab, hidden});
  }
  return weights;
}

}  // namespace moeserve
