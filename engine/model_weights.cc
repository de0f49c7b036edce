#include "engine/model_weights.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
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

namespace {

// The tensors of a dense Llama checkpoint by role; each format names them its own way.
enum class DenseTensor {
  kEmbedding,
  kAttnNorm,
  kQ,
  kK,
  kV,
  kO,
  kFfnNorm,
  kGate,
  kUp,
  kDown,
  kFinalNorm,
  kLmHead
};

// Reads tensor `role` of layer `layer` (ignored for model-wide tensors) as f32 into dst,
// [rows, cols] row-major, or a vector of `cols` when rows is 0.
using ReadTensorFn = std::function<absl::Status(DenseTensor role, int32_t layer, int64_t rows,
                                                int64_t cols, float* dst)>;

// Allocates and fills the engine's layout (q|k|v and gate|up fused) from any format.
absl::StatusOr<ModelWeights> AssembleDenseWeights(const ModelConfig& config,
                                                  const ReadTensorFn& read) {
  const int64_t hidden = config.hidden_size;
  const int64_t inter = config.intermediate_size;
  const int64_t q_rows = int64_t{config.num_heads} * config.head_dim;
  const int64_t kv_rows = int64_t{config.num_kv_heads} * config.head_dim;
  const int64_t vocab = config.vocab_size;

  ModelWeights weights;
  // A fresh f32 tensor of `shape`, owned by `weights`, filled by read(role, layer).
  auto load = [&](DenseTensor role, int32_t layer,
                  std::initializer_list<int64_t> shape) -> absl::StatusOr<Tensor> {
    const std::vector<int64_t> dims(shape);
    const int64_t n = dims.size() == 1 ? dims[0] : dims[0] * dims[1];
    weights.storage.push_back(std::make_unique<float[]>(n));
    weights.num_parameters += n;
    float* data = weights.storage.back().get();
    MOESERVE_RETURN_IF_ERROR(read(role, layer, dims.size() == 1 ? 0 : dims[0], dims.back(), data));
    return Tensor(data, DType::kF32, shape);
  };
  // Several tensors stacked by rows into one: [sum of rows, cols].
  auto fuse = [&](std::initializer_list<std::pair<DenseTensor, int64_t>> parts, int32_t layer,
                  int64_t cols) -> absl::StatusOr<Tensor> {
    int64_t rows = 0;
    for (const auto& part : parts) rows += part.second;
    weights.storage.push_back(std::make_unique<float[]>(rows * cols));
    weights.num_parameters += rows * cols;
    float* data = weights.storage.back().get();
    float* at = data;
    for (const auto& [role, part_rows] : parts) {
      MOESERVE_RETURN_IF_ERROR(read(role, layer, part_rows, cols, at));
      at += part_rows * cols;
    }
    return Tensor(data, DType::kF32, {rows, cols});
  };

  MOESERVE_ASSIGN_OR_RETURN(weights.embedding, load(DenseTensor::kEmbedding, -1, {vocab, hidden}));
  for (int32_t l = 0; l < config.num_layers; ++l) {
    LayerWeights layer;
    MOESERVE_ASSIGN_OR_RETURN(layer.attn_norm, load(DenseTensor::kAttnNorm, l, {hidden}));
    MOESERVE_ASSIGN_OR_RETURN(
        layer.qkv,
        fuse({{DenseTensor::kQ, q_rows}, {DenseTensor::kK, kv_rows}, {DenseTensor::kV, kv_rows}}, l,
             hidden));
    MOESERVE_ASSIGN_OR_RETURN(layer.o_proj, load(DenseTensor::kO, l, {hidden, q_rows}));
    MOESERVE_ASSIGN_OR_RETURN(layer.ffn_norm, load(DenseTensor::kFfnNorm, l, {hidden}));
    MOESERVE_ASSIGN_OR_RETURN(
        layer.gate_up, fuse({{DenseTensor::kGate, inter}, {DenseTensor::kUp, inter}}, l, hidden));
    MOESERVE_ASSIGN_OR_RETURN(layer.down_proj, load(DenseTensor::kDown, l, {hidden, inter}));
    weights.layers.push_back(layer);
  }
  MOESERVE_ASSIGN_OR_RETURN(weights.final_norm, load(DenseTensor::kFinalNorm, -1, {hidden}));
  if (config.tie_word_embeddings) {
    weights.lm_head = weights.embedding;
  } else {
    MOESERVE_ASSIGN_OR_RETURN(weights.lm_head, load(DenseTensor::kLmHead, -1, {vocab, hidden}));
  }
  return weights;
}

std::string GgufName(DenseTensor role, int32_t layer) {
  const std::string blk = absl::StrCat("blk.", layer, ".");
  switch (role) {
    case DenseTensor::kEmbedding:
      return "token_embd.weight";
    case DenseTensor::kAttnNorm:
      return blk + "attn_norm.weight";
    case DenseTensor::kQ:
      return blk + "attn_q.weight";
    case DenseTensor::kK:
      return blk + "attn_k.weight";
    case DenseTensor::kV:
      return blk + "attn_v.weight";
    case DenseTensor::kO:
      return blk + "attn_output.weight";
    case DenseTensor::kFfnNorm:
      return blk + "ffn_norm.weight";
    case DenseTensor::kGate:
      return blk + "ffn_gate.weight";
    case DenseTensor::kUp:
      return blk + "ffn_up.weight";
    case DenseTensor::kDown:
      return blk + "ffn_down.weight";
    case DenseTensor::kFinalNorm:
      return "output_norm.weight";
    case DenseTensor::kLmHead:
      return "output.weight";
  }
  return "";
}

std::string HfName(DenseTensor role, int32_t layer) {
  const std::string prefix = absl::StrCat("model.layers.", layer, ".");
  switch (role) {
    case DenseTensor::kEmbedding:
      return "model.embed_tokens.weight";
    case DenseTensor::kAttnNorm:
      return prefix + "input_layernorm.weight";
    case DenseTensor::kQ:
      return prefix + "self_attn.q_proj.weight";
    case DenseTensor::kK:
      return prefix + "self_attn.k_proj.weight";
    case DenseTensor::kV:
      return prefix + "self_attn.v_proj.weight";
    case DenseTensor::kO:
      return prefix + "self_attn.o_proj.weight";
    case DenseTensor::kFfnNorm:
      return prefix + "post_attention_layernorm.weight";
    case DenseTensor::kGate:
      return prefix + "mlp.gate_proj.weight";
    case DenseTensor::kUp:
      return prefix + "mlp.up_proj.weight";
    case DenseTensor::kDown:
      return prefix + "mlp.down_proj.weight";
    case DenseTensor::kFinalNorm:
      return "model.norm.weight";
    case DenseTensor::kLmHead:
      return "lm_head.weight";
  }
  return "";
}

}  // namespace

