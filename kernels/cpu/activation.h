// The SwiGLU activation of Llama-family MLPs: out = silu(gate) * up.
#ifndef MOESERVE_KERNELS_CPU_ACTIVATION_H_
#define MOESERVE_KERNELS_CPU_ACTIVATION_H_

#include <cstdint>

namespace moeserve::cpu {

// gate_up: [rows, 2 * dim] with gate in the first half of each row and up in the second
// (the layout of a fused gate|up projection); out: [rows, dim].
void SiluAndMul(const float* gate_up, int64_t rows, int64_t dim, float* out);

}  // namespace moeserve::cpu

#endif  // MOESERVE_KERNELS_CPU_ACTIVATION_H_
