// The dense Llama a conversion starts from: a llama GGUF file or a Hugging Face
// LlamaForCausalLM directory, read through the engine's own loaders into its config and f32
// weights (q|k|v and gate|up fused, q/k rows in Hugging Face order, GGUF's permutation
// undone), plus what the output needs to know about the source: its widest float type and,
// for GGUF, the file itself (its tokenizer metadata becomes tokenizer.json).
#ifndef MOESERVE_TOOLS_CONVERT_DENSE_MODEL_H_
#define MOESERVE_TOOLS_CONVERT_DENSE_MODEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"

namespace moeserve::convert {

struct DenseModel {
  std::string path;
  ModelConfig config;
  ModelWeights weights;
  // The dtype outputs default to: the source's float type (the widest when tensors differ),
  // kF32 when any tensor is quantized (dequantized values are exact in f32).
  DType dtype = DType::kF32;
  std::unique_ptr<gguf::GgufFile> gguf;  // null for Hugging Face directories
};

// NotFound when `path` does not exist; InvalidArgument when it is not a dense llama model
// (e.g. already MoE), naming the path and what is wrong.
absl::StatusOr<DenseModel> LoadDenseModel(const std::string& path);

}  // namespace moeserve::convert

#endif  // MOESERVE_TOOLS_CONVERT_DENSE_MODEL_H_
