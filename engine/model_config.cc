#include "engine/model_config.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace moeserve {
namespace {

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

}  // namespace

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
  return absl::OkStatus();
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
    MOESERVE_ASSIGN_OR_RETURN(int64_t experts, file.GetInt(arch + "expert_count"));
    if (experts > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.path(), ": Mixture-of-Experts GGUF files (", arch, "expert_count = ", experts,
          ") are not supported yet; dense llama models are"));
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
