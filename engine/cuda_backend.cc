#include "engine/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>

#include "common/logging.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gather.h"
#include "kernels/cuda/grouped_gemm.h"
#include "kernels/cuda/kv_write.h"
#include "kernels/cuda/moe_permute.h"
#include "kernels/cuda/moe_route.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"

namespace moeserve {
namespace {

constexpr size_t kInitialStagingBytes = size_t{1} << 20;
constexpr size_t kStagingAlign = 256;

void CheckOnDevice(const Tensor& t) {
  CHECK_MSG(t.device() == Device::kCuda, "CudaBackend got a host tensor " + t.DebugString());
}

bool IsFloat(DType type) { return type == DType::kF32 || type == DType::kBF16; }

void CheckFloat(const Tensor& t) {
  CheckOnDevice(t);
  CHECK_MSG(IsFloat(t.dtype()), "CudaBackend needs f32 or bf16, got " + t.DebugString());
}

void CheckType(const Tensor& t, DType type) {
  CheckOnDevice(t);
  CHECK_MSG(t.dtype() == type, "CudaBackend: unexpected dtype of " + t.DebugString());
}

size_t AlignUp(size_t bytes) { return (bytes + kStagingAlign - 1) / kStagingAlign * kStagingAlign; }

cuda::RouteMath ToKernel(RouterMath math) {
  switch (math) {
    case RouterMath::kSoftmaxTopK:
      return cuda::RouteMath::kSoftmaxTopK;
    case RouterMath::kTopKSoftmax:
      return cuda::RouteMath::kTopKSoftmax;
    case RouterMath::kTopKLogits:
      return cuda::RouteMath::kTopKLogits;
  }
  CheckFailed(__FILE__, __LINE__, "known RouterMath", "");
}

}  // namespace

CudaBackend::CudaBackend(int device_index) : device_index_(device_index) {
  MOESERVE_CUDA_CHECK(cudaSetDevice(device_index_));
  MOESERVE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  MOESERVE_CUBLAS_CHECK(cublasCreate(&blas_));
  MOESERVE_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
  staging_ = cuda::DeviceBuffer(kInitialStagingBytes);
  int sm_count = 0;
  MOESERVE_CUDA_CHECK(
      cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device_index_));
  attention_target_blocks_ = 2 * int64_t{sm_count};
}

CudaBackend::~CudaBackend() {
  cudaStreamSynchronize(stream_);
  cublasDestroy(blas_);
  cudaStreamDestroy(stream_);
}

void CudaBackend::Synchronize() { MOESERVE_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void CudaBackend::BeginStaging(size_t bytes) {
  staging_used_ = 0;
  if (bytes <= staging_.size()) return;
  // Earlier ops may still read the old buffer: let them finish before it is freed.
  Synchronize();
  staging_ = cuda::DeviceBuffer(std::max(bytes, 2 * staging_.size()));
  MOESERVE_LOG_DEBUG("CudaBackend: staging buffer grown to {} bytes", staging_.size());
}

const void* CudaBackend::Stage(const void* host, size_t bytes) {
  CHECK(staging_used_ + bytes <= staging_.size());
  char* dst = static_cast<char*>(staging_.data()) + staging_used_;
  // From pageable memory the copy has consumed `host` when the call returns; on the stream
  // it lands after the ops that read this buffer's previous contents.
  if (bytes > 0) {
    MOESERVE_CUDA_CHECK(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream_));
  }
  staging_used_ += AlignUp(bytes);
  return dst;
}

void CudaBackend::Embedding(const Tensor& table, absl::Span<const int32_t> ids, Tensor out) {
  CheckFloat(table);
  CheckFloat(out);
  const int64_t hidden = table.row_size(), n = static_cast<int64_t>(ids.size());
  CHECK(out.row_size() == hidden && out.num_rows() == n);
  for (int32_t id : ids) CHECK(id >= 0 && id < table.num_rows());
  BeginStaging(AlignUp(n * sizeof(int32_t)));
  const auto* rows = static_cast<const int32_t*>(Stage(ids.data(), n * sizeof(int32_t)));
  cuda::GatherRows(table.data(), table.dtype(), rows, n, hidden, out.data(), out.dtype(), stream_);
}

