// A dense Llama-architecture decoder (Llama 2/3, SmolLM2) written once over the Backend
// interface. Forward() runs one engine step: any mix of prefill chunks and decode tokens
// from several sequences, reading and writing their KV through block tables, and returns
// the logits of each sequence's last token. Workspaces are allocated once, for the
// largest step the engine will run.
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
  Model(const ModelConfig& config, ModelWeights weights, Backend* backend,
        int32_t max_num_tokens, int32_t max_num_sequences);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }

  // logits: [batch.sequences.size(), vocab], for the last token of each sequence.
  // REQUIRES: the batch's token and sequence counts are within the limits given at
  // construction, token ids < vocab, and every slot and block table entry < kv num_blocks.
  void Forward(const ForwardBatch& batch, KvCache* kv_cache, float* logits);

 private:
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
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_MODEL_H_
