#include "tools/convert/dense_model.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "common/absl_strings.h"
#include "common/status.h"
#include "engine/loaders/hf_config.h"
#include "engine/loaders/tensor_source.h"

namespace moeserve::convert {
namespace {

// The wider of two float types; kF32 when they differ (neither of f16 and bf16 holds the
// other).
DType Widest(DType a, DType b) { return a == b ? a : DType::kF32; }

// Fills bos/eos from the GGUF tokenizer metadata (ModelConfigFromGguf leaves them unset).
absl::Status ReadSpecialIds(const gguf::GgufFile& file, ModelConfig* config) {
  if (file.Find("tokenizer.ggml.bos_token_id") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(const int64_t bos, file.GetInt("tokenizer.ggml.bos_token_id"));
    config->bos_token_id = static_cast<int32_t>(bos);
  }
  config->eos_token_ids.clear();
  if (file.Find("tokenizer.ggml.eos_token_id") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(const int64_t eos, file.GetInt("tokenizer.ggml.eos_token_id"));
    config->eos_token_ids.push_back(static_cast<int32_t>(eos));
  }
  return config->Validate();
}

absl::Status CheckDense(const std::string& path, const ModelConfig& config) {
  if (config.family != ModelFamily::kLlama) {
    return absl::InvalidArgumentError(Cat(path, ": model_type '", ModelFamilyName(config.family),
                                          "' is not a dense llama model"));
  }
  if (config.moe.num_experts > 0) {
    return absl::InvalidArgumentError(Cat(path, ": the model already has ", config.moe.num_experts,
                                          " experts; moeserve-convert starts from a dense llama"));
  }
  if (config.attention_bias || config.attention_out_bias || config.qk_norm) {
    return absl::InvalidArgumentError(
        Cat(path, ": attention biases or q/k norms have no place in the Mixtral and LLaMA-MoE ",
            "layouts; moeserve-convert starts from a plain Llama"));
  }
  if (config.rotary_dim != config.head_dim) {
    return absl::InvalidArgumentError(Cat(path, ": RoPE over ", config.rotary_dim, " of ",
                                          config.head_dim,
                                          " head dimensions cannot be written as a Llama config"));
  }
  return absl::OkStatus();
}

absl::StatusOr<DenseModel> LoadGguf(const std::string& path) {
  DenseModel model;
  model.path = path;
  MOESERVE_ASSIGN_OR_RETURN(model.gguf, gguf::GgufFile::Open(path));
  MOESERVE_ASSIGN_OR_RETURN(model.config, ModelConfigFromGguf(*model.gguf));
  MOESERVE_RETURN_IF_ERROR(CheckDense(path, model.config));
  if (absl::Status status = ReadSpecialIds(*model.gguf, &model.config); !status.ok()) {
    return absl::InvalidArgumentError(Cat(path, ": ", status.message()));
  }
  bool first = true;
  for (const gguf::TensorInfo& info : model.gguf->tensors()) {
    const DType type = info.dtype.value_or(DType::kQ4_0);  // unreadable: LoadGgufWeights fails
    const DType float_type = DTypeIsQuantized(type) ? DType::kF32 : type;
    model.dtype = first ? float_type : Widest(model.dtype, float_type);
    first = false;
  }
  MOESERVE_ASSIGN_OR_RETURN(model.weights, LoadGgufWeights(*model.gguf, model.config));
  return model;
}

absl::StatusOr<DenseModel> LoadHfDirectory(const std::string& dir) {
  DenseModel model;
  model.path = dir;
  MOESERVE_ASSIGN_OR_RETURN(model.config, ModelConfigFromHfConfig(dir + "/config.json"));
  MOESERVE_RETURN_IF_ERROR(CheckDense(dir, model.config));
  MOESERVE_ASSIGN_OR_RETURN(std::unique_ptr<TensorSource> source, OpenHfCheckpoint(dir));
  bool first = true;
  for (const TensorView& view : source->tensors()) {
    model.dtype = first ? view.dtype : Widest(model.dtype, view.dtype);
    first = false;
  }
  // LoadHfWeights rejects any tensor that is not F32, F16 or BF16.
  MOESERVE_ASSIGN_OR_RETURN(model.weights, LoadHfWeights(*source, model.config));
  return model;
}

}  // namespace

absl::StatusOr<DenseModel> LoadDenseModel(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    return absl::NotFoundError(Cat(path, ": SRC does not exist"));
  }
  if (std::filesystem::is_directory(path, error)) return LoadHfDirectory(path);
  return LoadGguf(path);
}

}  // namespace moeserve::convert
