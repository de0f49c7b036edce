// The shape and hyper-parameters of a model, whatever file it came from. Loaders fill it;
// the model, KV cache and scheduler size themselves from it.
#ifndef MOESERVE_ENGINE_MODEL_CONFIG_H_
#define MOESERVE_ENGINE_MODEL_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/loaders/gguf_reader.h"

namespace moeserve {

struct ModelConfig {
  std::string architecture;  // "llama"
  std::string name;
  int32_t vocab_size = 0;
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;
  int32_t num_layers = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t rotary_dim = 0;  // dimensions of each head that RoPE rotates
  float rope_theta = 10000.0f;
  float rms_norm_eps = 1e-5f;
  int32_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;

  // InvalidArgument naming the first inconsistent field.
  absl::Status Validate() const;
};

// Reads the config of a GGUF file; errors name the file and the metadata key.
absl::StatusOr<ModelConfig> ModelConfigFromGguf(const gguf::GgufFile& file);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_MODEL_CONFIG_H_
