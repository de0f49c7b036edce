#include "kernels/cuda/rmsnorm.h"

#include "kernels/cuda/device_math.cuh"

namespace moeserve::cuda {
namespace {

// One block per row. Pass 1 forms the (rounded) normalised input and its sum of squares;
// pass 2 rereads it from where pass 1 left it, element by element on the same thread, so
// out may alias x.
template <typename T, typename W>
__global__ void RmsNormKernel(const T* x, T* residual, const W* weight, int64_t dim, float eps,
                              T* out) {
  const int64_t base = static_cast<int64_t>(blockIdx.x) * dim;
  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = ToF32(x[base + i]);
    if (residual != nullptr) {
      const T stored = FromF32<T>(v + ToF32(residual[base + i]));
      residual[base + i] = stored;
      v = ToF32(stored);
    }
    sum_sq += v * v;
  }
  const float inv_rms = rsqrtf(BlockSum(sum_sq) / static_cast<float>(dim) + eps);
  const T* in = residual != nullptr ? residual : x;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    out[base + i] = FromF32<T>(ToF32(in[base + i]) * inv_rms * ToF32(weight[i]));
  }
}

}  // namespace

void RmsNorm(const RmsNormArgs& a, Stream stream) {
  if (a.rows == 0) return;
  const int threads = a.dim >= 1024 ? 512 : 128;
  MOESERVE_DISPATCH_FLOAT(a.act_type, T, "RmsNorm", {
    MOESERVE_DISPATCH_FLOAT(a.weight_type, W, "RmsNorm", {
      RmsNormKernel<<<static_cast<unsigned>(a.rows), threads, 0, stream>>>(
          static_cast<const T*>(a.x), static_cast<T*>(a.residual), static_cast<const W*>(a.weight),
          a.dim, a.eps, static_cast<T*>(a.out));
    });
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

}  // namespace moeserve::cuda