absl::StatusOr<ModelWeights> LoadGgufWeights(const gguf::GgufFile& file,
                                             const ModelConfig& config) {
  GgufWeightReader reader(file);
  std::vector<float> scratch;
  return AssembleDenseWeights(
      config, [&](DenseTensor role, int32_t layer, int64_t rows, int64_t cols, float* dst) {
        const std::string name = GgufName(role, layer);
        if (role != DenseTensor::kQ && role != DenseTensor::kK) {
          return reader.Read(name, rows, cols, dst);
        }
        // q and k rows are stored permuted for adjacent-pair RoPE; undo it.
        scratch.resize(rows * cols);
        MOESERVE_RETURN_IF_ERROR(reader.Read(name, rows, cols, scratch.data()));
        UnpermuteQkRows(scratch.data(), rows / config.head_dim, config.head_dim, cols, dst);
        return absl::OkStatus();
      });
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
  HfWeightReader reader(source);
  MOESERVE_ASSIGN_OR_RETURN(
      ModelWeights weights,
      AssembleDenseWeights(
          config, [&](DenseTensor role, int32_t layer, int64_t rows, int64_t cols, float* dst) {
            return reader.Read(
                HfName(role, layer),
                rows == 0 ? std::vector<int64_t>{cols} : std::vector<int64_t>{rows, cols}, dst);
          }));
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
