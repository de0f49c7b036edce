#include "engine/cpu_backend.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/logging.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/moe.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"

namespace moeserve {
namespace {

void CheckF32(const Tensor& t) { CHECK(t.dtype() == DType::kF32 && t.device() == Device::kCpu); }
// Weights may be f32 or bf16 (widened as the kernels read them); activations are f32.
void CheckWeight(const Tensor& t) {
  CHECK((t.dtype() == DType::kF32 || t.dtype() == DType::kBF16) && t.device() == Device::kCpu);
}
void CheckI32(const Tensor& t) { CHECK(t.dtype() == DType::kI32 && t.device() == Device::kCpu); }

cpu::RouterMathKind ToKernel(RouterMath math) {
  switch (math) {
    case RouterMath::kSoftmaxTopK:
      return cpu::RouterMathKind::kSoftmaxTopK;
    case RouterMath::kTopKSoftmax:
      return cpu::RouterMathKind::kTopKSoftmax;
    case RouterMath::kTopKLogits:
      return cpu::RouterMathKind::kTopKLogits;
  }
  CheckFailed(__FILE__, __LINE__, "known RouterMath", "");
}

// 64-byte aligned host memory: whole cache lines, and aligned for any SIMD width.
class HostBuffer : public BackendBuffer {
 public:
  explicit HostBuffer(int64_t bytes)
      : data_(static_cast<char*>(
            std::aligned_alloc(64, static_cast<size_t>((bytes + 63) / 64 * 64)))) {
    CHECK(data_ != nullptr);
  }
  ~HostBuffer() override { std::free(data_); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  void* data() const override { return data_; }

 private:
  char* const data_;
};

}  // namespace

std::unique_ptr<BackendBuffer> CpuBackend::Allocate(int64_t bytes) {
  CHECK(bytes > 0);
  return std::make_unique<HostBuffer>(bytes);
}

void CpuBackend::CopyFromHost(const void* src, Tensor dst) {
  CHECK(dst.device() == Device::kCpu);
  std::memcpy(dst.data(), src, dst.num_bytes());
}

CpuBackend::CpuBackend(int num_threads) {
  const int threads = num_threads > 0 ? num_threads : ThreadPool::DefaultNumThreads();
  pool_ = std::make_unique<ThreadPool>(threads);
  cpu::UseSingleThreadedBlas();
}

void CpuBackend::Embedding(const Tensor& table, absl::Span<const int32_t> ids, Tensor out) {
  CheckWeight(table);
  CheckF32(out);
  const int64_t hidden = table.row_size();
  CHECK(out.row_size() == hidden && out.num_rows() == static_cast<int64_t>(ids.size()));
  for (size_t i = 0; i < ids.size(); ++i) {
    CHECK(ids[i] >= 0 && ids[i] < table.num_rows());
    float* row = out.data_as<float>() + i * hidden;
    if (table.dtype() == DType::kF32) {
      std::memcpy(row, table.data_as<float>() + ids[i] * hidden, hidden * sizeof(float));
    } else {
      const uint16_t* from = table.data_as<uint16_t>() + ids[i] * hidden;
      for (int64_t j = 0; j < hidden; ++j) row[j] = BF16ToF32(from[j]);
    }
  }
}

void CpuBackend::RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor out) {
  CHECK(x.row_size() == weight.num_elements() && out.num_elements() == x.num_elements());
  cpu::RmsNorm(x.data_as<float>(), weight.data_as<float>(), eps, x.num_rows(), x.row_size(),
               out.data_as<float>());
}

void CpuBackend::AddRmsNorm(const Tensor& x, Tensor residual, const Tensor& weight, float eps,
                            Tensor out) {
  CHECK(x.num_elements() == residual.num_elements() && out.num_elements() == x.num_elements() &&
        x.row_size() == weight.num_elements());
  cpu::AddRmsNorm(x.data_as<float>(), residual.data_as<float>(), weight.data_as<float>(), eps,
                  x.num_rows(), x.row_size(), out.data_as<float>());
}

void CpuBackend::Linear(const Tensor& x, const Tensor& w, Tensor y, bool accumulate) {
  CheckF32(x);
  CheckWeight(w);
  CheckF32(y);
  const int64_t m = x.num_rows(), k = x.row_size(), n = w.num_rows();
  CHECK(w.row_size() == k && y.num_rows() == m && y.row_size() == n);
  const float beta = accumulate ? 1.0f : 0.0f;
  if (w.dtype() == DType::kBF16) {
    cpu::GemmBf16(x.data_as<float>(), w.data_as<uint16_t>(), y.data_as<float>(), m, n, k, beta,
                  pool_.get());
    return;
  }
  cpu::Gemm(x.data_as<float>(), w.data_as<float>(), y.data_as<float>(), m, n, k, beta,
            pool_.get());
}

void CpuBackend::Rope(Tensor q, Tensor k, absl::Span<const int32_t> positions,
                      const std::vector<float>& inv_freq, RopeLayout layout) {
  const int64_t n = static_cast<int64_t>(positions.size());
  CHECK(q.ndim() == 3 && k.ndim() == 3 && q.dim(0) == n && k.dim(0) == n);
  const cpu::RopeStyle style =
      layout == RopeLayout::kHalf ? cpu::RopeStyle::kHalf : cpu::RopeStyle::kAdjacent;
  cpu::ApplyRope(q.data_as<float>(), positions.data(), n, q.dim(1), q.dim(2), inv_freq, style);
  cpu::ApplyRope(k.data_as<float>(), positions.data(), n, k.dim(1), k.dim(2), inv_freq, style);
}

void CpuBackend::WriteKv(const Tensor& k, const Tensor& v, absl::Span<const int32_t> slots,
                         Tensor k_cache, Tensor v_cache) {
  const int64_t width = k.num_elements() / static_cast<int64_t>(slots.size());
  CHECK(v.num_elements() == k.num_elements());
  const int64_t cache_slots = k_cache.num_elements() / width;
  for (int32_t slot : slots) CHECK(slot >= 0 && slot < cache_slots);
  cpu::WriteKv(k.data_as<float>(), v.data_as<float>(), slots.data(),
               static_cast<int64_t>(slots.size()), width, k_cache.data_as<float>(),
               v_cache.data_as<float>());
}

void CpuBackend::PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                absl::Span<const BatchSequence> sequences,
                                const AttentionParams& params, Tensor out) {
  std::vector<cpu::AttentionSequence> seqs;
  seqs.reserve(sequences.size());
  for (const BatchSequence& s : sequences) {
    seqs.push_back({s.token_begin, s.num_tokens, s.context_len, s.block_table});
  }
  const cpu::AttentionShape shape{params.num_heads, params.num_kv_heads, params.head_dim,
                                  params.block_size, params.scale};
  cpu::PagedAttention(q.data_as<float>(), k_cache.data_as<float>(), v_cache.data_as<float>(), seqs,
                      shape, out.data_as<float>(), pool_.get());
}

