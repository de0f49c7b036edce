#include "engine/model_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/absl_strings.h"
#include "common/status.h"

namespace moeserve {
namespace {

// The most experts over all layers a GGUF may declare (see ModelConfigFromGguf).
constexpr int64_t kMaxLayerExperts = int64_t{1} << 22;

// Reads an integer key that must be positive and fit in int32.
absl::StatusOr<int32_t> PositiveInt(const gguf::GgufFile& file, const std::string& key) {
  absl::StatusOr<int64_t> value = file.GetInt(key);
  if (!value.ok()) return value.status();
  if (*value <= 0 || *value > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": metadata '", key, "' = ", *value, " is out of range"));
  }
  return static_cast<int32_t>(*value);
}

absl::Status ValidateRopeScaling(const RopeScaling& s) {
  if (s.kind == RopeScalingKind::kNone) return absl::OkStatus();
  if (!(s.factor > 0.0f)) {
    return absl::InvalidArgumentError(Cat("rope_scaling.factor (", s.factor, ") must be positive"));
  }
  if (s.kind == RopeScalingKind::kLlama3) {
    if (!(s.low_freq_factor > 0.0f) || !(s.high_freq_factor > s.low_freq_factor)) {
      return absl::InvalidArgumentError(Cat("rope_scaling needs 0 < low_freq_factor (",
                                            s.low_freq_factor, ") < high_freq_factor (",
                                            s.high_freq_factor, ")"));
    }
    if (s.original_max_position_embeddings <= 0) {
      return absl::InvalidArgumentError(
          "rope_scaling.original_max_position_embeddings must be positive");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateMoe(const ModelConfig& c) {
  const MoeConfig& m = c.moe;
  auto fail = [](const std::string& what) { return absl::InvalidArgumentError(what); };
  if (m.num_experts < 0) return fail("num_experts must not be negative");
  if (m.num_shared_experts < 0 || m.shared_expert_intermediate_size < 0) {
    return fail("shared expert count and size must not be negative");
  }
  if ((m.num_shared_experts > 0) != (m.shared_expert_intermediate_size > 0)) {
    return fail(Cat("num_shared_experts (", m.num_shared_experts,
                    ") and shared_expert_intermediate_size (", m.shared_expert_intermediate_size,
                    ") must both be zero or both positive"));
  }
  if (m.shared_expert_gate && m.num_shared_experts == 0) {
    return fail("shared_expert_gate needs a shared expert");
  }
  if (m.num_experts == 0) {
    if (m.top_k != 0 || !m.expert_intermediate_sizes.empty() || m.num_shared_experts != 0) {
      return fail("a dense model (num_experts = 0) has no top_k, experts or shared experts");
    }
    return absl::OkStatus();
  }
  if (m.top_k <= 0 || m.top_k > m.num_experts) {
    return fail(Cat("top_k (", m.top_k, ") must be in [1, num_experts = ", m.num_experts, "]"));
  }
  if (m.decoder_sparse_step <= 0) return fail("decoder_sparse_step must be positive");
  if (m.moe_layer_freq <= 0) return fail("moe_layer_freq must be positive");
  if (m.first_k_dense_replace < 0) return fail("first_k_dense_replace must not be negative");
  for (int32_t layer : m.mlp_only_layers) {
    if (layer < 0 || layer >= c.num_layers) {
      return fail(
          Cat("mlp_only_layers entry ", layer, " is not a layer in [0, ", c.num_layers, ")"));
    }
  }
  if (static_cast<int64_t>(m.expert_intermediate_sizes.size()) != c.num_layers) {
    return fail(Cat("expert_intermediate_sizes has ", m.expert_intermediate_sizes.size(),
                    " layers, the model ", c.num_layers));
  }
  for (int layer = 0; layer < c.num_layers; ++layer) {
    const std::vector<int32_t>& sizes = m.expert_intermediate_sizes[layer];
    if (!c.IsMoeLayer(layer)) {
      if (!sizes.empty()) return fail(Cat("dense layer ", layer, " lists expert sizes"));
      continue;
    }
    if (static_cast<int64_t>(sizes.size()) != m.num_experts) {
      return fail(Cat("layer ", layer, " lists ", sizes.size(), " expert sizes for ", m.num_experts,
                      " experts"));
    }
    for (int32_t size : sizes) {
      if (size <= 0) return fail(Cat("layer ", layer, " has an expert of size ", size));
    }
  }
  if (!m.score_scale_factors.empty() &&
      static_cast<int64_t>(m.score_scale_factors.size()) != c.num_layers) {
    return fail(Cat("score_scale_factor has ", m.score_scale_factors.size(), " entries, the model ",
                    c.num_layers, " layers"));
  }
  for (float scale : m.score_scale_factors) {
    if (!std::isfinite(scale)) return fail("score_scale_factor must be finite");
  }
  const bool llama_moe_router = m.router != RouterKind::kSoftmaxTopK;
  if (llama_moe_router != (c.family == ModelFamily::kLlamaMoe)) {
    return fail(Cat("router kind does not match the ", ModelFamilyName(c.family), " family"));
  }
  return absl::OkStatus();
}

}  // namespace

const char* ModelFamilyName(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlama:
      return "llama";
    case ModelFamily::kMixtral:
      return "mixtral";
    case ModelFamily::kLlamaMoe:
      return "llama_moe";
    case ModelFamily::kQwen2Moe:
      return "qwen2_moe";
    case ModelFamily::kDeepseek:
      return "deepseek";
    case ModelFamily::kOlmoe:
      return "olmoe";
  }
  return "unknown";
}

bool ModelConfig::IsMoeLayer(int layer) const {
  if (moe.num_experts == 0) return false;
  switch (family) {
    case ModelFamily::kQwen2Moe:
      // Qwen2MoeDecoderLayer: not in mlp_only_layers and (layer + 1) % step == 0.
      return std::find(moe.mlp_only_layers.begin(), moe.mlp_only_layers.end(), layer) ==
                 moe.mlp_only_layers.end() &&
             (layer + 1) % moe.decoder_sparse_step == 0;
    case ModelFamily::kDeepseek:
      // DeepseekDecoderLayer: layer >= first_k_dense_replace and layer % freq == 0.
      return layer >= moe.first_k_dense_replace && layer % moe.moe_layer_freq == 0;
    case ModelFamily::kLlama:
    case ModelFamily::kMixtral:
    case ModelFamily::kLlamaMoe:
    case ModelFamily::kOlmoe:
      return true;
  }
  return false;
}

float ModelConfig::ScoreScaleFactor(int layer) const {
  return moe.score_scale_factors.empty() ? 1.0f : moe.score_scale_factors[layer];
}

absl::Status ModelConfig::Validate() const {
  auto fail = [](const std::string& what) { return absl::InvalidArgumentError(what); };
  if (vocab_size <= 0) return fail("vocab_size must be positive");
  if (hidden_size <= 0) return fail("hidden_size must be positive");
  if (intermediate_size <= 0) return fail("intermediate_size must be positive");
  if (num_layers <= 0) return fail("num_layers must be positive");
  if (num_heads <= 0 || num_kv_heads <= 0 || num_heads % num_kv_heads != 0) {
    return fail(absl::StrCat("num_heads (", num_heads, ") must be a positive multiple of ",
                             "num_kv_heads (", num_kv_heads, ")"));
  }
  if (head_dim <= 0 || head_dim % 2 != 0 || head_dim > 512) {
    return fail(absl::StrCat("head_dim (", head_dim, ") must be even and in [2, 512]"));
  }
  if (rotary_dim <= 0 || rotary_dim > head_dim || rotary_dim % 2 != 0) {
    return fail(absl::StrCat("rotary_dim (", rotary_dim, ") must be even and at most head_dim (",
                             head_dim, ")"));
  }
  if (!(rope_theta > 0.0f)) return fail("rope_theta must be positive");
  if (!(rms_norm_eps > 0.0f)) return fail("rms_norm_eps must be positive");
  if (max_position_embeddings <= 0) return fail("max_position_embeddings must be positive");
  MOESERVE_RETURN_IF_ERROR(ValidateRopeScaling(rope_scaling));
  if (bos_token_id < -1 || bos_token_id >= vocab_size) {
    return fail(
        Cat("bos_token_id (", bos_token_id, ") is not in the vocabulary (", vocab_size, ")"));
  }
  for (int32_t eos : eos_token_ids) {
    if (eos < 0 || eos >= vocab_size) {
      return fail(Cat("eos_token_id ", eos, " is not in the vocabulary (", vocab_size, ")"));
    }
  }
  return ValidateMoe(*this);
}

absl::StatusOr<ModelConfig> ModelConfigFromGguf(const gguf::GgufFile& file) {
  ModelConfig config;
  MOESERVE_ASSIGN_OR_RETURN(config.architecture, file.GetString("general.architecture"));
  if (config.architecture != "llama") {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": unsupported architecture '", config.architecture,
                     "' (general.architecture); moeserve serves 'llama' GGUF files"));
  }
  absl::StatusOr<std::string> name = file.GetString("general.name");
  config.name = name.ok() ? *name : std::filesystem::path(file.path()).stem().string();

  const std::string arch = config.architecture + ".";
  MOESERVE_ASSIGN_OR_RETURN(config.hidden_size, PositiveInt(file, arch + "embedding_length"));
  MOESERVE_ASSIGN_OR_RETURN(config.intermediate_size,
                            PositiveInt(file, arch + "feed_forward_length"));
  MOESERVE_ASSIGN_OR_RETURN(config.num_layers, PositiveInt(file, arch + "block_count"));
  MOESERVE_ASSIGN_OR_RETURN(config.num_heads, PositiveInt(file, arch + "attention.head_count"));
  config.num_kv_heads = config.num_heads;
  if (file.Find(arch + "attention.head_count_kv") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(config.num_kv_heads,
                              PositiveInt(file, arch + "attention.head_count_kv"));
  }
  MOESERVE_ASSIGN_OR_RETURN(config.max_position_embeddings,
                            PositiveInt(file, arch + "context_length"));
  config.head_dim = config.hidden_size / config.num_heads;
  if (file.Find(arch + "attention.key_length") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(config.head_dim, PositiveInt(file, arch + "attention.key_length"));
  }
  config.rotary_dim = config.head_dim;
  if (file.Find(arch + "rope.dimension_count") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(config.rotary_dim, PositiveInt(file, arch + "rope.dimension_count"));
  }
  if (file.Find(arch + "rope.freq_base") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(double theta, file.GetFloat(arch + "rope.freq_base"));
    config.rope_theta = static_cast<float>(theta);
  }
  MOESERVE_ASSIGN_OR_RETURN(double eps, file.GetFloat(arch + "attention.layer_norm_rms_epsilon"));
  config.rms_norm_eps = static_cast<float>(eps);
  if (file.Find(arch + "rope.scaling.type") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(std::string scaling, file.GetString(arch + "rope.scaling.type"));
    if (scaling != "none") {
      return absl::InvalidArgumentError(absl::StrCat(file.path(), ": rope scaling '", scaling,
                                                     "' (", arch,
                                                     "rope.scaling.type) is not supported yet"));
    }
  }
  if (file.Find(arch + "expert_count") != nullptr) {
    // Mixtral-style MoE (llama.cpp writes Mixtral and upcycled Llamas as architecture
    // llama): softmax over all experts, top expert_used_count, renormalised.
    MOESERVE_ASSIGN_OR_RETURN(int64_t experts, file.GetInt(arch + "expert_count"));
    if (experts > 1) {
      MoeConfig& m = config.moe;
      MOESERVE_ASSIGN_OR_RETURN(m.num_experts, PositiveInt(file, arch + "expert_count"));
      MOESERVE_ASSIGN_OR_RETURN(m.top_k, PositiveInt(file, arch + "expert_used_count"));
      m.router = RouterKind::kSoftmaxTopK;
      m.norm_topk_prob = true;
      int32_t expert_size = config.intermediate_size;
      if (file.Find(arch + "expert_feed_forward_length") != nullptr) {
        MOESERVE_ASSIGN_OR_RETURN(expert_size,
                                  PositiveInt(file, arch + "expert_feed_forward_length"));
      }
      // The per-layer table is allocated before Validate() looks at it: bound it as
      // hf_config.cc does (the largest MoE models have tens of thousands of experts in all).
      if (int64_t{config.num_layers} * m.num_experts > kMaxLayerExperts) {
        return absl::InvalidArgumentError(
            absl::StrCat(file.path(), ": ", m.num_experts, " experts (", arch,
                         "expert_count) in each of ", config.num_layers,
                         " layers is more than moeserve supports (", kMaxLayerExperts, " in all)"));
      }
      m.expert_intermediate_sizes.assign(config.num_layers,
                                         std::vector<int32_t>(m.num_experts, expert_size));
    }
  }

  // The vocabulary size is the embedding's row count; the tokenizer must agree.
  const gguf::TensorInfo* embedding = file.FindTensor("token_embd.weight");
  if (embedding == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": missing tensor 'token_embd.weight'"));
  }
  if (embedding->shape.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": tensor 'token_embd.weight' must be 2-dimensional"));
  }
  config.vocab_size = static_cast<int32_t>(embedding->shape[1]);
  config.tie_word_embeddings = file.FindTensor("output.weight") == nullptr;

  if (absl::Status status = config.Validate(); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", status.message()));
  }
  return config;
}

}  // namespace moeserve
