// The weights of a Llama-architecture model, dense or MoE, of any family in
// ModelConfig, converted once at load into the layout the forward pass wants: f32,
// [out, in] row-major, q|k|v and gate|up fused so each takes one GEMM, experts stacked
// [num_experts, ...] for the grouped GEMMs, and q/k rows in Hugging Face order (GGUF's
// RoPE permutation undone; Hugging Face checkpoints are already in that order).
// ModelWeights owns its memory; the Tensor views point into it. Optional tensors are
// empty views (data() == nullptr).
#ifndef MOESERVE_ENGINE_MODEL_WEIGHTS_H_
#define MOESERVE_ENGINE_MODEL_WEIGHTS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "engine/backend.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/loaders/tensor_source.h"
#include "engine/model_config.h"

namespace moeserve {

// The routed and shared experts of one MoE layer.
struct MoeLayerWeights {
  // The router: [num_experts, hidden]; LLaMA-MoE's "mlp" gate network is
  // router_out · tanh(router · x) with router_out [num_experts, num_experts].
  Tensor router;
  Tensor router_out;
  // Experts padded with zero rows/columns to the layer's widest expert (inter), which
  // leaves their outputs exact: [num_experts, 2 * inter, hidden], each expert's gate rows
  // then its up rows; and [num_experts, hidden, inter].
  Tensor experts_gate_up;
  Tensor experts_down;
  // The shared experts fused into one MLP of shared_inter (empty without): [2 *
  // shared_inter, hidden], [hidden, shared_inter]; Qwen2-MoE's sigmoid gate [1, hidden].
  Tensor shared_gate_up;
  Tensor shared_down;
  Tensor shared_gate;
};

struct LayerWeights {
  Tensor attn_norm;  // [hidden]
  Tensor qkv;        // [(num_heads + 2 * num_kv_heads) * head_dim, hidden]
  Tensor qkv_bias;   // [(num_heads + 2 * num_kv_heads) * head_dim] when attention_bias
  Tensor q_norm;     // [num_heads * head_dim] when qk_norm (OLMoE)
  Tensor k_norm;     // [num_kv_heads * head_dim] when qk_norm
  Tensor o_proj;     // [hidden, num_heads * head_dim]
  Tensor o_bias;     // [hidden] when attention_out_bias
  Tensor ffn_norm;   // [hidden]
  // Dense layers: the MLP.
  Tensor gate_up;    // [2 * intermediate, hidden]: gate rows, then up rows
  Tensor down_proj;  // [hidden, intermediate]
  // MoE layers (ModelConfig::IsMoeLayer).
  MoeLayerWeights moe;
};

struct ModelWeights {
  Tensor embedding;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor final_norm;                              // [hidden]
  Tensor lm_head;                                 // [vocab, hidden]; the embedding itself when tied
  std::vector<std::unique_ptr<float[]>> storage;  // owns what host views point to
  std::vector<std::unique_ptr<BackendBuffer>> device_storage;  // and what device views do
  int64_t num_parameters = 0;
};

// Reads, checks and converts every tensor of a llama GGUF file, dense or MoE
// (ffn_gate_inp, ffn_{gate,up,down}_exps). A missing tensor, a wrong shape or an
// unsupported type is an error naming the file and the tensor.
absl::StatusOr<ModelWeights> LoadGgufWeights(const gguf::GgufFile& file, const ModelConfig& config);

// Reads, checks and converts (F32, F16, BF16 -> f32) the tensors of a Hugging Face
// checkpoint of any family in ModelConfig, under the Hub's names (model.embed_tokens,
// model.layers.{l}.self_attn.*, .mlp.* / .block_sparse_moe.*, model.norm, lm_head; see
// DESIGN.md section 2). A missing tensor, a wrong shape or dtype, or a tensor the model
// would not use (e.g. a bias the config does not announce) is InvalidArgument naming the
// file and the tensor.
absl::StatusOr<ModelWeights> LoadHfWeights(const TensorSource& source, const ModelConfig& config);

// Opens the weights of a Hugging Face checkpoint directory: safetensors when `dir` holds
// model.safetensors.index.json or any *.safetensors, else pytorch_model*.bin (through
// pytorch_model.bin.index.json when present). NotFound naming `dir` when it holds neither.
absl::StatusOr<std::unique_ptr<TensorSource>> OpenHfCheckpoint(const std::string& dir);

// A copy of host f32 `weights` on `backend`'s device in `matrix_dtype` (kF32 or kBF16,
// rounded to nearest even), tensor for tensor; on the CPU backend the vectors (norms,
// biases) stay f32. A tied lm_head stays the embedding.
ModelWeights UploadWeights(const ModelWeights& weights, Backend* backend, DType matrix_dtype);

// Undoes llama.cpp's q/k row permutation for one [num_heads * head_dim, cols] matrix:
// GGUF row (h, i, s) holds Hugging Face row (h, s, i) for i < head_dim/2, s in {0, 1}.
void UnpermuteQkRows(const float* src, int64_t num_heads, int64_t head_dim, int64_t cols,
                     float* dst);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_MODEL_WEIGHTS_H_
