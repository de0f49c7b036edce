#include "engine/model_weights.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/absl_strings.h"
#include "common/status.h"
#include "engine/loaders/dequantize.h"
#include "engine/loaders/safetensors_reader.h"
#include "engine/loaders/torch_bin_reader.h"

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
      return absl::InvalidArgumentError(absl::StrCat(file_.path(), ": tensor '", name,
                                                     "' has shape ", ShapeString(info->shape),
                                                     ", expected ", ShapeString(expected)));
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

// Reads tensors of a Hugging Face checkpoint by name, checking shape and widening to f32,
// and remembers which it read so that leftovers can be reported.
class HfWeightReader {
 public:
  explicit HfWeightReader(const TensorSource& source) : source_(source) {}

  // Tensor `name` must have exactly `shape` (PyTorch order); writes it to dst as f32.
  absl::Status Read(const std::string& name, const std::vector<int64_t>& shape, float* dst) {
    const TensorView* view = source_.Find(name);
    if (view == nullptr) {
      return absl::InvalidArgumentError(
          Cat(CheckpointName(), ": missing tensor '", name, "'", SimilarNames(name)));
    }
    used_.insert(name);
    if (view->shape != shape) {
      return absl::InvalidArgumentError(Cat(view->file, ": tensor '", name, "' has shape ",
                                            ShapeString(view->shape), ", expected ",
                                            ShapeString(shape)));
    }
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    int64_t element_bytes = 0;
    switch (view->dtype) {
      case DType::kF32:
        element_bytes = 4;
        break;
      case DType::kF16:
      case DType::kBF16:
        element_bytes = 2;
        break;
      default:
        return absl::InvalidArgumentError(Cat(view->file, ": tensor '", name, "' has dtype ",
                                              DTypeName(view->dtype),
                                              ", expected a float type (F32, F16 or BF16)"));
    }
    if (view->num_bytes != n * element_bytes) {
      return absl::InvalidArgumentError(Cat(view->file, ": tensor '", name, "' holds ",
                                            view->num_bytes, " bytes, expected ",
                                            n * element_bytes));
    }
    // The data is only as aligned as the file makes it: read through memcpy.
    if (view->dtype == DType::kF32) {
      std::memcpy(dst, view->data, n * sizeof(float));
      return absl::OkStatus();
    }
    for (int64_t i = 0; i < n; ++i) {
      uint16_t bits;
      std::memcpy(&bits, view->data + 2 * i, sizeof(bits));
      dst[i] = view->dtype == DType::kF16 ? F16ToF32(bits) : BF16ToF32(bits);
    }
    return absl::OkStatus();
  }

  // InvalidArgument naming the first tensors the model did not read: loading a checkpoint
  // whose extra tensors (biases, experts) would change the math is a silent wrong answer.
  absl::Status CheckAllUsed(bool tied) const {
    std::vector<std::string> unused;
    for (const TensorView& view : source_.tensors()) {
      if (used_.count(view.name) > 0) continue;
      // Buffers older transformers saved; recomputed from rope_theta.
      if (view.name.ends_with("rotary_emb.inv_freq")) continue;
      if (tied && view.name == "lm_head.weight") continue;
      unused.push_back(Cat(view.file, ": '", view.name, "'"));
    }
    if (unused.empty()) return absl::OkStatus();
    const size_t shown = std::min<size_t>(unused.size(), 5);
    return absl::InvalidArgumentError(
        Cat("checkpoint has ", unused.size(),
            " tensor(s) a dense llama model does not use (a bias or experts its config does "
            "not announce?): ",
            absl::StrJoin(unused.begin(), unused.begin() + shown, ", "),
            unused.size() > shown ? ", ..." : ""));
  }

