#include "kernels/cpu/moe.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/logging.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_bf16.h"

namespace moeserve::cpu {
namespace {

// The indices of the k largest of scores[0, e), largest first, ties to the lower index.
void TopK(const float* scores, int32_t e, int32_t k, int32_t* ids) {
  for (int32_t j = 0; j < k; ++j) {
    int32_t best = -1;
    for (int32_t i = 0; i < e; ++i) {
      bool taken = false;
      for (int32_t p = 0; p < j; ++p) taken = taken || ids[p] == i;
      if (taken) continue;
      // Strictly greater keeps the lower index on ties; NaN never wins over a number.
      if (best < 0 || scores[i] > scores[best]) best = i;
    }
    ids[j] = best;
  }
}

// y = x · wᵀ for f32 or bf16 weights.
void AnyGemm(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
             ThreadPool* pool) {
  Gemm(x, w, y, m, n, k, 0.0f, pool);
}
void AnyGemm(const float* x, const uint16_t* w, float* y, int64_t m, int64_t n, int64_t k,
             ThreadPool* pool) {
  GemmBf16(x, w, y, m, n, k, 0.0f, pool);
}

}  // namespace

void RouteTopK(const float* logits, int64_t n, const RouterSpec& spec, int32_t* ids,
               float* weights) {
  const int32_t e = spec.num_experts, k = spec.top_k;
  CHECK(k >= 1 && k <= e);
  std::vector<float> probs(e);
  for (int64_t t = 0; t < n; ++t) {
    const float* row = logits + t * e;
    int32_t* id = ids + t * k;
    float* w = weights + t * k;
    if (spec.math == RouterMathKind::kSoftmaxTopK) {
      float max = row[0];
      for (int32_t i = 1; i < e; ++i) max = std::max(max, row[i]);
      float sum = 0.0f;
      for (int32_t i = 0; i < e; ++i) {
        probs[i] = std::exp(row[i] - max);
        sum += probs[i];
      }
      for (int32_t i = 0; i < e; ++i) probs[i] /= sum;
      TopK(probs.data(), e, k, id);
      float kept = 0.0f;
      for (int32_t j = 0; j < k; ++j) {
        w[j] = probs[id[j]];
        kept += w[j];
      }
      if (spec.renormalize) {
        for (int32_t j = 0; j < k; ++j) w[j] /= kept;
      }
      continue;
    }
    TopK(row, e, k, id);
    for (int32_t j = 0; j < k; ++j) w[j] = row[id[j]];
    if (spec.math == RouterMathKind::kTopKSoftmax) {
      const float max = w[0];  // the largest: pairs are in decreasing order
      float sum = 0.0f;
      for (int32_t j = 0; j < k; ++j) {
        w[j] = std::exp(w[j] - max);
        sum += w[j];
      }
      for (int32_t j = 0; j < k; ++j) w[j] /= sum;
    }
  }
}

void GroupByExpert(const int32_t* ids, int64_t num_pairs, int32_t num_experts, int32_t* offsets,
                   int32_t* pair_rows, int32_t* row_pairs) {
  std::fill(offsets, offsets + num_experts + 1, 0);
  for (int64_t p = 0; p < num_pairs; ++p) {
    CHECK(ids[p] >= 0 && ids[p] < num_experts);
    ++offsets[ids[p] + 1];
  }
  for (int32_t e = 0; e < num_experts; ++e) offsets[e + 1] += offsets[e];
  // Next free row of each expert, walking pairs in order: stable.
  std::vector<int32_t> next(offsets, offsets + num_experts);
  for (int64_t p = 0; p < num_pairs; ++p) {
    const int32_t row = next[ids[p]]++;
    pair_rows[p] = row;
    if (row_pairs != nullptr) row_pairs[row] = static_cast<int32_t>(p);
  }
}

template <typename W>
void GroupedGateUpSilu(const float* x, const W* w_gate_up, const int32_t* offsets,
                       int32_t num_experts, int64_t dim, int64_t inter, float* scratch,
                       float* act, ThreadPool* pool) {
  for (int32_t e = 0; e < num_experts; ++e) {
    const int64_t begin = offsets[e], rows = offsets[e + 1] - begin;
    if (rows == 0) continue;
    float* gate_up = scratch + begin * 2 * inter;
    AnyGemm(x + begin * dim, w_gate_up + e * 2 * inter * dim, gate_up, rows, 2 * inter, dim,
            pool);
    SiluAndMul(gate_up, rows, inter, act + begin * inter);
  }
}

template <typename W>
void GroupedLinear(const float* x, const W* w, const int32_t* offsets, int32_t num_experts,
                   int64_t k_dim, int64_t n_dim, float* y, ThreadPool* pool) {
  for (int32_t e = 0; e < num_experts; ++e) {
    const int64_t begin = offsets[e], rows = offsets[e + 1] - begin;
    if (rows == 0) continue;
    AnyGemm(x + begin * k_dim, w + e * n_dim * k_dim, y + begin * n_dim, rows, n_dim, k_dim,
            pool);
  }
}

template void GroupedGateUpSilu<float>(const float*, const float*, const int32_t*, int32_t,
                                       int64_t, int64_t, float*, float*, ThreadPool*);
template void GroupedGateUpSilu<uint16_t>(const float*, const uint16_t*, const int32_t*, int32_t,
                                          int64_t, int64_t, float*, float*, ThreadPool*);
template void GroupedLinear<float>(const float*, const float*, const int32_t*, int32_t, int64_t,
                                   int64_t, float*, ThreadPool*);
template void GroupedLinear<uint16_t>(const float*, const uint16_t*, const int32_t*, int32_t,
                                      int64_t, int64_t, float*, ThreadPool*);

void MoeUnpermute(const float* y, const int32_t* pair_rows, const float* weights, int64_t n,
                  int32_t k, int64_t dim, float scale, bool accumulate, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    float* o = out + t * dim;
    if (!accumulate) std::fill(o, o + dim, 0.0f);
    for (int32_t j = 0; j < k; ++j) {
      const float w = weights == nullptr ? scale : scale * weights[t * k + j];
      const float* row = y + int64_t{pair_rows[t * k + j]} * dim;
      for (int64_t i = 0; i < dim; ++i) o[i] += w * row[i];
    }
  }
}

}  // namespace moeserve::cpu