void CudaBackend::RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor out) {
  CheckFloat(x);
  CheckFloat(weight);
  CheckType(out, x.dtype());
  CHECK(x.row_size() == weight.num_elements() && out.num_elements() == x.num_elements());
  cuda::RmsNorm({x.data(), nullptr, weight.data(), out.data(), x.dtype(), weight.dtype(),
                 x.num_rows(), x.row_size(), eps},
                stream_);
}

void CudaBackend::AddRmsNorm(const Tensor& x, Tensor residual, const Tensor& weight, float eps,
                             Tensor out) {
  CheckFloat(x);
  CheckFloat(weight);
  CheckType(residual, x.dtype());
  CheckType(out, x.dtype());
  CHECK(x.num_elements() == residual.num_elements() && out.num_elements() == x.num_elements() &&
        x.row_size() == weight.num_elements());
  cuda::RmsNorm({x.data(), residual.data(), weight.data(), out.data(), x.dtype(), weight.dtype(),
                 x.num_rows(), x.row_size(), eps},
                stream_);
}

void CudaBackend::Linear(const Tensor& x, const Tensor& w, Tensor y, bool accumulate) {
  CheckFloat(x);
  CheckType(w, x.dtype());
  CheckFloat(y);
  const int64_t m = x.num_rows(), k = x.row_size(), n = w.num_rows();
  CHECK(w.row_size() == k && y.num_rows() == m && y.row_size() == n);
  CHECK_MSG(!(x.dtype() == DType::kF32 && y.dtype() == DType::kBF16),
            "Linear: f32 inputs need an f32 output");
  cuda::Linear(blas_, {x.data(), w.data(), y.data(), x.dtype(), y.dtype(), m, n, k, accumulate});
}

void CudaBackend::Rope(Tensor q, Tensor k, absl::Span<const int32_t> positions,
                       const std::vector<float>& inv_freq, RopeLayout layout) {
  CheckFloat(q);
  CheckType(k, q.dtype());
  const int64_t n = static_cast<int64_t>(positions.size());
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  CHECK(q.ndim() == 3 && k.ndim() == 3 && q.dim(0) == n && k.dim(0) == n);
  CHECK(2 * half <= q.dim(2) && q.dim(2) == k.dim(2));
  BeginStaging(AlignUp(n * sizeof(int32_t)) + AlignUp(half * sizeof(float)));
  const auto* pos = static_cast<const int32_t*>(Stage(positions.data(), n * sizeof(int32_t)));
  const auto* freq = static_cast<const float*>(Stage(inv_freq.data(), half * sizeof(float)));
  const bool adjacent = layout == RopeLayout::kAdjacent;
  cuda::Rope({q.data(), q.dtype(), pos, freq, n, q.dim(1), q.dim(2), half, adjacent}, stream_);
  cuda::Rope({k.data(), k.dtype(), pos, freq, n, k.dim(1), k.dim(2), half, adjacent}, stream_);
}

void CudaBackend::WriteKv(const Tensor& k, const Tensor& v, absl::Span<const int32_t> slots,
                          Tensor k_cache, Tensor v_cache) {
  CheckFloat(k);
  CheckType(v, k.dtype());
  CheckFloat(k_cache);
  CheckType(v_cache, k_cache.dtype());
  const int64_t n = static_cast<int64_t>(slots.size());
  if (n == 0) return;
  const int64_t width = k.num_elements() / n;
  CHECK(k.num_elements() == n * width && v.num_elements() == k.num_elements());
  CHECK(k_cache.num_elements() == v_cache.num_elements() && k_cache.num_elements() % width == 0);
  const int64_t cache_slots = k_cache.num_elements() / width;
  for (int32_t slot : slots) CHECK(slot >= 0 && slot < cache_slots);
  BeginStaging(AlignUp(n * sizeof(int32_t)));
  const auto* dev_slots = static_cast<const int32_t*>(Stage(slots.data(), n * sizeof(int32_t)));
  cuda::WriteKv(k.data(), v.data(), k.dtype(), dev_slots, n, width, k_cache.data(), v_cache.data(),
                k_cache.dtype(), stream_);
}