void CpuBackend::SiluAndMul(const Tensor& gate_up, Tensor out) {
  CHECK(gate_up.row_size() == 2 * out.row_size() && gate_up.num_rows() == out.num_rows());
  const int64_t rows = out.num_rows(), dim = out.row_size();
  pool_->ParallelFor(rows, 1, [&](int64_t begin, int64_t end) {
    cpu::SiluAndMul(gate_up.data_as<float>() + begin * 2 * dim, end - begin, dim,
                    out.data_as<float>() + begin * dim);
  });
}

void CpuBackend::SplitColumns(const Tensor& src, absl::Span<Tensor> parts) {
  const int64_t rows = src.num_rows(), width = src.row_size();
  int64_t total = 0;
  for (const Tensor& part : parts) {
    CHECK(part.num_rows() == rows);
    total += part.row_size();
  }
  CHECK(total == width);
  for (int64_t r = 0; r < rows; ++r) {
    const float* from = src.data_as<float>() + r * width;
    for (Tensor& part : parts) {
      const int64_t w = part.row_size();
      std::memcpy(part.data_as<float>() + r * w, from, w * sizeof(float));
      from += w;
    }
  }
}

void CpuBackend::GatherRows(const Tensor& src, absl::Span<const int32_t> rows, Tensor dst) {
  const int64_t dim = src.row_size();
  CHECK(dst.row_size() == dim && dst.num_rows() == static_cast<int64_t>(rows.size()));
  for (size_t i = 0; i < rows.size(); ++i) {
    CHECK(rows[i] >= 0 && rows[i] < src.num_rows());
    std::memcpy(dst.data_as<float>() + i * dim, src.data_as<float>() + rows[i] * dim,
                dim * sizeof(float));
  }
}

