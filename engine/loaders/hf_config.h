// A Hugging Face config.json -> ModelConfig, for every model_type we serve: llama (dense,
// and the upcycled Llama3-8x8b-MoE with num_local_experts), mixtral, llama_moe (LLaMA-MoE
// v1), qwen2_moe, deepseek (DeepSeek-MoE v1) and olmoe. Keys a family's config class
// defaults are filled with the upstream defaults; keys that only matter for training
// (router noise, aux losses, dropout) are ignored. Errors are InvalidArgument naming the
// file and the key.
//
// Built into moeserve_engine (not moeserve_loaders) because it produces a ModelConfig.
#ifndef MOESERVE_ENGINE_LOADERS_HF_CONFIG_H_
#define MOESERVE_ENGINE_LOADERS_HF_CONFIG_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/model_config.h"

namespace moeserve {

// Reads and converts the config.json at `config_json_path`.
absl::StatusOr<ModelConfig> ModelConfigFromHfConfig(const std::string& config_json_path);

// The same from the file's text; `source` names it in error messages.
absl::StatusOr<ModelConfig> ModelConfigFromHfConfigText(std::string_view json_text,
                                                        std::string_view source);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_LOADERS_HF_CONFIG_H_
