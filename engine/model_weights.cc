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
    return ReadRows(name, rows == 0 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows},
                    0, rows == 0 ? 1 : rows, cols, dst);
  }

  // Expert `expert` of stacked tensor `name`, GGUF shape {cols, rows, num_experts}, into
  // dst [rows, cols].
  absl::Status ReadSlice(const std::string& name, int64_t num_experts, int64_t expert, int64_t rows,
                         int64_t cols, float* dst) {
    return ReadRows(name, {cols, rows, num_experts}, expert * rows, rows, cols, dst);
  }

 private:
  // Rows [first, first + count) of tensor `name`, which must have GGUF shape `expected`
  // with rows of `cols` elements.
  absl::Status ReadRows(const std::string& name, const std::vector<int64_t>& expected,
                        int64_t first, int64_t count, int64_t cols, float* dst) {
    const gguf::TensorInfo* info = file_.FindTensor(name);
    if (info == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_.path(), ": missing tensor '", name, "'"));
    }
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
    const int64_t row_bytes = DTypeRowBytes(*info->dtype, cols);
    for (int64_t r = 0; r < count; ++r) {
      absl::Status status =
          DequantizeRow(*info->dtype, info->data + (first + r) * row_bytes, dst + r * cols, cols);
      if (!status.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(file_.path(), ": tensor '", name, "': ", status.message()));
      }
    }
    return absl::OkStatus();
  }

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
  absl::Status CheckAllUsed(const ModelConfig& config,
                            const std::function<bool(const std::string&)>& ignored) const {
    std::vector<std::string> unused;
    for (const TensorView& view : source_.tensors()) {
      if (used_.count(view.name) > 0 || ignored(view.name)) continue;
      unused.push_back(Cat(view.file, ": '", view.name, "'"));
    }
    if (unused.empty()) return absl::OkStatus();
    const size_t shown = std::min<size_t>(unused.size(), 5);
    return absl::InvalidArgumentError(
        Cat("checkpoint has ", unused.size(), " tensor(s) a ", ModelFamilyName(config.family),
            config.moe.num_experts > 0 ? " MoE" : " dense",
            " model of this config does not use (a bias or experts its config does not "
            "announce?): ",
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

// The tensors of a checkpoint by role; each format and family names them its own way.
enum class Role {
  kEmbedding,
  kAttnNorm,
  kQ,
  kK,
  kV,
  kQBias,
  kKBias,
  kVBias,
  kO,
  kOBias,
  kQNorm,
  kKNorm,
  kFfnNorm,
  kGate,  // dense MLP
  kUp,
  kDown,
  kRouter,
  kRouterOut,
  kExpertGate,
  kExpertUp,
  kExpertDown,
  kSharedGate,  // the shared experts' MLP
  kSharedUp,
  kSharedDown,
  kSharedExpertGate,  // Qwen2-MoE's sigmoid gate on the shared expert
  kFinalNorm,
  kLmHead
};

struct TensorRef {
  Role role;
  int32_t layer = -1;   // -1 for model-wide tensors
  int32_t expert = -1;  // routed expert, for kExpert*
};

// Reads tensor `ref` as f32 into dst, [rows, cols] row-major, or a vector of `cols` when
// rows is 0.
using ReadTensorFn =
    std::function<absl::Status(const TensorRef& ref, int64_t rows, int64_t cols, float* dst)>;

// Allocates and fills the engine's layout (q|k|v and gate|up fused, experts stacked) from
// any format.
class WeightAssembler {
 public:
  WeightAssembler(const ModelConfig& config, const ReadTensorFn& read) : c_(config), read_(read) {}

  absl::StatusOr<ModelWeights> Assemble() {
    const int64_t hidden = c_.hidden_size;
    const int64_t vocab = c_.vocab_size;
    MOESERVE_ASSIGN_OR_RETURN(w_.embedding, Load({Role::kEmbedding}, vocab, hidden));
    for (int32_t l = 0; l < c_.num_layers; ++l) {
      LayerWeights layer;
      MOESERVE_RETURN_IF_ERROR(AssembleAttention(l, &layer));
      MOESERVE_ASSIGN_OR_RETURN(layer.ffn_norm, Load({Role::kFfnNorm, l}, 0, hidden));
      if (c_.IsMoeLayer(l)) {
        MOESERVE_RETURN_IF_ERROR(AssembleMoe(l, &layer.moe));
      } else {
        MOESERVE_ASSIGN_OR_RETURN(layer.gate_up, Fuse({{{Role::kGate, l}, c_.intermediate_size},
                                                       {{Role::kUp, l}, c_.intermediate_size}},
                                                      hidden));
        MOESERVE_ASSIGN_OR_RETURN(layer.down_proj,
                                  Load({Role::kDown, l}, hidden, c_.intermediate_size));
      }
      w_.layers.push_back(layer);
    }
    MOESERVE_ASSIGN_OR_RETURN(w_.final_norm, Load({Role::kFinalNorm}, 0, hidden));
    if (c_.tie_word_embeddings) {
      w_.lm_head = w_.embedding;
    } else {
      MOESERVE_ASSIGN_OR_RETURN(w_.lm_head, Load({Role::kLmHead}, vocab, hidden));
    }
    return std::move(w_);
  }

 private:
  absl::Status AssembleAttention(int32_t l, LayerWeights* layer) {
    const int64_t hidden = c_.hidden_size;
    const int64_t q_rows = int64_t{c_.num_heads} * c_.head_dim;
    const int64_t kv_rows = int64_t{c_.num_kv_heads} * c_.head_dim;
    MOESERVE_ASSIGN_OR_RETURN(layer->attn_norm, Load({Role::kAttnNorm, l}, 0, hidden));
    MOESERVE_ASSIGN_OR_RETURN(
        layer->qkv,
        Fuse({{{Role::kQ, l}, q_rows}, {{Role::kK, l}, kv_rows}, {{Role::kV, l}, kv_rows}},
             hidden));
    if (c_.attention_bias) {
      // Three vectors read back to back make the fused [q + 2 kv] bias.
      MOESERVE_ASSIGN_OR_RETURN(Tensor bias, Allocate({q_rows + 2 * kv_rows}));
      float* at = bias.data_as<float>();
      MOESERVE_RETURN_IF_ERROR(read_({Role::kQBias, l}, 0, q_rows, at));
      MOESERVE_RETURN_IF_ERROR(read_({Role::kKBias, l}, 0, kv_rows, at + q_rows));
      MOESERVE_RETURN_IF_ERROR(read_({Role::kVBias, l}, 0, kv_rows, at + q_rows + kv_rows));
      layer->qkv_bias = bias;
    }
    if (c_.qk_norm) {
      MOESERVE_ASSIGN_OR_RETURN(layer->q_norm, Load({Role::kQNorm, l}, 0, q_rows));
      MOESERVE_ASSIGN_OR_RETURN(layer->k_norm, Load({Role::kKNorm, l}, 0, kv_rows));
    }
    MOESERVE_ASSIGN_OR_RETURN(layer->o_proj, Load({Role::kO, l}, hidden, q_rows));
    if (c_.attention_out_bias) {
      MOESERVE_ASSIGN_OR_RETURN(layer->o_bias, Load({Role::kOBias, l}, 0, hidden));
    }
    return absl::OkStatus();
  }

  absl::Status AssembleMoe(int32_t l, MoeLayerWeights* moe) {
    const MoeConfig& m = c_.moe;
    const int64_t hidden = c_.hidden_size;
    const int64_t experts = m.num_experts;
    const std::vector<int32_t>& sizes = m.expert_intermediate_sizes[l];
    const int64_t inter = *std::max_element(sizes.begin(), sizes.end());
    MOESERVE_ASSIGN_OR_RETURN(moe->router, Load({Role::kRouter, l}, experts, hidden));
    if (m.router == RouterKind::kLlamaMoeMlpTanh) {
      MOESERVE_ASSIGN_OR_RETURN(moe->router_out, Load({Role::kRouterOut, l}, experts, experts));
    }
    // Zero-filled, so padding rows and columns of narrower experts stay zero.
    MOESERVE_ASSIGN_OR_RETURN(moe->experts_gate_up, Allocate({experts, 2 * inter, hidden}));
    MOESERVE_ASSIGN_OR_RETURN(moe->experts_down, Allocate({experts, hidden, inter}));
    std::vector<float> down;
    for (int32_t e = 0; e < experts; ++e) {
      const int64_t size = sizes[e];
      w_.num_parameters -= 3 * (inter - size) * hidden;  // padding is not a parameter
      float* gate_up = moe->experts_gate_up.data_as<float>() + e * 2 * inter * hidden;
      MOESERVE_RETURN_IF_ERROR(read_({Role::kExpertGate, l, e}, size, hidden, gate_up));
      MOESERVE_RETURN_IF_ERROR(
          read_({Role::kExpertUp, l, e}, size, hidden, gate_up + inter * hidden));
      down.resize(hidden * size);
      MOESERVE_RETURN_IF_ERROR(read_({Role::kExpertDown, l, e}, hidden, size, down.data()));
      float* to = moe->experts_down.data_as<float>() + e * hidden * inter;
      for (int64_t r = 0; r < hidden; ++r) {
        std::memcpy(to + r * inter, down.data() + r * size, size * sizeof(float));
      }
    }
    if (m.num_shared_experts > 0) {
      const int64_t shared = m.shared_expert_intermediate_size;
      MOESERVE_ASSIGN_OR_RETURN(
          moe->shared_gate_up,
          Fuse({{{Role::kSharedGate, l}, shared}, {{Role::kSharedUp, l}, shared}}, hidden));
      MOESERVE_ASSIGN_OR_RETURN(moe->shared_down, Load({Role::kSharedDown, l}, hidden, shared));
      if (m.shared_expert_gate) {
        MOESERVE_ASSIGN_OR_RETURN(moe->shared_gate, Load({Role::kSharedExpertGate, l}, 1, hidden));
      }
    }
    return absl::OkStatus();
  }

  // A fresh zeroed f32 tensor of `shape`, owned by the weights.
  absl::StatusOr<Tensor> Allocate(std::initializer_list<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    w_.storage.push_back(std::make_unique<float[]>(n));  // value-initialised: zeros
    w_.num_parameters += n;
    return Tensor(w_.storage.back().get(), DType::kF32, shape);
  }

  // Tensor `ref` as [rows, cols], or [cols] when rows is 0.
  absl::StatusOr<Tensor> Load(const TensorRef& ref, int64_t rows, int64_t cols) {
    absl::StatusOr<Tensor> t = rows == 0 ? Allocate({cols}) : Allocate({rows, cols});
    if (!t.ok()) return t;
    MOESERVE_RETURN_IF_ERROR(read_(ref, rows, cols, t->data_as<float>()));
    return t;
  }

  // Several tensors stacked by rows into one: [sum of rows, cols].
  absl::StatusOr<Tensor> Fuse(std::initializer_list<std::pair<TensorRef, int64_t>> parts,
                              int64_t cols) {
    int64_t rows = 0;
    for (const auto& part : parts) rows += part.second;
    MOESERVE_ASSIGN_OR_RETURN(Tensor fused, Allocate({rows, cols}));
    float* at = fused.data_as<float>();
    for (const auto& [ref, part_rows] : parts) {
      MOESERVE_RETURN_IF_ERROR(read_(ref, part_rows, cols, at));
      at += part_rows * cols;
    }
    return fused;
  }

  const ModelConfig& c_;
  const ReadTensorFn& read_;
  ModelWeights w_;
};

// GGUF names. Experts live in stacked [num_experts, ...] tensors: the name and the expert.
std::string GgufName(Role role, int32_t layer) {
  const std::string blk = absl::StrCat("blk.", layer, ".");
  switch (role) {
    case Role::kEmbedding:
      return "token_embd.weight";
    case Role::kAttnNorm:
      return blk + "attn_norm.weight";
    case Role::kQ:
      return blk + "attn_q.weight";
    case Role::kK:
      return blk + "attn_k.weight";
    case Role::kV:
      return blk + "attn_v.weight";
    case Role::kQBias:
      return blk + "attn_q.bias";
    case Role::kKBias:
      return blk + "attn_k.bias";
    case Role::kVBias:
      return blk + "attn_v.bias";
    case Role::kO:
      return blk + "attn_output.weight";
    case Role::kOBias:
      return blk + "attn_output.bias";
    case Role::kQNorm:
      return blk + "attn_q_norm.weight";
    case Role::kKNorm:
      return blk + "attn_k_norm.weight";
    case Role::kFfnNorm:
      return blk + "ffn_norm.weight";
    case Role::kGate:
      return blk + "ffn_gate.weight";
    case Role::kUp:
      return blk + "ffn_up.weight";
    case Role::kDown:
      return blk + "ffn_down.weight";
    case Role::kRouter:
      return blk + "ffn_gate_inp.weight";
    case Role::kExpertGate:
      return blk + "ffn_gate_exps.weight";
    case Role::kExpertUp:
      return blk + "ffn_up_exps.weight";
    case Role::kExpertDown:
      return blk + "ffn_down_exps.weight";
    case Role::kSharedGate:
      return blk + "ffn_gate_shexp.weight";
    case Role::kSharedUp:
      return blk + "ffn_up_shexp.weight";
    case Role::kSharedDown:
      return blk + "ffn_down_shexp.weight";
    case Role::kSharedExpertGate:
      return blk + "ffn_gate_inp_shexp.weight";
    case Role::kRouterOut:
      return blk + "ffn_gate_inp_out.weight";  // no GGUF model has one
    case Role::kFinalNorm:
      return "output_norm.weight";
    case Role::kLmHead:
      return "output.weight";
  }
  return "";
}

// Hugging Face Hub names of each family.
std::string HfName(const ModelConfig& c, const TensorRef& ref) {
  const std::string p = absl::StrCat("model.layers.", ref.layer, ".");
  const std::string e = absl::StrCat(ref.expert);
  const bool mixtral_block = c.family == ModelFamily::kMixtral || c.family == ModelFamily::kLlama;
  // Where the routed experts and the router live.
  const std::string moe = p + (mixtral_block ? "block_sparse_moe." : "mlp.");
  switch (ref.role) {
    case Role::kEmbedding:
      return "model.embed_tokens.weight";
    case Role::kAttnNorm:
      return p + "input_layernorm.weight";
    case Role::kQ:
      return p + "self_attn.q_proj.weight";
    case Role::kK:
      return p + "self_attn.k_proj.weight";
    case Role::kV:
      return p + "self_attn.v_proj.weight";
    case Role::kQBias:
      return p + "self_attn.q_proj.bias";
    case Role::kKBias:
      return p + "self_attn.k_proj.bias";
    case Role::kVBias:
      return p + "self_attn.v_proj.bias";
    case Role::kO:
      return p + "self_attn.o_proj.weight";
    case Role::kOBias:
      return p + "self_attn.o_proj.bias";
    case Role::kQNorm:
      return p + "self_attn.q_norm.weight";
    case Role::kKNorm:
      return p + "self_attn.k_norm.weight";
    case Role::kFfnNorm:
      return p + "post_attention_layernorm.weight";
    case Role::kGate:
      return p + "mlp.gate_proj.weight";
    case Role::kUp:
      return p + "mlp.up_proj.weight";
    case Role::kDown:
      return p + "mlp.down_proj.weight";
    case Role::kRouter:
      if (c.family == ModelFamily::kLlamaMoe) {
        return c.moe.router == RouterKind::kLlamaMoeMlpTanh ? p + "mlp.gate.gate_network.0.weight"
                                                            : p + "mlp.gate.gate_network.weight";
      }
      return moe + "gate.weight";
    case Role::kRouterOut:
      return p + "mlp.gate.gate_network.2.weight";
    case Role::kExpertGate:
    case Role::kExpertUp:
    case Role::kExpertDown: {
      if (c.family == ModelFamily::kLlamaMoe) {
        const char* which = ref.role == Role::kExpertGate ? "weight_gate."
                            : ref.role == Role::kExpertUp ? "weight_up."
                                                          : "weight_down.";
        return p + "mlp.calculator.experts." + which + e;
      }
      if (c.family == ModelFamily::kMixtral) {
        const char* which = ref.role == Role::kExpertGate ? ".w1.weight"
                            : ref.role == Role::kExpertUp ? ".w3.weight"
                                                          : ".w2.weight";
        return moe + "experts." + e + which;
      }
      const char* which = ref.role == Role::kExpertGate ? ".gate_proj.weight"
                          : ref.role == Role::kExpertUp ? ".up_proj.weight"
                                                        : ".down_proj.weight";
      return moe + "experts." + e + which;
    }
    case Role::kSharedGate:
    case Role::kSharedUp:
    case Role::kSharedDown: {
      const char* block =
          c.family == ModelFamily::kQwen2Moe ? "mlp.shared_expert." : "mlp.shared_experts.";
      const char* which = ref.role == Role::kSharedGate ? "gate_proj.weight"
                          : ref.role == Role::kSharedUp ? "up_proj.weight"
                                                        : "down_proj.weight";
      return p + block + which;
    }
    case Role::kSharedExpertGate:
      return p + "mlp.shared_expert_gate.weight";
    case Role::kFinalNorm:
      return "model.norm.weight";
    case Role::kLmHead:
      return "lm_head.weight";
  }
  return "";
}

// Tensors some checkpoints carry that inference does not read.
bool IgnoredHfTensor(const ModelConfig& c, const std::string& name) {
  // Buffers older transformers saved; recomputed from rope_theta.
  if (name.ends_with("rotary_emb.inv_freq")) return true;
  if (c.tie_word_embeddings && name == "lm_head.weight") return true;
  if (c.family == ModelFamily::kLlamaMoe) {
    // TopKBalancedNoisyGate's noise projection (training only) and the predict_gate that
    // forecasts the next layer's experts (for expert prefetch, not for the math).
    if (name.find(".mlp.gate.weight_noise.") != std::string::npos) return true;
    if (name.find(".mlp.predict_gate.") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<ModelWeights> LoadGgufWeights(const gguf::GgufFile& file,
                                             const ModelConfig& config) {
  MOESERVE_RETURN_IF_ERROR(config.Validate());
  GgufWeightReader reader(file);
  std::vector<float> scratch;
  const ReadTensorFn read = [&](const TensorRef& ref, int64_t rows, int64_t cols, float* dst) {
    const std::string name = GgufName(ref.role, ref.layer);
    if (ref.expert >= 0) {
      // Stacked experts: GGUF shape {cols, rows, num_experts}, expert e's rows contiguous.
      return reader.ReadSlice(name, config.moe.num_experts, ref.expert, rows, cols, dst);
    }
    if (ref.role != Role::kQ && ref.role != Role::kK) return reader.Read(name, rows, cols, dst);
    // q and k rows are stored permuted for adjacent-pair RoPE; undo it.
    scratch.resize(rows * cols);
    MOESERVE_RETURN_IF_ERROR(reader.Read(name, rows, cols, scratch.data()));
    UnpermuteQkRows(scratch.data(), rows / config.head_dim, config.head_dim, cols, dst);
    return absl::OkStatus();
  };
  return WeightAssembler(config, read).Assemble();
}

absl::StatusOr<ModelWeights> LoadHfWeights(const TensorSource& source, const ModelConfig& config) {
  MOESERVE_RETURN_IF_ERROR(config.Validate());
  HfWeightReader reader(source);
  const ReadTensorFn read = [&](const TensorRef& ref, int64_t rows, int64_t cols, float* dst) {
    return reader.Read(HfName(config, ref),
                       rows == 0 ? std::vector<int64_t>{cols} : std::vector<int64_t>{rows, cols},
                       dst);
  };
  MOESERVE_ASSIGN_OR_RETURN(ModelWeights weights, WeightAssembler(config, read).Assemble());
  MOESERVE_RETURN_IF_ERROR(reader.CheckAllUsed(
      config, [&](const std::string& name) { return IgnoredHfTensor(config, name); }));
  return weights;
}

ModelWeights UploadWeights(const ModelWeights& weights, Backend* backend, DType matrix_dtype) {
  CHECK(matrix_dtype == DType::kF32 || matrix_dtype == DType::kBF16);
  ModelWeights out;
  out.num_parameters = weights.num_parameters;
  std::vector<uint16_t> narrow;
  // The CPU backend reads norms and biases as f32 whatever the matrices are.
  const bool f32_vectors = backend->device() == Device::kCpu;
  auto upload = [&](const Tensor& t) -> Tensor {
    if (t.data() == nullptr) return Tensor();
    CHECK(t.dtype() == DType::kF32 && t.device() == Device::kCpu);
    const int64_t n = t.num_elements();
    const DType dtype = f32_vectors && t.ndim() == 1 ? DType::kF32 : matrix_dtype;
    out.device_storage.push_back(backend->Allocate(n * DTypeRowBytes(dtype, 1)));
    void* data = out.device_storage.back()->data();
    const Device device = backend->device();
    CHECK(t.ndim() >= 1 && t.ndim() <= 3);
    const Tensor copy = t.ndim() == 1 ? Tensor(data, dtype, {t.dim(0)}, device)
                        : t.ndim() == 2
                            ? Tensor(data, dtype, {t.dim(0), t.dim(1)}, device)
                            : Tensor(data, dtype, {t.dim(0), t.dim(1), t.dim(2)}, device);
    if (dtype == DType::kF32) {
      backend->CopyFromHost(t.data(), copy);
    } else {
      narrow.resize(n);
      const float* src = t.data_as<float>();
      for (int64_t i = 0; i < n; ++i) narrow[i] = F32ToBF16(src[i]);
      backend->CopyFromHost(narrow.data(), copy);
    }
    return copy;
  };
  out.embedding = upload(weights.embedding);
  for (const LayerWeights& l : weights.layers) {
    LayerWeights d;
    d.attn_norm = upload(l.attn_norm);
    d.qkv = upload(l.qkv);
    d.qkv_bias = upload(l.qkv_bias);
    d.q_norm = upload(l.q_norm);
    d.k_norm = upload(l.k_norm);
    d.o_proj = upload(l.o_proj);
    d.o_bias = upload(l.o_bias);
    d.ffn_norm = upload(l.ffn_norm);
    d.gate_up = upload(l.gate_up);
    d.down_proj = upload(l.down_proj);
    d.moe.router = upload(l.moe.router);
    d.moe.router_out = upload(l.moe.router_out);
    d.moe.experts_gate_up = upload(l.moe.experts_gate_up);
    d.moe.experts_down = upload(l.moe.experts_down);
    d.moe.shared_gate_up = upload(l.moe.shared_gate_up);
    d.moe.shared_down = upload(l.moe.shared_down);
    d.moe.shared_gate = upload(l.moe.shared_gate);
    out.layers.push_back(d);
  }
  out.final_norm = upload(weights.final_norm);
  out.lm_head =
      weights.lm_head.data() == weights.embedding.data() ? out.embedding : upload(weights.lm_head);
  return out;
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
