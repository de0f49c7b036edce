// moeserve-convert upcycle: the Llama3-8x8b-MoE recipe. Every layer's dense MLP is copied
// into E identical experts and a new router [E, hidden] is added (random normal with std
// kRouterInitStd from the seed, or zeros), written as a Mixtral-layout Hugging Face
// checkpoint (model_type "mixtral", MixtralForCausalLM): with identical experts and
// Mixtral's top-k weights renormalised to sum to 1, the model computes what the dense one
// did, whatever the router says.
#ifndef MOESERVE_TOOLS_CONVERT_UPCYCLE_H_
#define MOESERVE_TOOLS_CONVERT_UPCYCLE_H_

#include <string>

#include "absl/status/status.h"
#include "tools/convert/checkpoint_writer.h"

namespace moeserve::convert {

// config.json of the upcycled model: the Llama fields plus Mixtral's
// (num_local_experts, num_experts_per_tok, router settings).
ConfigFields UpcycleConfig(const ModelConfig& dense, DType dtype, const ConvertOptions& options);

// Converts the dense model at `src` (GGUF file or HF directory) into `dst`: config.json,
// model.safetensors, tokenizer files and generation_config.json. Errors name what is wrong
// (an option, SRC, DST or a tensor).
absl::Status Upcycle(const std::string& src, const std::string& dst, const ConvertOptions& options);

}  // namespace moeserve::convert

#endif  // MOESERVE_TOOLS_CONVERT_UPCYCLE_H_
