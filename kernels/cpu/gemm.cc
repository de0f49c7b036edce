#include "kernels/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>

namespace moeserve::cpu {
namespace {

// y[:, cols] for output columns [begin, end).
void GemmColumns(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
                 float beta, int64_t begin, int64_t end) {
  const auto cols = static_cast<blasint>(end - begin);
  if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, cols, static_cast<blasint>(k), 1.0f, w + begin * k,
                static_cast<blasint>(k), x, 1, beta, y + begin, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m), cols,
              static_cast<blasint>(k), 1.0f, x, static_cast<blasint>(k), w + begin * k,
              static_cast<blasint>(k), beta, y + begin, static_cast<blasint>(n));
}

}  // namespace

void Gemm(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k, float beta,
          ThreadPool* pool) {
  // Below ~64K multiply-adds per thread the hand-off costs more than it saves.
  if (pool == nullptr || pool->num_threads() == 1 || m * n * k < (int64_t{1} << 17)) {
    GemmColumns(x, w, y, m, n, k, beta, 0, n);
    return;
  }
  // Column slices in multiples of 16 keep each thread's rows of w cache-line aligned.
  const int64_t threads = pool->num_threads();
  const int64_t slice = std::max<int64_t>(16, (n / threads + 15) / 16 * 16);
  const int64_t slices = (n + slice - 1) / slice;
  pool->ParallelFor(slices, 1, [&](int64_t first, int64_t last) {
    for (int64_t s = first; s < last; ++s) {
      GemmColumns(x, w, y, m, n, k, beta, s * slice, std::min(n, (s + 1) * slice));
    }
  });
}

void UseSingleThreadedBlas() { openblas_set_num_threads(1); }

}  // namespace moeserve::cpu
