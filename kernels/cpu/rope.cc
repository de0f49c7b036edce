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

std::vector<float> RopeInvFrequencies(float theta, int rotary_dim, const RopeScaling& scaling) {
  std::vector<float> inv_freq = RopeInvFrequencies(theta, rotary_dim);
  switch (scaling.kind) {
    case RopeScalingKind::kNone:
      break;
    case RopeScalingKind::kLinear:
      for (float& f : inv_freq) f /= scaling.factor;
      break;
    case RopeScalingKind::kLlama3: {
      // torch casts the Python scalars to the tensor's f32 before each op; so do we.
      const float factor = scaling.factor;
      const float low = scaling.low_freq_factor;
      const float high = scaling.high_freq_factor;
      const double old_context = scaling.original_max_position_embeddings;
      const float low_freq_wavelen = static_cast<float>(old_context / low);
      const float high_freq_wavelen = static_cast<float>(old_context / high);
      const float two_pi = static_cast<float>(2.0 * 3.141592653589793);
      // (high - low) is Python arithmetic in double, rounded to f32 when it meets the tensor.
      const float smooth_denominator = static_cast<float>(double{high} - double{low});
      for (float& f : inv_freq) {
        const float wavelen = two_pi / f;
        float scaled = wavelen > low_freq_wavelen ? f / factor : f;
        if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
          const float smooth =
              (static_cast<float>(old_context) / wavelen - low) / smooth_denominator;
          scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
        }
        f = scaled;
      }
      break;
    }
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
