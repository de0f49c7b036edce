// The op interface the model's forward pass is written against. The CPU backend
// implements it on kernels/cpu; the CUDA backend will implement the same list on
// kernels/cuda. Tensors passed in are views on the backend's device; shapes are
// checked by the backend. Ops run in order on the calling (engine) thread.
#ifndef MOESERVE_ENGINE_BACKEND_H_
#define MOESERVE_ENGINE_BACKEND_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/types/span.h"
#include "common/tensor.h"

namespace moeserve {

enum class RopeLayout { kHalf, kAdjacent };  // see kernels/cpu/rope.h

// One sequence of a forward batch; its tokens are rows [token_begin, token_begin +
// num_tokens) of the batch and are the last num_tokens of its context_len positions.
struct BatchSequence {
  int32_t token_begin = 0;
  int32_t num_tokens = 0;
  int32_t context_len = 0;
  const int32_t* block_table = nullptr;  // [ceil(context_len / block_size)] physical blocks
};

// How Route turns a MoE layer's router logits [n, num_experts] into k (expert, weight)
// pairs per token (DESIGN.md section 2). Ties in top-k go to the lower expert index.
enum class RouterMath {
  // weights = softmax over all experts in f32, the k largest kept, renormalised to sum to
  // 1 iff `renormalize` (Mixtral, upcycled Llama, Qwen2-MoE, DeepSeek-MoE, OLMoE).
  kSoftmaxTopK,
  // LLaMA-MoE with gate_use_softmax: the k largest logits, weights = softmax over those k.
  kTopKSoftmax,
  // LLaMA-MoE without gate_use_softmax: the k largest logits are the weights.
  kTopKLogits,
};

struct RouterParams {
  RouterMath math = RouterMath::kSoftmaxTopK;
  int32_t top_k = 0;
  bool renormalize = false;  // kSoftmaxTopK only
};

struct AttentionParams {
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;
  float scale = 0.0f;
};

// Memory on a backend's device, released when destroyed.
class BackendBuffer {
 public:
  virtual ~BackendBuffer() = default;
  virtual void* data() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // Uninitialised memory of `bytes` (> 0) on this backend's device, for weights,
  // workspaces and the KV cache; allocated before serving, never in the step loop.
  virtual std::unique_ptr<BackendBuffer> Allocate(int64_t bytes) = 0;

  // Copies host memory of dst.num_bytes() bytes into dst (on this backend's device).
  virtual void CopyFromHost(const void* src, Tensor dst) = 0;

  // out[i] = table[ids[i]]. table: [vocab, hidden]; out: [n, hidden].
  virtual void Embedding(const Tensor& table, absl::Span<const int32_t> ids, Tensor out) = 0;

  // out = RmsNorm(x) * weight, rows of x: [n, dim]; weight: [dim].
  virtual void RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor out) = 0;

  // residual += x; out = RmsNorm(residual) * weight. x, residual, out: [n, dim].
  virtual void AddRmsNorm(const Tensor& x, Tensor residual, const Tensor& weight, float eps,
                          Tensor out) = 0;

  // y = x · wᵀ (+ y when accumulate). x: [m, k]; w: [n, k]; y: [m, n].
  virtual void Linear(const Tensor& x, const Tensor& w, Tensor y, bool accumulate = false) = 0;

  // Rotates q and k in place. q: [n, num_heads, head_dim]; k: [n, num_kv_heads, head_dim];
  // positions: [n]; inv_freq: [rotary_dim / 2].
  virtual void Rope(Tensor q, Tensor k, absl::Span<const int32_t> positions,
                    const std::vector<float>& inv_freq, RopeLayout layout) = 0;

  // Writes k, v [n, num_kv_heads, head_dim] into the caches at slots [n].
  virtual void WriteKv(const Tensor& k, const Tensor& v, absl::Span<const int32_t> slots,
                       Tensor k_cache, Tensor v_cache) = 0;