void CudaBackend::PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                 absl::Span<const BatchSequence> sequences,
                                 const AttentionParams& params, Tensor out) {
  CheckFloat(q);
  CheckType(k_cache, q.dtype());
  CheckType(v_cache, q.dtype());
  CheckType(out, q.dtype());
  CHECK(params.num_kv_heads > 0 && params.num_heads % params.num_kv_heads == 0);
  CHECK(q.num_elements() == out.num_elements() &&
        q.num_elements() % (params.num_heads * params.head_dim) == 0);
  const int64_t total_tokens = q.num_elements() / (params.num_heads * params.head_dim);
  const int64_t cache_blocks =
      k_cache.num_elements() / (params.block_size * params.num_kv_heads * params.head_dim);
  attention_seqs_.clear();
  for (const BatchSequence& s : sequences) {
    CHECK(s.num_tokens > 0 && s.num_tokens <= s.context_len);
    CHECK(s.token_begin >= 0 && s.token_begin + s.num_tokens <= total_tokens);
    const int64_t blocks = (s.context_len + params.block_size - 1) / params.block_size;
    for (int64_t b = 0; b < blocks; ++b) {
      CHECK(s.block_table[b] >= 0 && s.block_table[b] < cache_blocks);
    }
    attention_seqs_.push_back({s.token_begin, s.num_tokens, s.context_len, s.block_table});
  }
  const int64_t group = params.num_heads / params.num_kv_heads;
  attention::PlanPagedAttention(attention_seqs_.data(),
                                static_cast<int32_t>(attention_seqs_.size()), group,
                                params.block_size, &attention_plan_);
  attention::PlanKeySplits(params.num_kv_heads, attention_target_blocks_, &attention_plan_);
  const size_t workspace_bytes = cuda::PagedAttentionWorkspaceBytes(
      attention_plan_.num_splits, total_tokens, params.num_heads, params.head_dim);
  if (workspace_bytes > attention_workspace_.size()) {
    Synchronize();  // earlier ops may still use the old workspace
    attention_workspace_ = cuda::DeviceBuffer(workspace_bytes);
  }
  const size_t bytes = attention_plan_.packed.size() * sizeof(int32_t);
  BeginStaging(AlignUp(bytes));
  const auto* plan = static_cast<const int32_t*>(Stage(attention_plan_.packed.data(), bytes));
  cuda::PagedAttention(
      {q.data(), k_cache.data(), v_cache.data(), out.data(), q.dtype(), plan,
       attention_plan_.num_seqs, attention_plan_.num_work, attention_plan_.tokens_per_tile,
       attention_plan_.num_splits, attention_plan_.split_keys, total_tokens,
       attention_workspace_.data(), params.num_heads, params.num_kv_heads, params.head_dim,
       params.block_size, params.scale},
      stream_);
}

void CudaBackend::SiluAndMul(const Tensor& gate_up, Tensor out) {
  CheckFloat(gate_up);
  CheckType(out, gate_up.dtype());
  CHECK(gate_up.row_size() == 2 * out.row_size() && gate_up.num_rows() == out.num_rows());
  cuda::SiluAndMul(gate_up.data(), gate_up.dtype(), out.num_rows(), out.row_size(), out.data(),
                   stream_);
}

void CudaBackend::SplitColumns(const Tensor& src, absl::Span<Tensor> parts) {
  CheckFloat(src);
  const int64_t rows = src.num_rows(), width = src.row_size();
  const size_t elem = src.dtype() == DType::kF32 ? 4 : 2;
  int64_t col = 0;
  for (Tensor& part : parts) {
    CheckType(part, src.dtype());
    CHECK(part.num_rows() == rows);
    const int64_t w = part.row_size();
    CHECK(col + w <= width);
    if (rows > 0 && w > 0) {
      MOESERVE_CUDA_CHECK(cudaMemcpy2DAsync(
          part.data(), w * elem, static_cast<const char*>(src.data()) + col * elem, width * elem,
          w * elem, rows, cudaMemcpyDeviceToDevice, stream_));
    }
    col += w;
  }
  CHECK(col == width);
}

