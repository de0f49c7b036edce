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
  // `weights` live on `backend`'s device (see UploadWeights). The CPU computes in f32 with
  // f32 or bf16 weights; other backends compute in the weights' dtype (activations and the
  // KV cache take the embedding's). `backend` must
  // outlive the model. max_num_tokens and max_num_sequences bound the batches Forward
  // accepts.
  Model(const ModelConfig& config, ModelWeights weights, Backend* backend, int32_t max_num_tokens,
        int32_t max_num_sequences);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  DType activation_dtype() const { return act_dtype_; }

  // logits: host memory [batch.sequences.size(), vocab] (f32), for the last token of each
  // sequence. Each layer writes the K/V of every token of the batch before any attention
  // of that layer reads the cache, so a sequence may read blocks that another sequence of
  // the same batch fills (prefix sharing within a step relies on it).
  // REQUIRES: the batch's token and sequence counts are within the limits given at
  // construction, token ids < vocab, every slot and block table entry < kv num_blocks, and
  // kv_cache is on the backend's device in activation_dtype().
  void Forward(const ForwardBatch& batch, KvCache* kv_cache, float* logits);

  // Tokens routed to each expert of each layer by the last Forward, counted once per
  // selected expert: [num_layers * num_experts], row-major; zeros on dense layers. Empty
  // for dense models.
  const std::vector<int32_t>& expert_counts() const { return expert_counts_; }

 private:
  // A workspace on the backend's device.
  struct Buffer {
    std::unique_ptr<BackendBuffer> memory;
    DType dtype = DType::kF32;
    int64_t elements = 0;
  };
  Buffer Allocate(DType dtype, int64_t elements);
  // A [rows, cols] view of the first rows of a workspace.
  Tensor View(const Buffer& buffer, int64_t rows, int64_t cols) const;

  // The MLP of a MoE layer: reads normed [n, hidden], writes out [n, hidden].
  void MoeMlp(int32_t layer, const Tensor& normed, Tensor out);
  // A SwiGLU MLP: out = down · (silu(gate · x) * (up · x)).
  void DenseMlp(const Tensor& x, const Tensor& gate_up, const Tensor& down, Tensor out);

  const ModelConfig config_;
  const ModelWeights weights_;
  Backend* const backend_;
  const DType act_dtype_;
  const int32_t max_num_tokens_;
  const int32_t max_num_sequences_;
  const std::vector<float> inv_freq_;  // [rotary_dim / 2]

  // Workspaces, sized for max_num_tokens rows.
  Buffer residual_;  // [tokens, hidden]
  Buffer normed_;    // [tokens, hidden]
  Buffer qkv_;       // [tokens, (heads + 2 kv_heads) * head_dim]
  Buffer q_;         // [tokens, heads * head_dim]
  Buffer k_;         // [tokens, kv_heads * head_dim]
  Buffer v_;         // [tokens, kv_heads * head_dim]
  Buffer attn_;      // [tokens, heads * head_dim]
  Buffer proj_;      // [tokens, hidden]
  Buffer gate_up_;   // [tokens, 2 * intermediate]
  Buffer act_;       // [tokens, intermediate]
  Buffer last_;      // [sequences, hidden]
  Buffer logits_;    // [sequences, vocab] f32 (unused on the CPU: Forward writes the caller's)
  std::vector<int32_t> last_rows_;
  // MoE workspaces (unallocated for dense models); k = top_k, inter = the widest expert.
  Buffer router_hidden_;  // [tokens, experts] LLaMA-MoE's tanh layer
  Buffer router_logits_;  // [tokens, experts] f32
  Buffer topk_ids_;       // [tokens, k] i32
  Buffer topk_weights_;   // [tokens, k] f32
  Buffer offsets_;        // [layers, experts + 1] i32, every layer's row kept for the counts
  Buffer pair_rows_;      // [tokens * k] i32
  Buffer permuted_;       // [tokens * k, hidden]
  Buffer expert_act_;     // [tokens * k, inter]
  Buffer expert_out_;     // [tokens * k, hidden]
  Buffer shared_gate_;    // [tokens, 1]
  std::vector<int32_t> offsets_host_;   // [layers * (experts + 1)]
  std::vector<int32_t> expert_counts_;  // [layers * experts]
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_MODEL_H_
