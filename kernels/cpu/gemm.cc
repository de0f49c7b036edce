#include "kernels/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>

namespace moeserve::cpu {

void Gemm(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
          float beta) {
  if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(n), static_cast<blasint>(k),
                1.0f, w, static_cast<blasint>(k), x, 1, beta, y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, x,
              static_cast<blasint>(k), w, static_cast<blasint>(k), beta, y,
              static_cast<blasint>(n));
}

void SetGemmThreads(int num_threads) { openblas_set_num_threads(std::max(1, num_threads)); }

}  // namespace moeserve::cpu