void CudaBackend::GatherRows(const Tensor& src, absl::Span<const int32_t> rows, Tensor dst) {
  CheckFloat(src);
  CheckFloat(dst);
  const int64_t dim = src.row_size(), n = static_cast<int64_t>(rows.size());
  CHECK(dst.row_size() == dim && dst.num_rows() == n);
  for (int32_t r : rows) CHECK(r >= 0 && r < src.num_rows());
  BeginStaging(AlignUp(n * sizeof(int32_t)));
  const auto* dev_rows = static_cast<const int32_t*>(Stage(rows.data(), n * sizeof(int32_t)));
  cuda::GatherRows(src.data(), src.dtype(), dev_rows, n, dim, dst.data(), dst.dtype(), stream_);
}

void CudaBackend::AddBias(Tensor y, const Tensor& bias) {
  CheckFloat(y);
  CheckFloat(bias);
  CHECK(bias.num_elements() == y.row_size());
  cuda::AddBias(y.data(), y.dtype(), bias.data(), bias.dtype(), y.num_rows(), y.row_size(),
                stream_);
}

void CudaBackend::Tanh(Tensor x) {
  CheckFloat(x);
  cuda::Tanh(x.data(), x.dtype(), x.num_elements(), stream_);
}

void CudaBackend::ScaleRowsBySigmoid(Tensor x, const Tensor& gate) {
  CheckFloat(x);
  CheckFloat(gate);
  CHECK(gate.num_elements() == x.num_rows());
  cuda::ScaleRowsBySigmoid(x.data(), x.dtype(), gate.data(), gate.dtype(), x.num_rows(),
                           x.row_size(), stream_);
}

void CudaBackend::Route(const Tensor& logits, const RouterParams& params, Tensor topk_ids,
                        Tensor topk_weights) {
  CheckType(logits, DType::kF32);
  CheckType(topk_ids, DType::kI32);
  CheckType(topk_weights, DType::kF32);
  const int64_t n = logits.num_rows();
  const int32_t experts = static_cast<int32_t>(logits.row_size());
  CHECK(params.top_k >= 1 && params.top_k <= std::min(experts, cuda::kMaxTopK));
  CHECK(topk_ids.num_rows() == n && topk_ids.row_size() == params.top_k &&
        topk_weights.num_elements() == topk_ids.num_elements());
  cuda::Route({logits.data_as<float>(), topk_ids.data_as<int32_t>(), topk_weights.data_as<float>(),
               n, experts, params.top_k, ToKernel(params.math), params.renormalize},
              stream_);
}

void CudaBackend::MoePermute(const Tensor& x, const Tensor& topk_ids, Tensor expert_offsets,
                             Tensor pair_rows, Tensor permuted) {
  CheckFloat(x);
  CheckType(topk_ids, DType::kI32);
  CheckType(expert_offsets, DType::kI32);
  CheckType(pair_rows, DType::kI32);
  CheckType(permuted, x.dtype());
  const int64_t n = x.num_rows(), dim = x.row_size(), pairs = topk_ids.num_elements();
  const int32_t k = static_cast<int32_t>(topk_ids.row_size());
  const int32_t experts = static_cast<int32_t>(expert_offsets.num_elements() - 1);
  CHECK(experts >= 1 && experts <= cuda::kMaxExperts);
  CHECK(topk_ids.num_rows() == n && pair_rows.num_elements() == pairs &&
        permuted.num_rows() == pairs && permuted.row_size() == dim);
  cuda::GroupByExpert(topk_ids.data_as<int32_t>(), pairs, experts,
                      expert_offsets.data_as<int32_t>(), pair_rows.data_as<int32_t>(), stream_);
  cuda::PermuteRows(x.data(), x.dtype(), pair_rows.data_as<int32_t>(), n, k, dim, permuted.data(),
                    stream_);
}

