#include "kernels/cpu/rope.h"

#include <cmath>

namespace moeserve::cpu {

std::vector<float> RopeInvFrequencies(float theta, int rotary_dim) {
  std::vector<float> inv_freq(rotary_dim / 2);
  for (int i = 0; i < rotary_dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rotary_dim);
    inv_freq[i] = 1.0f / std::pow(theta, exponent);
  }
  return inv_freq;
}

void ApplyRope(float* x, const int32_t* positions, int64_t num_tokens, int64_t num_heads,
               int64_t head_dim, const std::vector<float>& inv_freq, RopeStyle style) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  std::vector<float> cos_table(half), sin_table(half);
  for (int64_t t = 0; t < num_tokens; ++t) {
    // Angles in f32 as transformers computes them (position * inv_freq, then cos/sin).
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(positions[t]) * inv_freq[i];
      cos_table[i] = std::cos(angle);
      sin_table[i] = std::sin(angle);
    }
    for (int64_t h = 0; h < num_heads; ++h) {
      float* v = x + (t * num_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = style == RopeStyle::kHalf ? i : 2 * i;
        const int64_t b = style == RopeStyle::kHalf ? i + half : 2 * i + 1;
        const float x0 = v[a];
        const float x1 = v[b];
        v[a] = x0 * cos_table[i] - x1 * sin_table[i];
        v[b] = x1 * cos_table[i] + x0 * sin_table[i];
      }
    }
  }
}

}  // namespace moeserve::cpu