void CpuBackend::AddBias(Tensor y, const Tensor& bias) {
  CheckF32(y);
  CheckF32(bias);
  const int64_t dim = y.row_size();
  CHECK(bias.num_elements() == dim);
  const float* b = bias.data_as<float>();
  for (int64_t r = 0; r < y.num_rows(); ++r) {
    float* row = y.data_as<float>() + r * dim;
    for (int64_t i = 0; i < dim; ++i) row[i] += b[i];
  }
}

void CpuBackend::Tanh(Tensor x) {
  CheckF32(x);
  float* data = x.data_as<float>();
  for (int64_t i = 0; i < x.num_elements(); ++i) data[i] = std::tanh(data[i]);
}

void CpuBackend::ScaleRowsBySigmoid(Tensor x, const Tensor& gate) {
  CheckF32(x);
  CheckF32(gate);
  CHECK(gate.num_elements() == x.num_rows());
  const int64_t dim = x.row_size();
  for (int64_t r = 0; r < x.num_rows(); ++r) {
    const float s = 1.0f / (1.0f + std::exp(-gate.data_as<float>()[r]));
    float* row = x.data_as<float>() + r * dim;
    for (int64_t i = 0; i < dim; ++i) row[i] *= s;
  }
}

void CpuBackend::Route(const Tensor& logits, const RouterParams& params, Tensor topk_ids,
                       Tensor topk_weights) {
  CheckF32(logits);
  CheckI32(topk_ids);
  CheckF32(topk_weights);
  const int64_t n = logits.num_rows();
  CHECK(topk_ids.num_rows() == n && topk_ids.row_size() == params.top_k &&
        topk_weights.num_elements() == topk_ids.num_elements());
  const cpu::RouterSpec spec{ToKernel(params.math), static_cast<int32_t>(logits.row_size()),
                             params.top_k, params.renormalize};
  cpu::RouteTopK(logits.data_as<float>(), n, spec, topk_ids.data_as<int32_t>(),
                 topk_weights.data_as<float>());
}

void CpuBackend::MoePermute(const Tensor& x, const Tensor& topk_ids, Tensor expert_offsets,
                            Tensor pair_rows, Tensor permuted) {
  CheckF32(x);
  CheckI32(topk_ids);
  CheckI32(expert_offsets);
  CheckI32(pair_rows);
  CheckF32(permuted);
  const int64_t pairs = topk_ids.num_elements();
  const int64_t dim = x.row_size();
  CHECK(topk_ids.num_rows() == x.num_rows() && pair_rows.num_elements() == pairs &&
        permuted.num_rows() == pairs && permuted.row_size() == dim);
  const int32_t k = static_cast<int32_t>(topk_ids.row_size());
  row_pairs_.resize(pairs);
  cpu::GroupByExpert(
      topk_ids.data_as<int32_t>(), pairs, static_cast<int32_t>(expert_offsets.num_elements() - 1),
      expert_offsets.data_as<int32_t>(), pair_rows.data_as<int32_t>(), row_pairs_.data());
  for (int64_t row = 0; row < pairs; ++row) {
    std::memcpy(permuted.data_as<float>() + row * dim,
                x.data_as<float>() + int64_t{row_pairs_[row] / k} * dim, dim * sizeof(float));
  }
}

