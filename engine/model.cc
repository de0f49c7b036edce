#include "engine/model.h"

#include <cmath>
#include <utility>

#include "common/logging.h"
#include "kernels/cpu/rope.h"

namespace moeserve {

Model::Model(const ModelConfig& config, ModelWeights weights, Backend* backend,
             int32_t max_num_tokens, int32_t max_num_sequences)
    : config_(config),
      weights_(std::move(weights)),
      backend_(backend),
      max_num_tokens_(max_num_tokens),
      max_num_sequences_(max_num_sequences),
      inv_freq_(
          cpu::RopeInvFrequencies(config.rope_theta, config.rotary_dim, config.rope_scaling)) {
  const int64_t n = max_num_tokens;
  const int64_t hidden = config.hidden_size;
  const int64_t q_width = int64_t{config.num_heads} * config.head_dim;
  const int64_t kv_width = int64_t{config.num_kv_heads} * config.head_dim;
  residual_.resize(n * hidden);
  normed_.resize(n * hidden);
  qkv_.resize(n * (q_width + 2 * kv_width));
  q_.resize(n * q_width);
  k_.resize(n * kv_width);
  v_.resize(n * kv_width);
  attn_.resize(n * q_width);
  proj_.resize(n * hidden);
  gate_up_.resize(n * 2 * config.intermediate_size);
  act_.resize(n * config.intermediate_size);
  last_.resize(int64_t{max_num_sequences} * hidden);
  last_rows_.reserve(max_num_sequences);
}

Tensor Model::View(std::vector<float>& buffer, int64_t rows, int64_t cols) {
  CHECK(rows * cols <= static_cast<int64_t>(buffer.size()));
  return Tensor(buffer.data(), DType::kF32, {rows, cols});
}

void Model::Forward(const ForwardBatch& batch, KvCache* kv_cache, float* logits) {
  const int64_t n = static_cast<int64_t>(batch.token_ids.size());
  const int64_t num_seqs = static_cast<int64_t>(batch.sequences.size());
  CHECK(n > 0 && n <= max_num_tokens_);
  CHECK(num_seqs > 0 && num_seqs <= max_num_sequences_);
  CHECK(static_cast<int64_t>(batch.positions.size()) == n &&
        static_cast<int64_t>(batch.slots.size()) == n);
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size;
  const int64_t q_width = int64_t{c.num_heads} * c.head_dim;
  const int64_t kv_width = int64_t{c.num_kv_heads} * c.head_dim;
  const AttentionParams attention{c.num_heads, c.num_kv_heads, c.head_dim, kv_cache->block_size(),
                                  1.0f / std::sqrt(static_cast<float>(c.head_dim))};

  Tensor residual = View(residual_, n, hidden);
  Tensor normed = View(normed_, n, hidden);
  Tensor qkv = View(qkv_, n, q_width + 2 * kv_width);
  Tensor q = View(q_, n, q_width);
  Tensor k = View(k_, n, kv_width);
  Tensor v = View(v_, n, kv_width);
  Tensor q_heads(q_.data(), DType::kF32, {n, c.num_heads, c.head_dim});
  Tensor k_heads(k_.data(), DType::kF32, {n, c.num_kv_heads, c.head_dim});
  Tensor attn = View(attn_, n, q_width);
  Tensor attn_heads(attn_.data(), DType::kF32, {n, c.num_heads, c.head_dim});
  Tensor proj = View(proj_, n, hidden);
  Tensor gate_up = View(gate_up_, n, 2 * int64_t{c.intermediate_size});
  Tensor act = View(act_, n, c.intermediate_size);

  backend_->Embedding(weights_.embedding, batch.token_ids, residual);
  backend_->RmsNorm(residual, weights_.layers[0].attn_norm, c.rms_norm_eps, normed);
  for (int32_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& w = weights_.layers[l];
    // Attention block: normed holds RmsNorm(residual) with this layer's attn_norm.
    backend_->Linear(normed, w.qkv, qkv);
    Tensor parts[] = {q, k, v};
    backend_->SplitColumns(qkv, parts);
    backend_->Rope(q_heads, k_heads, batch.positions, inv_freq_, RopeLayout::kHalf);
    backend_->WriteKv(k, v, batch.slots, kv_cache->k(l), kv_cache->v(l));
    backend_->PagedAttention(q_heads, kv_cache->k(l), kv_cache->v(l), batch.sequences, attention,
                             attn_heads);
    backend_->Linear(attn, w.o_proj, proj);
    backend_->AddRmsNorm(proj, residual, w.ffn_norm, c.rms_norm_eps, normed);

    // MLP block: SwiGLU.
    backend_->Linear(normed, w.gate_up, gate_up);
    backend_->SiluAndMul(gate_up, act);
    backend_->Linear(act, w.down_proj, proj);
    const Tensor& next_norm =
        l + 1 < c.num_layers ? weights_.layers[l + 1].attn_norm : weights_.final_norm;
    backend_->AddRmsNorm(proj, residual, next_norm, c.rms_norm_eps, normed);
  }

  // Only each sequence's last token needs logits.
  last_rows_.clear();
  for (const BatchSequence& seq : batch.sequences) {
    last_rows_.push_back(seq.token_begin + seq.num_tokens - 1);
  }
  Tensor last = View(last_, num_seqs, hidden);
  backend_->GatherRows(normed, last_rows_, last);
  backend_->Linear(last, weights_.lm_head, Tensor(logits, DType::kF32, {num_seqs, c.vocab_size}));
}

}  // namespace moeserve
