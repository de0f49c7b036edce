// Rotary position embedding applied in place to query or key heads.
// Two layouts exist in the wild and must never be mixed with the other's weights:
//  - kHalf (Hugging Face rotate_half, GPT-NeoX): dimension i pairs with i + rotary_dim/2;
//  - kAdjacent (GPT-J, llama.cpp's "norm" rope): dimension 2i pairs with 2i+1.
// GGUF llama files store q/k rows permuted for kAdjacent; the loader un-permutes them so
// llama models run with kHalf like their Hugging Face originals.
#ifndef MOESERVE_KERNELS_CPU_ROPE_H_
#define MOESERVE_KERNELS_CPU_ROPE_H_

#include <cstdint>
#include <vector>

namespace moeserve::cpu {

enum class RopeStyle { kHalf, kAdjacent };

// Inverse frequencies theta^(-2i/rotary_dim), i < rotary_dim/2, computed in f32 like
// transformers' default rope init. Scaling variants (linear, llama3) adjust this table.
std::vector<float> RopeInvFrequencies(float theta, int rotary_dim);

// x: [num_tokens, num_heads, head_dim]; positions: [num_tokens]; inv_freq: [rotary_dim/2].
// Rotates the first rotary_dim dimensions of every head; the rest pass through.
void ApplyRope(float* x, const int32_t* positions, int64_t num_tokens, int64_t num_heads,
               int64_t head_dim, const std::vector<float>& inv_freq, RopeStyle style);

}  // namespace moeserve::cpu

#endif  // MOESERVE_KERNELS_CPU_ROPE_H_
