// The Backend on the host CPU: f32 tensors and kernels/cpu ops, every data-parallel loop
// (GEMM column slices on single-threaded OpenBLAS included) on one ThreadPool sized to the
// cores this process may use.
#ifndef MOESERVE_ENGINE_CPU_BACKEND_H_
#define MOESERVE_ENGINE_CPU_BACKEND_H_

#include <memory>
#include <vector>

#include "common/thread_pool.h"
#include "engine/backend.h"

namespace moeserve {

class CpuBackend : public Backend {
 public:
  // num_threads <= 0 uses every core this process may use.
  explicit CpuBackend(int num_threads);

  Device device() const override { return Device::kCpu; }
  std::unique_ptr<BackendBuffer> Allocate(int64_t bytes) override;
  void CopyFromHost(const void* src, Tensor dst) override;
  void Embedding(const Tensor& table, absl::Span<const int32_t> ids, Tensor out) override;
  void RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor out) override;
  void AddRmsNorm(const Tensor& x, Tensor residual, const Tensor& weight, float eps,
                  Tensor out) override;
  void Linear(const Tensor& x, const Tensor& w, Tensor y, bool accumulate) override;
  void Rope(Tensor q, Tensor k, absl::Span<const int32_t> positions,
            const std::vector<float>& inv_freq, RopeLayout layout) override;
  void WriteKv(const Tensor& k, const Tensor& v, absl::Span<const int32_t> slots, Tensor k_cache,
               Tensor v_cache) override;
  void PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                      absl::Span<const BatchSequence> sequences, const AttentionParams& params,
                      Tensor out) override;
  void SiluAndMul(const Tensor& gate_up, Tensor out) override;
  void SplitColumns(const Tensor& src, absl::Span<Tensor> parts) override;
  void GatherRows(const Tensor& src, absl::Span<const int32_t> rows, Tensor dst) override;
  void AddBias(Tensor y, const Tensor& bias) override;
  void Tanh(Tensor x) override;
  void ScaleRowsBySigmoid(Tensor x, const Tensor& gate) override;
  void Route(const Tensor& logits, const RouterParams& params, Tensor topk_ids,
             Tensor topk_weights) override;
  void MoePermute(const Tensor& x, const Tensor& topk_ids, Tensor expert_offsets, Tensor pair_rows,
                  Tensor permuted) override;
  void GroupedGateUpSilu(const Tensor& x, const Tensor& w_gate_up, const Tensor& expert_offsets,
                         Tensor act) override;
  void GroupedLinear(const Tensor& x, const Tensor& w, const Tensor& expert_offsets,
                     Tensor y) override;
  void MoeUnpermute(const Tensor& y, const Tensor& pair_rows, const Tensor& topk_weights,
                    float scale, Tensor out, bool accumulate) override;
  void CopyToHost(const Tensor& src, void* dst) override;

  int num_threads() const { return pool_->num_threads(); }

 private:
  std::unique_ptr<ThreadPool> pool_;
  std::vector<float> gate_up_scratch_;  // [rows, 2 * inter] of the largest GroupedGateUpSilu
  std::vector<int32_t> row_pairs_;      // [n * k] MoePermute's inverse permutation
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_CPU_BACKEND_H_