void CpuBackend::GroupedGateUpSilu(const Tensor& x, const Tensor& w_gate_up,
                                   const Tensor& expert_offsets, Tensor act) {
  CheckF32(x);
  CheckWeight(w_gate_up);
  CheckI32(expert_offsets);
  CheckF32(act);
  CHECK(w_gate_up.ndim() == 3);
  const int32_t experts = static_cast<int32_t>(w_gate_up.dim(0));
  const int64_t inter = w_gate_up.dim(1) / 2, dim = w_gate_up.dim(2);
  const int32_t* offsets = expert_offsets.data_as<int32_t>();
  CHECK(expert_offsets.num_elements() == experts + 1 && x.row_size() == dim &&
        act.row_size() == inter && offsets[experts] == x.num_rows() &&
        act.num_rows() == x.num_rows());
  const size_t needed = static_cast<size_t>(x.num_rows() * 2 * inter);
  if (gate_up_scratch_.size() < needed) gate_up_scratch_.resize(needed);
  if (w_gate_up.dtype() == DType::kBF16) {
    cpu::GroupedGateUpSilu(x.data_as<float>(), w_gate_up.data_as<uint16_t>(), offsets, experts,
                           dim, inter, gate_up_scratch_.data(), act.data_as<float>(), pool_.get());
  } else {
    cpu::GroupedGateUpSilu(x.data_as<float>(), w_gate_up.data_as<float>(), offsets, experts, dim,
                           inter, gate_up_scratch_.data(), act.data_as<float>(), pool_.get());
  }
}

void CpuBackend::GroupedLinear(const Tensor& x, const Tensor& w, const Tensor& expert_offsets,
                               Tensor y) {
  CheckF32(x);
  CheckWeight(w);
  CheckI32(expert_offsets);
  CheckF32(y);
  CHECK(w.ndim() == 3);
  const int32_t experts = static_cast<int32_t>(w.dim(0));
  const int64_t n_dim = w.dim(1), k_dim = w.dim(2);
  const int32_t* offsets = expert_offsets.data_as<int32_t>();
  CHECK(expert_offsets.num_elements() == experts + 1 && x.row_size() == k_dim &&
        y.row_size() == n_dim && offsets[experts] == x.num_rows() && y.num_rows() == x.num_rows());
  if (w.dtype() == DType::kBF16) {
    cpu::GroupedLinear(x.data_as<float>(), w.data_as<uint16_t>(), offsets, experts, k_dim, n_dim,
                       y.data_as<float>(), pool_.get());
  } else {
    cpu::GroupedLinear(x.data_as<float>(), w.data_as<float>(), offsets, experts, k_dim, n_dim,
                       y.data_as<float>(), pool_.get());
  }
}

void CpuBackend::MoeUnpermute(const Tensor& y, const Tensor& pair_rows, const Tensor& topk_weights,
                              float scale, Tensor out, bool accumulate) {
  CheckF32(y);
  CheckI32(pair_rows);
  CheckF32(out);
  const int64_t n = out.num_rows(), dim = out.row_size();
  CHECK(n > 0 && pair_rows.num_elements() % n == 0);
  const int32_t k = static_cast<int32_t>(pair_rows.num_elements() / n);
  const bool weighted = topk_weights.data() != nullptr;
  if (weighted) {
    CheckF32(topk_weights);
    CHECK(topk_weights.num_rows() == n && topk_weights.row_size() == k);
  }
  CHECK(y.num_rows() == n * k && y.row_size() == dim);
  for (int64_t p = 0; p < n * k; ++p) {
    CHECK(pair_rows.data_as<int32_t>()[p] >= 0 && pair_rows.data_as<int32_t>()[p] < n * k);
  }
  pool_->ParallelFor(n, 1, [&](int64_t begin, int64_t end) {
    cpu::MoeUnpermute(y.data_as<float>(), pair_rows.data_as<int32_t>() + begin * k,
                      weighted ? topk_weights.data_as<float>() + begin * k : nullptr, end - begin,
                      k, dim, scale, accumulate, out.data_as<float>() + begin * dim);
  });
}

void CpuBackend::CopyToHost(const Tensor& src, void* dst) {
  CHECK(src.device() == Device::kCpu);
  std::memcpy(dst, src.data(), src.num_bytes());
}

}  // namespace moeserve
