#include "engine/cpu_backend.h"

#include <cstring>

#include "common/logging.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"

namespace moeserve {
namespace {

void CheckF32(const Tensor& t) { CHECK(t.dtype() == DType::kF32 && t.device() == Device::kCpu); }

}  // namespace

CpuBackend::CpuBackend(int num_threads) {
  const int threads = num_threads > 0 ? num_threads : ThreadPool::DefaultNumThreads();
  pool_ = std::make_unique<ThreadPool>(threads);
  cpu::UseSingleThreadedBlas();
}

void CpuBackend::Embedding(const Tensor& table, absl::Span<const int32_t> ids, Tensor out) {
  CheckF32(table);
  CheckF32(out);
  const int64_t hidden = table.row_size();
  CHECK(out.row_size() == hidden && out.num_rows() == static_cast<int64_t>(ids.size()));
  for (size_t i = 0; i < ids.size(); ++i) {
    CHECK(ids[i] >= 0 && ids[i] < table.num_rows());
    std::memcpy(out.data_as<float>() + i * hidden, table.data_as<float>() + ids[i] * hidden,
                hidden * sizeof(float));
  }
}

void CpuBackend::RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor out) {
  CHECK(x.row_size() == weight.num_elements() && out.num_elements() == x.num_elements());
  cpu::RmsNorm(x.data_as<float>(), weight.data_as<float>(), eps, x.num_rows(), x.row_size(),
               out.data_as<float>());
}

void CpuBackend::AddRmsNorm(const Tensor& x, Tensor residual, const Tensor& weight, float eps,
                            Tensor out) {
  CHECK(x.num_elements() == residual.num_elements() &&
        out.num_elements() == x.num_elements() && x.row_size() == weight.num_elements());
  cpu::AddRmsNorm(x.data_as<float>(), residual.data_as<float>(), weight.data_as<float>(), eps,
                  x.num_rows(), x.row_size(), out.data_as<float>());
}

void CpuBackend::Linear(const Tensor& x, const Tensor& w, Tensor y, bool accumulate) {
  CheckF32(x);
  CheckF32(w);
  CheckF32(y);
  const int64_t m = x.num_rows(), k = x.row_size(), n = w.num_rows();
  CHECK(w.row_size() == k && y.num_rows() == m && y.row_size() == n);
  cpu::Gemm(x.data_as<float>(), w.data_as<float>(), y.data_as<float>(), m, n, k,
            accumulate ? 1.0f : 0.0f, pool_.get());
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
  cpu::PagedAttention(q.data_as<float>(), k_cache.data_as<float>(), v_cache.data_as<float>(),
                      seqs, shape, out.data_as<float>(), pool_.get());
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

}  // namespace moeserve
