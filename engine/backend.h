// The op interface the model's forward pass is written against. The CPU backend
// implements it on kernels/cpu; the CUDA backend will implement the same list on
// kernels/cuda. Tensors passed in are views on the backend's device; shapes are
// checked by the backend. Ops run in order on the calling (engine) thread.
#ifndef MOESERVE_ENGINE_BACKEND_H_
#define MOESERVE_ENGINE_BACKEND_H_

#include <cstdint>
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

struct AttentionParams {
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;
  float scale = 0.0f;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

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
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_BACKEND_H_
