// The Backend on an NVIDIA GPU: kernels/cuda ops on one stream, dense projections through
// cuBLAS. Tensors passed in live on the device (Device::kCuda); activations and weights
// are bf16 (f32 accepted where a kernel supports it: norms, elementwise ops, attention,
// router logits), index tensors i32. Index arrays that arrive as host spans (token ids,
// positions, slots, block tables) are uploaded (pageable cudaMemcpyAsync) into a staging
// buffer owned here; it and the split-KV attention workspace grow to their working size
// (after a Synchronize), then ops allocate nothing. Ops are asynchronous on the stream;
// CopyToHost, CopyFromHost and Synchronize wait for it. Built only with MOESERVE_CUDA.
#ifndef MOESERVE_ENGINE_CUDA_BACKEND_H_
#define MOESERVE_ENGINE_CUDA_BACKEND_H_

#include <cstddef>
#include <memory>
#include <vector>

#include "engine/backend.h"
#include "kernels/attention_plan.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream.h"

namespace moeserve {

class CudaBackend : public Backend {
 public:
  // REQUIRES: device_index names a usable device (see kernels/cuda/device_info.h).
  explicit CudaBackend(int device_index = 0);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::kCuda; }
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

  // Waits until every op issued so far has finished.
  void Synchronize();
  cuda::Stream stream() const { return stream_; }

 private:
  // Makes room for `bytes` of staged host data for the op about to run (the previous op's
  // staged data is dead once this op is enqueued after it on the stream).
  void BeginStaging(size_t bytes);
  // Uploads host data into the staging buffer; the pointer is valid for this op.
  const void* Stage(const void* host, size_t bytes);

  int device_index_;
  cuda::Stream stream_ = nullptr;
  cuda::BlasHandle blas_ = nullptr;
  cuda::DeviceBuffer staging_;
  size_t staging_used_ = 0;
  int64_t attention_target_blocks_ = 0;              // two per SM: below it, attention splits keys
  cuda::DeviceBuffer attention_workspace_;           // split-KV partials, grown to the largest need
  attention::Plan attention_plan_;                   // reused across steps
  std::vector<attention::SeqInput> attention_seqs_;  // likewise
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_CUDA_BACKEND_H_