 private:
  // The files of the checkpoint, for errors about a tensor that is in none of them.
  std::string CheckpointName() const {
    std::set<std::string> files;
    for (const TensorView& view : source_.tensors()) files.insert(view.file);
    if (files.empty()) return "checkpoint (no tensors)";
    if (files.size() == 1) return *files.begin();
    return Cat("checkpoint (", *files.begin(), " and ", files.size() - 1, " other files)");
  }

  // " (tensors beside it that no llama model reads: 'x')": same-stem names that are not
  // llama weight names, to help spot a renaming.
  std::string SimilarNames(const std::string& name) const {
    static constexpr std::string_view kLlamaLeaves[] = {"q_proj.weight",
                                                        "k_proj.weight",
                                                        "v_proj.weight",
                                                        "o_proj.weight",
                                                        "gate_proj.weight",
                                                        "up_proj.weight",
                                                        "down_proj.weight",
                                                        "input_layernorm.weight",
                                                        "post_attention_layernorm.weight",
                                                        "embed_tokens.weight",
                                                        "norm.weight"};
    if (name.size() <= sizeof(".weight")) return "";
    const size_t dot = name.rfind('.', name.size() - sizeof(".weight"));
    if (dot == std::string::npos) return "";
    const std::string stem = name.substr(0, dot + 1);
    std::vector<std::string> similar;
    for (const TensorView& view : source_.tensors()) {
      if (!view.name.starts_with(stem) || used_.count(view.name) > 0) continue;
      const std::string_view leaf = std::string_view(view.name).substr(stem.size());
      if (std::find(std::begin(kLlamaLeaves), std::end(kLlamaLeaves), leaf) !=
          std::end(kLlamaLeaves)) {
        continue;
      }
      similar.push_back(Cat("'", view.name, "'"));
      if (similar.size() == 4) break;
    }
    if (similar.empty()) return "";
    return Cat(" (tensors beside it that no llama model reads: ", absl::StrJoin(similar, ", "),
               ")");
  }

  const TensorSource& source_;
  std::set<std::string> used_;
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
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "attn_q.weight", q_rows, hidden, scratch.data()));
    UnpermuteQkRows(scratch.data(), config.num_heads, config.head_dim, hidden, qkv);
    MOESERVE_RETURN_IF_ERROR(
        reader.Read(prefix + "attn_k.weight", kv_rows, hidden, scratch.data()));
    UnpermuteQkRows(scratch.data(), config.num_kv_heads, config.head_dim, hidden,
                    qkv + q_rows * hidden);
    MOESERVE_RETURN_IF_ERROR(
        reader.Read(prefix + "attn_v.weight", kv_rows, hidden, qkv + (q_rows + kv_rows) * hidden));
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