void CudaBackend::GroupedGateUpSilu(const Tensor& x, const Tensor& w_gate_up,
                                    const Tensor& expert_offsets, Tensor act) {
  CheckType(x, DType::kBF16);
  CheckType(w_gate_up, DType::kBF16);
  CheckType(expert_offsets, DType::kI32);
  CheckFloat(act);
  CHECK(w_gate_up.ndim() == 3 && w_gate_up.dim(1) % 2 == 0);
  const int32_t experts = static_cast<int32_t>(w_gate_up.dim(0));
  const int64_t inter = w_gate_up.dim(1) / 2, dim = w_gate_up.dim(2);
  CHECK(expert_offsets.num_elements() == experts + 1 && x.row_size() == dim &&
        act.row_size() == inter && act.num_rows() == x.num_rows());
  cuda::GroupedGemm({x.data(), w_gate_up.data(), expert_offsets.data_as<int32_t>(), act.data(),
                     act.dtype(), experts, x.num_rows(), dim, inter, /*gate_up_silu=*/true},
                    stream_);
}

void CudaBackend::GroupedLinear(const Tensor& x, const Tensor& w, const Tensor& expert_offsets,
                                Tensor y) {
  CheckType(x, DType::kBF16);
  CheckType(w, DType::kBF16);
  CheckType(expert_offsets, DType::kI32);
  CheckFloat(y);
  CHECK(w.ndim() == 3);
  const int32_t experts = static_cast<int32_t>(w.dim(0));
  const int64_t n_dim = w.dim(1), k_dim = w.dim(2);
  CHECK(expert_offsets.num_elements() == experts + 1 && x.row_size() == k_dim &&
        y.row_size() == n_dim && y.num_rows() == x.num_rows());
  cuda::GroupedGemm({x.data(), w.data(), expert_offsets.data_as<int32_t>(), y.data(), y.dtype(),
                     experts, x.num_rows(), k_dim, n_dim, /*gate_up_silu=*/false},
                    stream_);
}

void CudaBackend::MoeUnpermute(const Tensor& y, const Tensor& pair_rows, const Tensor& topk_weights,
                               float scale, Tensor out, bool accumulate) {
  CheckFloat(y);
  CheckType(pair_rows, DType::kI32);
  CheckFloat(out);
  const int64_t n = out.num_rows(), dim = out.row_size();
  CHECK(n > 0 && pair_rows.num_elements() % n == 0);
  const int32_t k = static_cast<int32_t>(pair_rows.num_elements() / n);
  // An empty weights tensor means weights of 1 (LLaMA-MoE without multiply_gate_scores).
  const bool weighted = topk_weights.data() != nullptr;
  if (weighted) {
    CheckType(topk_weights, DType::kF32);
    CHECK(topk_weights.num_rows() == n && topk_weights.row_size() == k);
  }
  CHECK(y.num_rows() == n * k && y.row_size() == dim);
  cuda::MoeUnpermute({y.data(), y.dtype(), pair_rows.data_as<int32_t>(),
                      weighted ? topk_weights.data_as<float>() : nullptr, out.data(), out.dtype(),
                      n, k, dim, scale, accumulate},
                     stream_);
}

void CudaBackend::CopyToHost(const Tensor& src, void* dst) {
  CheckOnDevice(src);
  const int64_t bytes = src.num_bytes();
  if (bytes > 0) {
    MOESERVE_CUDA_CHECK(cudaMemcpyAsync(dst, src.data(), bytes, cudaMemcpyDeviceToHost, stream_));
  }
  Synchronize();
}

namespace {

// Device memory handed to the model (weights, workspaces, KV cache).
class CudaBuffer : public BackendBuffer {
 public:
  explicit CudaBuffer(int64_t bytes) : buffer_(static_cast<size_t>(bytes)) {}
  void* data() const override { return buffer_.data(); }

 private:
  cuda::DeviceBuffer buffer_;
};

}  // namespace

std::unique_ptr<BackendBuffer> CudaBackend::Allocate(int64_t bytes) {
  CHECK(bytes > 0);
  MOESERVE_CUDA_CHECK(cudaSetDevice(device_index_));
  return std::make_unique<CudaBuffer>(bytes);
}

void CudaBackend::CopyFromHost(const void* src, Tensor dst) {
  CheckOnDevice(dst);
  const int64_t bytes = dst.num_bytes();
  if (bytes > 0) {
    MOESERVE_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src, bytes, cudaMemcpyHostToDevice, stream_));
  }
  Synchronize();
}

}  // namespace moeserve
