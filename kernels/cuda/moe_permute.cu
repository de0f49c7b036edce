#include "kernels/cuda/moe_permute.h"

#include "kernels/cuda/device_math.cuh"

namespace moeserve::cuda {
namespace {

constexpr int kGroupThreads = 1024;
constexpr int kGroupWarps = kGroupThreads / 32;

__global__ void __launch_bounds__(kGroupThreads)
    GroupByExpertKernel(const int32_t* ids, int64_t num_pairs, int32_t num_experts,
                        int32_t* offsets, int32_t* pair_rows) {
  __shared__ int32_t next[kMaxExperts];                      // next free row per expert
  __shared__ int32_t warp_counts[kGroupWarps][kMaxExperts];  // this chunk's pairs per warp
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  for (int e = threadIdx.x; e < num_experts; e += blockDim.x) next[e] = 0;
  __syncthreads();
  // An id outside [0, num_experts) (a routing bug) is left out rather than let loose on
  // shared memory: its pair gets row -1 and PermuteRows skips it.
  for (int64_t p = threadIdx.x; p < num_pairs; p += blockDim.x) {
    const int32_t e = ids[p];
    if (e >= 0 && e < num_experts) atomicAdd(&next[e], 1);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t running = 0;
    for (int e = 0; e < num_experts; ++e) {
      const int32_t count = next[e];
      offsets[e] = running;
      next[e] = running;
      running += count;
    }
    offsets[num_experts] = running;
  }
  __syncthreads();

  // Chunks of blockDim pairs in order. A pair's row = its expert's next free row + pairs of
  // that expert in earlier warps of the chunk + earlier lanes of its own warp.
  for (int64_t base = 0; base < num_pairs; base += blockDim.x) {
    for (int e = lane; e < num_experts; e += 32) warp_counts[warp][e] = 0;
    const int64_t p = base + threadIdx.x;
    const int32_t id = p < num_pairs ? ids[p] : -1;
    const bool valid = id >= 0 && id < num_experts;
    const int32_t expert = valid ? id : -1;
    if (p < num_pairs && !valid) pair_rows[p] = -1;
    const unsigned same = __match_any_sync(0xffffffffu, expert);
    const int rank_in_warp = __popc(same & ((1u << lane) - 1));
    __syncwarp();
    if (valid && rank_in_warp == 0) warp_counts[warp][expert] = __popc(same);
    __syncthreads();
    if (valid) {
      int32_t row = next[expert] + rank_in_warp;
      for (int w = 0; w < warp; ++w) row += warp_counts[w][expert];
      pair_rows[p] = row;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < num_experts; e += blockDim.x) {
      int32_t chunk = 0;
      for (int w = 0; w < kGroupWarps; ++w) chunk += warp_counts[w][e];
      next[e] += chunk;
    }
    __syncthreads();
  }
}

// One block per pair: copies token row t = pair / k to the pair's permuted row.
template <typename T>
__global__ void PermuteRowsKernel(const T* x, const int32_t* pair_rows, int32_t k, int64_t dim,
                                  T* permuted) {
  const int64_t pair = blockIdx.x;
  if (pair_rows[pair] < 0) return;
  const T* from = x + (pair / k) * dim;
  T* to = permuted + int64_t{pair_rows[pair]} * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) to[i] = from[i];
}

// One block per token.
template <typename Y, typename O>
__global__ void UnpermuteKernel(UnpermuteArgs a) {
  const int64_t t = blockIdx.x;
  const Y* y = static_cast<const Y*>(a.y);
  O* out = static_cast<O*>(a.out) + t * a.dim;
  for (int64_t i = threadIdx.x; i < a.dim; i += blockDim.x) {
    float acc = a.accumulate ? ToF32(out[i]) : 0.0f;
    for (int j = 0; j < a.k; ++j) {
      const float w = a.weights == nullptr ? a.scale : a.scale * a.weights[t * a.k + j];
      acc += w * ToF32(y[int64_t{a.pair_rows[t * a.k + j]} * a.dim + i]);
    }
    out[i] = FromF32<O>(acc);
  }
}

}  // namespace

void GroupByExpert(const int32_t* ids, int64_t num_pairs, int32_t num_experts, int32_t* offsets,
                   int32_t* pair_rows, Stream stream) {
  if (num_experts > kMaxExperts) UnsupportedType("GroupByExpert: more than kMaxExperts");
  GroupByExpertKernel<<<1, kGroupThreads, 0, stream>>>(ids, num_pairs, num_experts, offsets,
                                                       pair_rows);
  MOESERVE_CUDA_CHECK_LAUNCH();
}

void PermuteRows(const void* x, DType type, const int32_t* pair_rows, int64_t n, int32_t k,
                 int64_t dim, void* permuted, Stream stream) {
  if (n * k == 0) return;
  MOESERVE_DISPATCH_FLOAT(type, T, "PermuteRows", {
    PermuteRowsKernel<<<static_cast<unsigned>(n * k), 128, 0, stream>>>(
        static_cast<const T*>(x), pair_rows, k, dim, static_cast<T*>(permuted));
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

void MoeUnpermute(const UnpermuteArgs& args, Stream stream) {
  if (args.n == 0) return;
  MOESERVE_DISPATCH_FLOAT(args.y_type, Y, "MoeUnpermute", {
    MOESERVE_DISPATCH_FLOAT(args.out_type, O, "MoeUnpermute", {
      UnpermuteKernel<Y, O><<<static_cast<unsigned>(args.n), 128, 0, stream>>>(args);
    });
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

}  // namespace moeserve::cuda
