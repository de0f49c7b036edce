// The weights of a dense Llama-architecture model, converted once at load into the layout
// the forward pass wants: f32, [out, in] row-major, q|k|v and gate|up fused so each takes
// one GEMM, and q/k rows in Hugging Face order (GGUF's RoPE permutation undone).
// ModelWeights owns its memory; the Tensor views point into it.
#ifndef MOESERVE_ENGINE_MODEL_WEIGHTS_H_
#define MOESERVE_ENGINE_MODEL_WEIGHTS_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/model_config.h"

namespace moeserve {

struct LayerWeights {
  Tensor attn_norm;  // [hidden]
  Tensor qkv;        // [(num_heads + 2 * num_kv_heads) * head_dim, hidden]
  Tensor o_proj;     // [hidden, num_heads * head_dim]
  Tensor ffn_norm;   // [hidden]
  Tensor gate_up;    // [2 * intermediate, hidden]: gate rows, then up rows
  Tensor down_proj;  // [hidden, intermediate]
};

struct ModelWeights {
  Tensor embedding;   // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor final_norm;  // [hidden]
  Tensor lm_head;     // [vocab, hidden]; the embedding itself when tied
  std::vector<std::unique_ptr<float[]>> storage;  // owns what the views point to
  int64_t num_parameters = 0;
};

// Reads, checks and converts every tensor of a llama GGUF file. A missing tensor, a wrong
// shape or an unsupported type is an error naming the file and the tensor.
absl::StatusOr<ModelWeights> LoadGgufWeights(const gguf::GgufFile& file,
                                             const ModelConfig& config);

// Undoes llama.cpp's q/k row permutation for one [num_heads * head_dim, cols] matrix:
// GGUF row (h, i, s) holds Hugging Face row (h, s, i) for i < head_dim/2, s in {0, 1}.
void UnpermuteQkRows(const float* src, int64_t num_heads, int64_t head_dim, int64_t cols,
                     float* dst);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_MODEL_WEIGHTS_H_
