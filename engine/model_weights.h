// The weights of a dense Llama-architecture model, converted once at load into the layout
// the forward pass wants: f32, [out, in] row-major, q|k|v and gate|up fused so each takes
// one GEMM, and q/k rows in Hugging Face order (GGUF's RoPE permutation undone; Hugging
// Face checkpoints are already in that order). ModelWeights owns its memory; the Tensor
// views point into it.
#ifndef MOESERVE_ENGINE_MODEL_WEIGHTS_H_
#define MOESERVE_ENGINE_MODEL_WEIGHTS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/loaders/tensor_source.h"
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
  Tensor embedding;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor final_norm;                              // [hidden]
  Tensor lm_head;                                 // [vocab, hidden]; the embedding itself when tied
  std::vector<std::unique_ptr<float[]>> storage;  // owns what the views point to
  int64_t num_parameters = 0;
};

// Reads, checks and converts every tensor of a llama GGUF file. A missing tensor, a wrong
// shape or an unsupported type is an error naming the file and the tensor.
absl::StatusOr<ModelWeights> LoadGgufWeights(const gguf::GgufFile& file, const ModelConfig& config);

// Reads, checks and converts (F32, F16, BF16 -> f32) the tensors of a Hugging Face
// LlamaForCausalLM checkpoint: model.embed_tokens.weight, model.layers.{l}.{input_layernorm,
// self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}.weight,
// model.norm.weight and lm_head.weight (ignored when tie_word_embeddings). Dense llama only:
// other families, MoE configs and attention biases are Unimplemented. A missing tensor, a
// wrong shape or dtype, or a tensor the model would not use (e.g. a bias the config does
// not announce) is InvalidArgument naming the file and the tensor.
absl::StatusOr<ModelWeights> LoadHfWeights(const TensorSource& source, const ModelConfig& config);

// Opens the weights of a Hugging Face checkpoint directory: safetensors when `dir` holds
// model.safetensors.index.json or any *.safetensors, else pytorch_model*.bin (through
// pytorch_model.bin.index.json when present). NotFound naming `dir` when it holds neither.
absl::StatusOr<std::unique_ptr<TensorSource>> OpenHfCheckpoint(const std::string& dir);

// Undoes llama.cpp's q/k row permutation for one [num_heads * head_dim, cols] matrix:
// GGUF row (h, i, s) holds Hugging Face row (h, s, i) for i < head_dim/2, s in {0, 1}.
void UnpermuteQkRows(const float* src, int64_t num_heads, int64_t head_dim, int64_t cols,
                     float* dst);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_MODEL_WEIGHTS_H_
