#include "kernels/cpu/rmsnorm.h"

#include <cmath>

namespace moeserve::cpu {
namespace {

void NormalizeRow(const float* x, const float* weight, float eps, int64_t dim, float* out) {
  float sum_sq = 0.0f;
#pragma omp simd reduction(+ : sum_sq)
  for (int64_t j = 0; j < dim; ++j) sum_sq += x[j] * x[j];
  const float scale = 1.0f / std::sqrt(sum_sq / static_cast<float>(dim) + eps);
  for (int64_t j = 0; j < dim; ++j) out[j] = x[j] * scale * weight[j];
}

}  // namespace

void RmsNorm(const float* x, const float* weight, float eps, int64_t rows, int64_t dim,
             float* out) {
  for (int64_t i = 0; i < rows; ++i) NormalizeRow(x + i * dim, weight, eps, dim, out + i * dim);
}

void AddRmsNorm(const float* x, float* residual, const float* weight, float eps, int64_t rows,
                int64_t dim, float* out) {
  for (int64_t i = 0; i < rows; ++i) {
    float* r = residual + i * dim;
    const float* xi = x + i * dim;
    for (int64_t j = 0; j < dim; ++j) r[j] += xi[j];
    NormalizeRow(r, weight, eps, dim, out + i * dim);
  }
}

}  // namespace moeserve::cpu