absl::StatusOr<ModelWeights> LoadHfWeights(const TensorSource& source, const ModelConfig& config) {
  const char* family = ModelFamilyName(config.family);
  if (config.family != ModelFamily::kLlama) {
    return absl::UnimplementedError(
        Cat("Hugging Face weights of model family '", family,
            "' are not supported yet: only dense llama (LlamaForCausalLM) checkpoints load"));
  }
  if (config.moe.num_experts > 0) {
    return absl::UnimplementedError(Cat("Hugging Face weights of model family '", family, "' with ",
                                        config.moe.num_experts,
                                        " experts (MoE) are not supported yet"));
  }
  if (config.attention_bias || config.attention_out_bias) {
    return absl::UnimplementedError(Cat("Hugging Face weights of model family '", family,
                                        "' with attention biases are not supported yet"));
  }
  MOESERVE_RETURN_IF_ERROR(config.Validate());
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
  HfWeightReader reader(source);

  float* embedding = allocate(vocab * hidden);
  MOESERVE_RETURN_IF_ERROR(reader.Read("model.embed_tokens.weight", {vocab, hidden}, embedding));
  weights.embedding = Tensor(embedding, DType::kF32, {vocab, hidden});

  for (int32_t l = 0; l < config.num_layers; ++l) {
    const std::string prefix = absl::StrCat("model.layers.", l, ".");
    LayerWeights layer;
    float* attn_norm = allocate(hidden);
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "input_layernorm.weight", {hidden}, attn_norm));
    layer.attn_norm = Tensor(attn_norm, DType::kF32, {hidden});

    float* qkv = allocate((q_rows + 2 * kv_rows) * hidden);
    MOESERVE_RETURN_IF_ERROR(
        reader.Read(prefix + "self_attn.q_proj.weight", {q_rows, hidden}, qkv));
    MOESERVE_RETURN_IF_ERROR(
        reader.Read(prefix + "self_attn.k_proj.weight", {kv_rows, hidden}, qkv + q_rows * hidden));
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "self_attn.v_proj.weight", {kv_rows, hidden},
                                         qkv + (q_rows + kv_rows) * hidden));
    layer.qkv = Tensor(qkv, DType::kF32, {q_rows + 2 * kv_rows, hidden});

    float* o_proj = allocate(hidden * q_rows);
    MOESERVE_RETURN_IF_ERROR(
        reader.Read(prefix + "self_attn.o_proj.weight", {hidden, q_rows}, o_proj));
    layer.o_proj = Tensor(o_proj, DType::kF32, {hidden, q_rows});

    float* ffn_norm = allocate(hidden);
    MOESERVE_RETURN_IF_ERROR(
        reader.Read(prefix + "post_attention_layernorm.weight", {hidden}, ffn_norm));
    layer.ffn_norm = Tensor(ffn_norm, DType::kF32, {hidden});

    float* gate_up = allocate(2 * inter * hidden);
    MOESERVE_RETURN_IF_ERROR(
        reader.Read(prefix + "mlp.gate_proj.weight", {inter, hidden}, gate_up));
    MOESERVE_RETURN_IF_ERROR(
        reader.Read(prefix + "mlp.up_proj.weight", {inter, hidden}, gate_up + inter * hidden));
    layer.gate_up = Tensor(gate_up, DType::kF32, {2 * inter, hidden});

    float* down = allocate(hidden * inter);
    MOESERVE_RETURN_IF_ERROR(reader.Read(prefix + "mlp.down_proj.weight", {hidden, inter}, down));
    layer.down_proj = Tensor(down, DType::kF32, {hidden, inter});
    weights.layers.push_back(layer);
  }

  float* final_norm = allocate(hidden);
  MOESERVE_RETURN_IF_ERROR(reader.Read("model.norm.weight", {hidden}, final_norm));
  weights.final_norm = Tensor(final_norm, DType::kF32, {hidden});

  if (config.tie_word_embeddings) {
    weights.lm_head = weights.embedding;
  } else {
    float* lm_head = allocate(vocab * hidden);
    MOESERVE_RETURN_IF_ERROR(reader.Read("lm_head.weight", {vocab, hidden}, lm_head));
    weights.lm_head = Tensor(lm_head, DType::kF32, {vocab, hidden});
  }
  MOESERVE_RETURN_IF_ERROR(reader.CheckAllUsed(config.tie_word_embeddings));
  return weights;
}

absl::StatusOr<std::unique_ptr<TensorSource>> OpenHfCheckpoint(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(Cat(dir, ": not a checkpoint directory"));
  }
  bool has_safetensors = false;
  bool has_bin = false;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == "model.safetensors.index.json" || name.ends_with(".safetensors")) {
      has_safetensors = true;
    }
    if (name.starts_with("pytorch_model") &&
        (name.ends_with(".bin") || name == "pytorch_model.bin.index.json")) {
      has_bin = true;
    }
  }
  if (ec) return absl::NotFoundError(Cat(dir, ": cannot list directory: ", ec.message()));
  if (has_safetensors) return OpenSafetensorsDir(dir);
  if (has_bin) return OpenTorchBinDir(dir);
  return absl::NotFoundError(
      Cat(dir, ": no checkpoint weights (neither *.safetensors nor pytorch_model*.bin)"));
}

}  // namespace moeserve
