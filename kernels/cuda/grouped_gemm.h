// The grouped GEMM of a MoE layer on tensor cores: every expert's rows of the permuted
// activations times that expert's weights, in ONE launch for all experts. Blocks are
// tiles over (row tile, column tile); kernels/moe_tiles.h maps a row-tile index to its
// expert and rows using the routing offsets on the device. bf16 inputs, f32 accumulation
// (mma.sync m16n8k16), one rounding at the store. The gate|up variant computes the gate
// and up columns of a tile together and stores silu(gate) * up. Aligned operands (k_dim a
// multiple of 8) stream through a 4-stage cp.async pipeline with 64- or 128-row tiles
// chosen by rows per expert; others take a register-staged kernel.
#ifndef MOESERVE_KERNELS_CUDA_GROUPED_GEMM_H_
#define MOESERVE_KERNELS_CUDA_GROUPED_GEMM_H_

#include <cstdint>

#include "common/dtype.h"
#include "kernels/cuda/stream.h"

namespace moeserve::cuda {

struct GroupedGemmArgs {
  const void* x = nullptr;  // [rows, k_dim] bf16, rows grouped by expert
  // [num_experts, n_w, k_dim] bf16: n_w = n_out, or 2 * n_out (gate rows, then up rows)
  // with gate_up_silu.
  const void* w = nullptr;
  const int32_t* offsets = nullptr;  // [num_experts + 1] on the device, offsets[E] == rows
  void* out = nullptr;               // [rows, n_out] of out_type (bf16 or f32)
  DType out_type = DType::kBF16;
  int32_t num_experts = 0;
  int64_t rows = 0;
  int64_t k_dim = 0;
  int64_t n_out = 0;
  bool gate_up_silu = false;
};

void GroupedGemm(const GroupedGemmArgs& args, Stream stream);

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_GROUPED_GEMM_H_
