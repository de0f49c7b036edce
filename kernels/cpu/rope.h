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

// The RoPE scalings that only rescale inverse frequencies (transformers' rope_type "linear"
// and "llama3"); position-dependent ones (dynamic, yarn) are not supported.
enum class RopeScalingKind { kNone, kLinear, kLlama3 };

struct RopeScaling {
  RopeScalingKind kind = RopeScalingKind::kNone;
  float factor = 1.0f;            // kLinear, kLlama3: long wavelengths are divided by it
  float low_freq_factor = 1.0f;   // kLlama3
  float high_freq_factor = 4.0f;  // kLlama3
  int32_t original_max_position_embeddings = 0;  // kLlama3: the pretraining context
};

// Inverse frequencies theta^(-2i/rotary_dim), i < rotary_dim/2, computed in f32 like
// transformers' default rope init.
std::vector<float> RopeInvFrequencies(float theta, int rotary_dim);

// The same table adjusted by `scaling` with transformers' f32 arithmetic
// (_compute_linear_scaling_rope_parameters, _compute_llama3_parameters).
// REQUIRES: factor > 0; for kLlama3 high_freq_factor > low_freq_factor > 0 and
// original_max_position_embeddings > 0.
std::vector<float> RopeInvFrequencies(float theta, int rotary_dim, const RopeScaling& scaling);

// x: [num_tokens, num_heads, head_dim]; positions: [num_tokens]; inv_freq: [rotary_dim/2].
// Rotates the first rotary_dim dimensions of every head; the rest pass through.
void ApplyRope(float* x, const int32_t* positions, int64_t num_tokens, int64_t num_heads,
               int64_t head_dim, const std::vector<float>& inv_freq, RopeStyle style);

}  // namespace moeserve::cpu

#endif  // MOESERVE_KERNELS_CPU_ROPE_H_
