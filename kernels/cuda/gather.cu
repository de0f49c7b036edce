#include "kernels/cuda/gather.h"

#include "kernels/cuda/device_math.cuh"

namespace moeserve::cuda {
namespace {

// One block per output row.
template <typename S, typename D>
__global__ void GatherRowsKernel(const S* src, const int32_t* rows, int64_t dim, D* dst) {
  const S* from = src + static_cast<int64_t>(rows[blockIdx.x]) * dim;
  D* to = dst + static_cast<int64_t>(blockIdx.x) * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) to[i] = FromF32<D>(ToF32(from[i]));
}

}  // namespace

void GatherRows(const void* src, DType src_type, const int32_t* rows, int64_t n, int64_t dim,
                void* dst, DType dst_type, Stream stream) {
  if (n == 0 || dim == 0) return;
  MOESERVE_DISPATCH_FLOAT(src_type, S, "GatherRows", {
    MOESERVE_DISPATCH_FLOAT(dst_type, D, "GatherRows", {
      GatherRowsKernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(
          static_cast<const S*>(src), rows, dim, static_cast<D*>(dst));
    });
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

}  // namespace moeserve::cuda