  // Causal paged attention. q, out: [n, num_heads, head_dim];
  // caches: [num_blocks, block_size, num_kv_heads, head_dim].
  virtual void PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                              absl::Span<const BatchSequence> sequences,
                              const AttentionParams& params, Tensor out) = 0;

  // out = silu(gate) * up; gate_up: [n, 2 * dim] (gate | up); out: [n, dim].
  virtual void SiluAndMul(const Tensor& gate_up, Tensor out) = 0;

  // Splits the columns of src [n, sum of widths] into parts [n, width_i], in order.
  virtual void SplitColumns(const Tensor& src, absl::Span<Tensor> parts) = 0;

  // Copies rows `rows` of src [n, dim] to dst [rows.size(), dim].
  virtual void GatherRows(const Tensor& src, absl::Span<const int32_t> rows, Tensor dst) = 0;

  // y[r] += bias for every row r. y: [n, dim]; bias: [dim].
  virtual void AddBias(Tensor y, const Tensor& bias) = 0;

  // x = tanh(x), elementwise, in place.
  virtual void Tanh(Tensor x) = 0;

  // x[r] *= sigmoid(gate[r]) for every row r. x: [n, dim]; gate: [n, 1].
  virtual void ScaleRowsBySigmoid(Tensor x, const Tensor& gate) = 0;

  // --- The MoE layer: Route -> MoePermute -> grouped GEMMs -> MoeUnpermute. ---

  // logits: [n, num_experts] f32; topk_ids: [n, k] i32; topk_weights: [n, k] f32, pair j of
  // token t in order of decreasing score.
  virtual void Route(const Tensor& logits, const RouterParams& params, Tensor topk_ids,
                     Tensor topk_weights) = 0;

  // Groups the n * k (token, choice) pairs by expert, stably (token order within an
  // expert). x: [n, dim]; topk_ids: [n, k] i32; expert_offsets: [num_experts + 1] i32,
  // expert e owning rows [offsets[e], offsets[e + 1]) of permuted (their differences are the
  // per-expert token counts the metrics export); pair_rows: [n * k] i32, the permuted row
  // of pair (t, j) at t * k + j; permuted: [n * k, dim], row pair_rows[t * k + j] = x[t].
  virtual void MoePermute(const Tensor& x, const Tensor& topk_ids, Tensor expert_offsets,
                          Tensor pair_rows, Tensor permuted) = 0;

  // For the rows r of each expert e: act[r] = silu(x[r] · gate_eᵀ) * (x[r] · up_eᵀ).
  // x: [rows, dim]; w_gate_up: [num_experts, 2 * inter, dim], each expert's gate rows then
  // its up rows; expert_offsets: [num_experts + 1] i32 with offsets[E] == rows;
  // act: [rows, inter].
  virtual void GroupedGateUpSilu(const Tensor& x, const Tensor& w_gate_up,
                                 const Tensor& expert_offsets, Tensor act) = 0;

  // For the rows r of each expert e: y[r] = x[r] · w_eᵀ. x: [rows, k_dim];
  // w: [num_experts, n_dim, k_dim]; y: [rows, n_dim].
  virtual void GroupedLinear(const Tensor& x, const Tensor& w, const Tensor& expert_offsets,
                             Tensor y) = 0;

  // out[t] = (accumulate ? out[t] : 0) + scale * sum over j = 0..k-1, in order, of
  // topk_weights[t, j] * y[pair_rows[t * k + j]]. y: [n * k, dim]; out: [n, dim];
  // topk_weights: [n, k], or an empty Tensor for weights of 1 (LLaMA-MoE without
  // multiply_gate_scores).
  virtual void MoeUnpermute(const Tensor& y, const Tensor& pair_rows, const Tensor& topk_weights,
                            float scale, Tensor out, bool accumulate) = 0;

  // Copies src (on this backend's device) into host memory of src.num_bytes() bytes.
  virtual void CopyToHost(const Tensor& src, void* dst) = 0;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_BACKEND_H_
