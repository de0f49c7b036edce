#include "kernels/cpu/activation.h"

#include <cmath>

namespace moeserve::cpu {

void SiluAndMul(const float* gate_up, int64_t rows, int64_t dim, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* gate = gate_up + r * 2 * dim;
    const float* up = gate + dim;
    float* o = out + r * dim;
    for (int64_t j = 0; j < dim; ++j) {
      const float g = gate[j];
      o[j] = g / (1.0f + std::exp(-g)) * up[j];
    }
  }
}

}  // namespace moeserve::cpu
