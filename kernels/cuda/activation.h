// Elementwise ops on the device, computed in f32 and stored once in the storage type:
// the SwiGLU activation, bias add, tanh (LLaMA-MoE's router) and the sigmoid row gate
// (Qwen2-MoE's shared expert). Types: f32 or bf16, each tensor its own.
#ifndef MOESERVE_KERNELS_CUDA_ACTIVATION_H_
#define MOESERVE_KERNELS_CUDA_ACTIVATION_H_

#include <cstdint>

#include "common/dtype.h"
#include "kernels/cuda/stream.h"

namespace moeserve::cuda {

// out = silu(gate) * up. gate_up: [rows, 2 * dim] (gate | up); out: [rows, dim]; one type.
void SiluAndMul(const void* gate_up, DType type, int64_t rows, int64_t dim, void* out,
                Stream stream);

// y[r] += bias. y: [rows, dim] of y_type; bias: [dim] of bias_type.
void AddBias(void* y, DType y_type, const void* bias, DType bias_type, int64_t rows, int64_t dim,
             Stream stream);

// x = tanh(x) over count elements.
void Tanh(void* x, DType type, int64_t count, Stream stream);

// x[r] *= sigmoid(gate[r]). x: [rows, dim] of x_type; gate: [rows] of gate_type.
void ScaleRowsBySigmoid(void* x, DType x_type, const void* gate, DType gate_type, int64_t rows,
                        int64_t dim, Stream stream);

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_ACTIVATION_H_
