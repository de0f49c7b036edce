// The shape and hyper-parameters of a model, whatever file it came from. Loaders fill it
// (ModelConfigFromGguf here, ModelConfigFromHfConfig in loaders/hf_config.h); the model,
// KV cache and scheduler size themselves from it. One struct covers every family we serve:
// what differs between families is said per layer (IsMoeLayer, MoeConfig) rather than by
// a subclass per family.
#ifndef MOESERVE_ENGINE_MODEL_CONFIG_H_
#define MOESERVE_ENGINE_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/loaders/gguf_reader.h"
#include "kernels/cpu/rope.h"

namespace moeserve {

// The Hugging Face model_type a config came from; GGUF llama files are kLlama.
enum class ModelFamily { kLlama, kMixtral, kLlamaMoe, kQwen2Moe, kDeepseek, kOlmoe };

// "llama", "mixtral", ... as in config.json's model_type.
const char* ModelFamilyName(ModelFamily family);

// How a MoE layer turns router logits into (expert, weight) pairs (DESIGN.md section 2).
enum class RouterKind {
  // softmax over all experts in f32, top-k, renormalise over the k iff norm_topk_prob
  // (Mixtral, upcycled Llama, Qwen2-MoE, DeepSeek-MoE, OLMoE).
  kSoftmaxTopK,
  // LLaMA-MoE gate_network "mlp": logits = W2·tanh(W1·x), top-k of the logits, then
  // softmax over the k in f32 iff gate_use_softmax (else the raw logits are the scores).
  kLlamaMoeMlpTanh,
  // LLaMA-MoE gate_network "linear": logits = W·x, then as kLlamaMoeMlpTanh.
  kLlamaMoeLinear,
};

using RopeScaling = cpu::RopeScaling;
using RopeScalingKind = cpu::RopeScalingKind;

struct MoeConfig {
  int32_t num_experts = 0;  // routed experts in each MoE layer; 0 for dense models
  int32_t top_k = 0;        // experts each token is routed to
  RouterKind router = RouterKind::kSoftmaxTopK;
  bool norm_topk_prob = false;  // kSoftmaxTopK: renormalise the k weights to sum to 1
  // Width of each routed expert's MLP: [num_layers][num_experts], the inner list empty on
  // dense layers. Uniform for all families but LLaMA-MoE with explicit size_experts.
  std::vector<std::vector<int32_t>> expert_intermediate_sizes;
  // Shared experts run on every token beside the routed ones, fused into one MLP of
  // shared_expert_intermediate_size (DeepSeek: n_shared_experts * moe_intermediate_size).
  int32_t num_shared_experts = 0;
  int32_t shared_expert_intermediate_size = 0;
  bool shared_expert_gate = false;  // Qwen2-MoE: shared out *= sigmoid(Linear(hidden, 1))
  // LLaMA-MoE only (defaults make them no-ops elsewhere).
  bool gate_use_softmax = true;            // scores = softmax over the k logits, else raw logits
  bool multiply_gate_scores = true;        // out = sum y_e * score_e * scale, else sum y_e
  std::vector<float> score_scale_factors;  // [num_layers]; empty means 1.0 everywhere
  // Which layers are sparse (see ModelConfig::IsMoeLayer).
  int32_t decoder_sparse_step = 1;       // Qwen2-MoE: MoE iff (layer + 1) % step == 0
  std::vector<int32_t> mlp_only_layers;  // Qwen2-MoE: always dense
  int32_t first_k_dense_replace = 0;     // DeepSeek: layers below this are dense
  int32_t moe_layer_freq = 1;            // DeepSeek: MoE iff layer % freq == 0
};

struct ModelConfig {
  std::string architecture;  // "llama" for GGUF; the model_type for Hugging Face configs
  std::string name;
  int32_t vocab_size = 0;
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;  // width of the dense MLP (dense layers and dense models)
  int32_t num_layers = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t rotary_dim = 0;  // dimensions of each head that RoPE rotates
  float rope_theta = 10000.0f;
  float rms_norm_eps = 1e-5f;
  int32_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;

  ModelFamily family = ModelFamily::kLlama;
  RopeScaling rope_scaling;
  bool attention_bias = false;      // q, k and v projections carry a bias
  bool attention_out_bias = false;  // o_proj carries a bias (Llama/OLMoE/DeepSeek flag)
  // OLMoE: RMSNorm over the whole q projection [num_heads * head_dim] and k projection
  // [num_kv_heads * head_dim] before RoPE.
  bool qk_norm = false;
  std::string torch_dtype;    // "bfloat16", "float16", "float32"; empty when not stated
  int32_t bos_token_id = -1;  // -1: none
  std::vector<int32_t> eos_token_ids;
  MoeConfig moe;

  // Whether `layer` runs routed experts (else the dense MLP of intermediate_size).
  // REQUIRES: 0 <= layer < num_layers.
  bool IsMoeLayer(int layer) const;
  // LLaMA-MoE's per-layer scale on expert outputs; 1 for other families.
  float ScoreScaleFactor(int layer) const;

  // InvalidArgument naming the first inconsistent field.
  absl::Status Validate() const;
};

// Reads the config of a GGUF file; errors name the file and the metadata key.
absl::StatusOr<ModelConfig> ModelConfigFromGguf(const gguf::GgufFile& file);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_MODEL_CONFIG_H_
