// A Llama-architecture decoder of any family in ModelConfig (dense Llama 2/3 and SmolLM2;
// Mixtral and upcycled Llamas, LLaMA-MoE, Qwen2-MoE, DeepSeek-MoE, OLMoE) written once
// over the Backend interface. Forward() runs one engine step: any mix of prefill chunks and decode
// tokens from several sequences, reading and writing their KV through block tables, and returns the
// logits of each sequence's last token. Workspaces are allocated once, for the largest step the
// engine will run.
#ifndef MOESERVE_ENGINE_MODEL_H_
#define MOESERVE_ENGINE_MODEL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/backend.h"
#include "engine/kv_cache.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"

namespace moeserve {

// The tokens of one step, sequence after sequence.
struct ForwardBatch {
  std::vector<int32_t> token_ids;  // [num_tokens]
  std::vector<int32_t> positions;  // [num_tokens]
  std::vector<int32_t> slots;      // [num_tokens] physical KV slot of each token
  std::vector<BatchSequence> sequences;

  void Clear() {
    token_ids.clear();
    positions.clear();
    slots.clear();
    sequences.clear();
  }
};

class Model {
 public:
  // `backend` must outlive the model. max_num_tokens and max_num_sequences bound the
  // batches Forward accepts.
  Model(const ModelConfig& config, ModelWeights weights, Backend* backend, int32_t max_num_tokens,
        int32_t max_num_sequences);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }

  // logits: [batch.sequences.size(), vocab], for the last token of each sequence. Each
  // layer writes the K/V of every token of the batch before any attention of that layer
  // reads the cache, so a sequence may read blocks that another sequence of the same
  // batch fills (prefix sharing within a step relies on it).
  // REQUIRES: the batch's token and sequence counts are within the limits given at
  // construction, token ids < vocab, and every slot and block table entry < kv num_blocks.
  void Forward(const ForwardBatch& batch, KvCache* kv_cache, float* logits);

  // Tokens routed to each expert of each layer by the last Forward, counted once per
  // selected expert: [num_layers * num_experts], row-major; zeros on dense layers. Empty
  // for dense models.
  const std::vector<int32_t>& expert_counts() const { return expert_counts_; }

 private:
  // The MLP of a MoE layer: reads normed [n, hidden], writes out [n, hidden].
  void MoeMlp(int32_t layer, const Tensor& normed, Tensor out);
  // A SwiGLU MLP: out = down · (silu(gate · x) * (up · x)).
  void DenseMlp(const Tensor& x, const Tensor& gate_up, const Tensor& down, Tensor out);

  // A [rows, cols] f32 view of the first rows of a workspace buffer.
  static Tensor View(std::vector<float>& buffer, int64_t rows, int64_t cols);

  const ModelConfig config_;
  const ModelWeights weights_;
  Backend* const backend_;
  const int32_t max_num_tokens_;
  const int32_t max_num_sequences_;
  const std::vector<float> inv_freq_;  // [rotary_dim / 2]

  // Workspaces, sized for max_num_tokens rows.
  std::vector<float> residual_;  // [tokens, hidden]
  std::vector<float> normed_;    // [tokens, hidden]
  std::vector<float> qkv_;       // [tokens, (heads + 2 kv_heads) * head_dim]
  std::vector<float> q_;         // [tokens, heads * head_dim]
  std::vector<float> k_;         // [tokens, kv_heads * head_dim]
  std::vector<float> v_;         // [tokens, kv_heads * head_dim]
  std::vector<float> attn_;      // [tokens, heads * head_dim]
  std::vector<float> proj_;      // [tokens, hidden]
  std::vector<float> gate_up_;   // [tokens, 2 * intermediate]
  std::vector<float> act_;       // [tokens, intermediate]
  std::vector<float> last_;      // [sequences, hidden]
  std::vector<int32_t> last_rows_;
  // MoE workspaces (empty for dense models); k = top_k, inter = the widest expert.
  std::vector<float> router_hidden_;    // [tokens, experts] LLaMA-MoE's tanh layer
  std::vector<float> router_logits_;    // [tokens, experts]
  std::vector<int32_t> topk_ids_;       // [tokens, k]
  std::vector<float> topk_weights_;     // [tokens, k]
  std::vector<int32_t> offsets_;        // [experts + 1]
  std::vector<int32_t> offsets_host_;   // [experts + 1] the counts' copy on the host
  std::vector<int32_t> pair_rows_;      // [tokens * k]
  std::vector<float> permuted_;         // [tokens * k, hidden]
  std::vector<float> expert_act_;       // [tokens * k, inter]
  std::vector<float> expert_out_;       // [tokens * k, hidden]
  std::vector<float> shared_gate_;      // [tokens, 1]
  std::vector<int32_t> expert_counts_;  // [layers * experts]
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_MODEL_H_
