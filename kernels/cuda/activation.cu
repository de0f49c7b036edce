#include "kernels/cuda/activation.h"

#include "kernels/cuda/device_math.cuh"

namespace moeserve::cuda {
namespace {

constexpr int kThreads = 256;

// Grid-stride loops over the flat index; 2D shapes recover (row, column) by division.
template <typename T>
__global__ void SiluAndMulKernel(const T* gate_up, int64_t rows, int64_t dim, T* out) {
  const int64_t total = rows * dim;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / dim, c = i - r * dim;
    const float g = ToF32(gate_up[r * 2 * dim + c]);
    const float u = ToF32(gate_up[r * 2 * dim + dim + c]);
    out[i] = FromF32<T>(Silu(g) * u);
  }
}

template <typename T, typename B>
__global__ void AddBiasKernel(T* y, const B* bias, int64_t rows, int64_t dim) {
  const int64_t total = rows * dim;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    y[i] = FromF32<T>(ToF32(y[i]) + ToF32(bias[i % dim]));
  }
}

template <typename T>
__global__ void TanhKernel(T* x, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    x[i] = FromF32<T>(tanhf(ToF32(x[i])));
  }
}

template <typename T, typename G>
__global__ void ScaleRowsBySigmoidKernel(T* x, const G* gate, int64_t rows, int64_t dim) {
  const int64_t total = rows * dim;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float s = 1.0f / (1.0f + expf(-ToF32(gate[i / dim])));
    x[i] = FromF32<T>(ToF32(x[i]) * s);
  }
}

unsigned Blocks(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
}

}  // namespace

void SiluAndMul(const void* gate_up, DType type, int64_t rows, int64_t dim, void* out,
                Stream stream) {
  if (rows * dim == 0) return;
  MOESERVE_DISPATCH_FLOAT(type, T, "SiluAndMul", {
    SiluAndMulKernel<<<Blocks(rows * dim), kThreads, 0, stream>>>(static_cast<const T*>(gate_up),
                                                                  rows, dim, static_cast<T*>(out));
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

void AddBias(void* y, DType y_type, const void* bias, DType bias_type, int64_t rows, int64_t dim,
             Stream stream) {
  if (rows * dim == 0) return;
  MOESERVE_DISPATCH_FLOAT(y_type, T, "AddBias", {
    MOESERVE_DISPATCH_FLOAT(bias_type, B, "AddBias", {
      AddBiasKernel<<<Blocks(rows * dim), kThreads, 0, stream>>>(
          static_cast<T*>(y), static_cast<const B*>(bias), rows, dim);
    });
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

void Tanh(void* x, DType type, int64_t count, Stream stream) {
  if (count == 0) return;
  MOESERVE_DISPATCH_FLOAT(type, T, "Tanh", {
    TanhKernel<<<Blocks(count), kThreads, 0, stream>>>(static_cast<T*>(x), count);
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

void ScaleRowsBySigmoid(void* x, DType x_type, const void* gate, DType gate_type, int64_t rows,
                        int64_t dim, Stream stream) {
  if (rows * dim == 0) return;
  MOESERVE_DISPATCH_FLOAT(x_type, T, "ScaleRowsBySigmoid", {
    MOESERVE_DISPATCH_FLOAT(gate_type, G, "ScaleRowsBySigmoid", {
      ScaleRowsBySigmoidKernel<<<Blocks(rows * dim), kThreads, 0, stream>>>(
          static_cast<T*>(x), static_cast<const G*>(gate), rows, dim);
    });
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

}  // namespace moeserve::cuda
