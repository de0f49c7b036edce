#include "kernels/cuda/moe_route.h"

#include "kernels/cuda/device_math.cuh"

namespace moeserve::cuda {
namespace {

// score(i) of expert i: the softmax probability or the raw logit.
struct Scores {
  const float* row;
  float max;
  float sum;
  bool softmax;
  __device__ float operator()(int i) const { return softmax ? expf(row[i] - max) / sum : row[i]; }
};

// One thread per token: routers have tens of experts and k <= 16, so a serial top-k by
// repeated selection is cheap and keeps the reference's exact order of operations.
__global__ void RouteKernel(RouteArgs a) {
  const int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (t >= a.n) return;
  const int e = a.num_experts, k = a.top_k;
  const float* row = a.logits + t * e;
  Scores score{row, 0.0f, 1.0f, a.math == RouteMath::kSoftmaxTopK};
  if (score.softmax) {
    float max = row[0];
    for (int i = 1; i < e; ++i) max = fmaxf(max, row[i]);
    float sum = 0.0f;
    for (int i = 0; i < e; ++i) sum += expf(row[i] - max);
    score.max = max;
    score.sum = sum;
  }
  int ids[kMaxTopK];
  float w[kMaxTopK];
  for (int j = 0; j < k; ++j) {
    int best = -1;
    float best_score = 0.0f;
    for (int i = 0; i < e; ++i) {
      bool taken = false;
      for (int p = 0; p < j; ++p) taken = taken || ids[p] == i;
      if (taken) continue;
      const float s = score(i);
      // Strictly greater keeps the lower index on ties; NaN never wins over a number.
      if (best < 0 || s > best_score) {
        best = i;
        best_score = s;
      }
    }
    ids[j] = best;
    w[j] = best_score;
  }
  if (a.math == RouteMath::kSoftmaxTopK && a.renormalize) {
    float kept = 0.0f;
    for (int j = 0; j < k; ++j) kept += w[j];
    for (int j = 0; j < k; ++j) w[j] /= kept;
  } else if (a.math == RouteMath::kTopKSoftmax) {
    const float max = w[0];
    float sum = 0.0f;
    for (int j = 0; j < k; ++j) {
      w[j] = expf(w[j] - max);
      sum += w[j];
    }
    for (int j = 0; j < k; ++j) w[j] /= sum;
  }
  for (int j = 0; j < k; ++j) {
    a.ids[t * k + j] = ids[j];
    a.weights[t * k + j] = w[j];
  }
}

}  // namespace

void Route(const RouteArgs& args, Stream stream) {
  if (args.n == 0) return;
  RouteKernel<<<CeilDiv(args.n, 128), 128, 0, stream>>>(args);
  MOESERVE_CUDA_CHECK_LAUNCH();
}

}  // namespace moeserve::cuda
