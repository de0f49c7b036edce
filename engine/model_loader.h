// Turns a --model path into everything the engine needs from it: the model's config, its
// tokenizer, its chat template source and its weights. A directory is a Hugging Face
// checkpoint (config.json, *.safetensors or pytorch_model*.bin, tokenizer.json); a file is
// GGUF. Errors name the file and the field or tensor.
#ifndef MOESERVE_ENGINE_MODEL_LOADER_H_
#define MOESERVE_ENGINE_MODEL_LOADER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"
#include "engine/tokenizer/tokenizer.h"

namespace moeserve {

struct LoadedModel {
  std::string path;
  ModelConfig config;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<std::string> chat_template;  // nullopt when the model ships none
  // Reads and converts the weights: the slow part, run once the caller has checked the
  // rest, so a bad flag fails before minutes of loading.
  std::function<absl::StatusOr<ModelWeights>()> load_weights;
};

// Reads the config, tokenizer and chat template; opens (but does not read) the weights.
absl::StatusOr<LoadedModel> LoadModel(const std::string& path);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_MODEL_LOADER_H_
