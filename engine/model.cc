#include "engine/model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/logging.h"
#include "kernels/cpu/rope.h"

namespace moeserve {
namespace {

// The widest MLP any layer runs on all tokens: the dense MLP, or the shared experts.
int64_t WidestDenseMlp(const ModelConfig& c) {
  return std::max<int64_t>(c.intermediate_size, c.moe.shared_expert_intermediate_size);
}

int64_t WidestExpert(const ModelConfig& c) {
  int64_t widest = 0;
  for (const std::vector<int32_t>& sizes : c.moe.expert_intermediate_sizes) {
    for (int32_t size : sizes) widest = std::max<int64_t>(widest, size);
  }
  return widest;
}

RouterParams RouterParamsOf(const MoeConfig& m) {
  RouterParams params;
  params.top_k = m.top_k;
  params.renormalize = m.norm_topk_prob;
  if (m.router == RouterKind::kSoftmaxTopK) {
    params.math = RouterMath::kSoftmaxTopK;
  } else {
    params.math = m.gate_use_softmax ? RouterMath::kTopKSoftmax : RouterMath::kTopKLogits;
  }
  return params;
}

}  // namespace

Model::Model(const ModelConfig& config, ModelWeights weights, Backend* backend,
             int32_t max_num_tokens, int32_t max_num_sequences)
    : config_(config),
      weights_(std::move(weights)),
      backend_(backend),
      // The CPU computes in f32 whatever the weights; other backends in the weights' dtype.
      act_dtype_(backend->device() == Device::kCpu ? DType::kF32 : weights_.embedding.dtype()),
      max_num_tokens_(max_num_tokens),
      max_num_sequences_(max_num_sequences),
      inv_freq_(
          cpu::RopeInvFrequencies(config.rope_theta, config.rotary_dim, config.rope_scaling)) {
  CHECK(weights_.embedding.device() == backend->device());
  const int64_t n = max_num_tokens;
  const int64_t hidden = config.hidden_size;
  const int64_t q_width = int64_t{config.num_heads} * config.head_dim;
  const int64_t kv_width = int64_t{config.num_kv_heads} * config.head_dim;
  const DType a = act_dtype_;
  residual_ = Allocate(a, n * hidden);
  normed_ = Allocate(a, n * hidden);
  qkv_ = Allocate(a, n * (q_width + 2 * kv_width));
  q_ = Allocate(a, n * q_width);
  k_ = Allocate(a, n * kv_width);
  v_ = Allocate(a, n * kv_width);
  attn_ = Allocate(a, n * q_width);
  proj_ = Allocate(a, n * hidden);
  gate_up_ = Allocate(a, n * 2 * WidestDenseMlp(config));
  act_ = Allocate(a, n * WidestDenseMlp(config));
  last_ = Allocate(a, int64_t{max_num_sequences} * hidden);
  if (backend->device() != Device::kCpu) {
    logits_ = Allocate(DType::kF32, int64_t{max_num_sequences} * config.vocab_size);
  }
  last_rows_.reserve(max_num_sequences);
  const MoeConfig& m = config.moe;
  if (m.num_experts > 0) {
    const int64_t pairs = n * m.top_k;
    router_hidden_ = Allocate(a, n * m.num_experts);
    router_logits_ = Allocate(DType::kF32, n * m.num_experts);
    topk_ids_ = Allocate(DType::kI32, pairs);
    topk_weights_ = Allocate(DType::kF32, pairs);
    offsets_ = Allocate(DType::kI32, int64_t{config.num_layers} * (m.num_experts + 1));
    pair_rows_ = Allocate(DType::kI32, pairs);
    permuted_ = Allocate(a, pairs * hidden);
    expert_act_ = Allocate(a, pairs * WidestExpert(config));
    expert_out_ = Allocate(a, pairs * hidden);
    shared_gate_ = Allocate(a, n);
    offsets_host_.resize(int64_t{config.num_layers} * (m.num_experts + 1));
    expert_counts_.assign(int64_t{config.num_layers} * m.num_experts, 0);
  }
}

Model::Buffer Model::Allocate(DType dtype, int64_t elements) {
  Buffer buffer;
  buffer.dtype = dtype;
  buffer.elements = elements;
  buffer.memory = backend_->Allocate(std::max<int64_t>(1, elements) * DTypeRowBytes(dtype, 1));
  return buffer;
}

Tensor Model::View(const Buffer& buffer, int64_t rows, int64_t cols) const {
  CHECK(rows * cols <= buffer.elements);
  return Tensor(buffer.memory->data(), buffer.dtype, {rows, cols}, backend_->device());
}

void Model::DenseMlp(const Tensor& x, const Tensor& gate_up, const Tensor& down, Tensor out) {
  const int64_t n = x.num_rows();
  const int64_t inter = down.row_size();
  Tensor gate_up_out = View(gate_up_, n, 2 * inter);
  Tensor act = View(act_, n, inter);
  backend_->Linear(x, gate_up, gate_up_out);
  backend_->SiluAndMul(gate_up_out, act);
  backend_->Linear(act, down, out);
}

void Model::MoeMlp(int32_t layer, const Tensor& normed, Tensor out) {
  const MoeConfig& m = config_.moe;
  const MoeLayerWeights& w = weights_.layers[layer].moe;
  const int64_t n = normed.num_rows();
  const int64_t hidden = config_.hidden_size;
  const int64_t experts = m.num_experts;
  const int64_t pairs = n * m.top_k;
  const int64_t inter = w.experts_down.row_size();

  // Route: router logits (f32), then k (expert, weight) pairs per token.
  Tensor logits = View(router_logits_, n, experts);
  if (w.router_out.data() != nullptr) {
    // LLaMA-MoE's gate network: W2 · tanh(W1 · x).
    Tensor hidden_e = View(router_hidden_, n, experts);
    backend_->Linear(normed, w.router, hidden_e);
    backend_->Tanh(hidden_e);
    backend_->Linear(hidden_e, w.router_out, logits);
  } else {
    backend_->Linear(normed, w.router, logits);
  }
  Tensor ids = View(topk_ids_, n, m.top_k);
  Tensor weights = View(topk_weights_, n, m.top_k);
  backend_->Route(logits, RouterParamsOf(m), ids, weights);

  // Permute, the experts' grouped GEMMs, and back. Each layer keeps its offsets row, so
  // the per-expert counts of the whole step come back in one copy.
  Tensor offsets(static_cast<int32_t*>(offsets_.memory->data()) + layer * (experts + 1),
                 DType::kI32, {experts + 1}, backend_->device());
  Tensor pair_rows = View(pair_rows_, 1, pairs);
  Tensor permuted = View(permuted_, pairs, hidden);
  backend_->MoePermute(normed, ids, offsets, pair_rows, permuted);
  Tensor act = View(expert_act_, pairs, inter);
  Tensor expert_out = View(expert_out_, pairs, hidden);
  backend_->GroupedGateUpSilu(permuted, w.experts_gate_up, offsets, act);
  backend_->GroupedLinear(act, w.experts_down, offsets, expert_out);

  // Shared experts first (gated for Qwen2-MoE), then the weighted routed outputs on top.
  const bool shared = w.shared_down.data() != nullptr;
  if (shared) {
    DenseMlp(normed, w.shared_gate_up, w.shared_down, out);
    if (w.shared_gate.data() != nullptr) {
      Tensor gate = View(shared_gate_, n, 1);
      backend_->Linear(normed, w.shared_gate, gate);
      backend_->ScaleRowsBySigmoid(out, gate);
    }
  }
  // LLaMA-MoE without multiply_gate_scores sums the expert outputs unweighted, unscaled.
  const bool weighted = m.multiply_gate_scores;
  backend_->MoeUnpermute(expert_out, pair_rows, weighted ? weights : Tensor(),
                         weighted ? config_.ScoreScaleFactor(layer) : 1.0f, out, shared);
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
  const Device device = backend_->device();
  Tensor q_heads(q_.memory->data(), act_dtype_, {n, c.num_heads, c.head_dim}, device);
  Tensor k_heads(k_.memory->data(), act_dtype_, {n, c.num_kv_heads, c.head_dim}, device);
  Tensor attn = View(attn_, n, q_width);
  Tensor attn_heads(attn_.memory->data(), act_dtype_, {n, c.num_heads, c.head_dim}, device);
  Tensor proj = View(proj_, n, hidden);

  backend_->Embedding(weights_.embedding, batch.token_ids, residual);
  backend_->RmsNorm(residual, weights_.layers[0].attn_norm, c.rms_norm_eps, normed);
  for (int32_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& w = weights_.layers[l];
    // Attention block: normed holds RmsNorm(residual) with this layer's attn_norm.
    backend_->Linear(normed, w.qkv, qkv);
    if (w.qkv_bias.data() != nullptr) backend_->AddBias(qkv, w.qkv_bias);
    Tensor parts[] = {q, k, v};
    backend_->SplitColumns(qkv, parts);
    if (w.q_norm.data() != nullptr) {
      // OLMoE: RMSNorm over the whole q and k projections, in place.
      backend_->RmsNorm(q, w.q_norm, c.rms_norm_eps, q);
      backend_->RmsNorm(k, w.k_norm, c.rms_norm_eps, k);
    }
    backend_->Rope(q_heads, k_heads, batch.positions, inv_freq_, RopeLayout::kHalf);
    backend_->WriteKv(k, v, batch.slots, kv_cache->k(l), kv_cache->v(l));
    backend_->PagedAttention(q_heads, kv_cache->k(l), kv_cache->v(l), batch.sequences, attention,
                             attn_heads);
    backend_->Linear(attn, w.o_proj, proj);
    if (w.o_bias.data() != nullptr) backend_->AddBias(proj, w.o_bias);
    backend_->AddRmsNorm(proj, residual, w.ffn_norm, c.rms_norm_eps, normed);

    // MLP block: SwiGLU, or the MoE layer.
    if (c.IsMoeLayer(l)) {
      MoeMlp(l, normed, proj);
    } else {
      DenseMlp(normed, w.gate_up, w.down_proj, proj);
    }
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
  if (device == Device::kCpu) {
    backend_->Linear(last, weights_.lm_head, Tensor(logits, DType::kF32, {num_seqs, c.vocab_size}));
  } else {
    Tensor device_logits = View(logits_, num_seqs, c.vocab_size);
    backend_->Linear(last, weights_.lm_head, device_logits);
    backend_->CopyToHost(device_logits, logits);
  }

  // The per-expert counts of every layer: one small copy per step.
  if (c.moe.num_experts > 0) {
    const int64_t experts = c.moe.num_experts;
    backend_->CopyToHost(View(offsets_, c.num_layers, experts + 1), offsets_host_.data());
    for (int32_t l = 0; l < c.num_layers; ++l) {
      const int32_t* row = offsets_host_.data() + l * (experts + 1);
      for (int64_t e = 0; e < experts; ++e) {
        expert_counts_[l * experts + e] = c.IsMoeLayer(l) ? row[e + 1] - row[e] : 0;
      }
    }
  }
}

}  // namespace moeserve
