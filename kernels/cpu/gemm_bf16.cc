#include "kernels/cpu/gemm_bf16.h"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>
#include <vector>

#include "common/logging.h"

// The SIMD kernel is written once on GCC/Clang vector extensions and compiled three
// times: inside functions carrying target("avx512f,fma") or target("avx2,fma"), and for the
// baseline. Every function taking or returning a vector is always_inline into one of those
// entry points, so no vector crosses a call and the compilers' notes about the vector ABI
// are moot.
#if defined(__GNUC__)  // GCC and Clang
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#define MOESERVE_BF16_INLINE inline __attribute__((always_inline))

namespace moeserve::cpu {
namespace {

// L lanes of f32, and of the 32-bit words that hold two bf16 each.
template <int L>
struct Vec {
  typedef float F __attribute__((vector_size(4 * L)));
  typedef uint32_t U __attribute__((vector_size(4 * L)));
};

template <int L, typename T>
MOESERVE_BF16_INLINE typename Vec<L>::F LoadF(const T* p) {
  typename Vec<L>::F v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// bf16 is the high half of an f32, so widening is exact and cheap: 2L weights loaded as L
// 32-bit words give their even elements as word << 16 and their odd elements as the word
// with its low half cleared, one integer op each and no cross-lane shuffle. A dot product
// does not care about order, so x is permuted once per call to match (PermuteX).
template <int L>
MOESERVE_BF16_INLINE void LoadWidened(const uint16_t* p, typename Vec<L>::F& even,
                                      typename Vec<L>::F& odd) {
  typename Vec<L>::U u;
  std::memcpy(&u, p, sizeof(u));
  even = std::bit_cast<typename Vec<L>::F>(u << 16);
  odd = std::bit_cast<typename Vec<L>::F>(u & 0xffff0000u);
}

inline float Widen(uint16_t b) { return std::bit_cast<float>(uint32_t{b} << 16); }

// xp[i, c * 2L + j] = x[i, c * 2L + 2j] and xp[i, c * 2L + L + j] = x[i, c * 2L + 2j + 1]
// for j < L, zero past k. x: [m, k]; xp: [m, kp], kp = k rounded up to 2L.
void PermuteX(const float* x, int64_t m, int64_t k, int64_t lanes, float* xp) {
  const int64_t kp = (k + 2 * lanes - 1) / (2 * lanes) * (2 * lanes);
  for (int64_t i = 0; i < m; ++i) {
    const float* src = x + i * k;
    float* dst = xp + i * kp;
    for (int64_t c = 0; c < kp; c += 2 * lanes) {
      for (int64_t j = 0; j < lanes; ++j) {
        const int64_t e = c + 2 * j;
        dst[c + j] = e < k ? src[e] : 0.0f;
        dst[c + lanes + j] = e + 1 < k ? src[e + 1] : 0.0f;
      }
    }
  }
}

// Horizontal sums of L vectors at once, as a tree. Before a level, each vector holds L / G
// outputs of G partial sums each; a level folds pairs (a, b) into one vector holding the
// 2L / G outputs of a then b, G / 2 partial sums each. Source lane of output lane t:
constexpr int FoldSource(int lanes, int group, int t, int second_half) {
  const int half = group / 2, groups = lanes / group;
  const int q = t / half, r = t % half;
  const int base = q < groups ? q * group : lanes + (q - groups) * group;
  return base + r + second_half * half;
}

template <int L, int G, size_t... T>
MOESERVE_BF16_INLINE typename Vec<L>::F Fold(const typename Vec<L>::F& a,
                                             const typename Vec<L>::F& b,
                                             std::index_sequence<T...>) {
  return __builtin_shufflevector(a, b, FoldSource(L, G, T, 0)...) +
         __builtin_shufflevector(a, b, FoldSource(L, G, T, 1)...);
}

// v: L vectors; afterwards lane t of v[0] is the sum of the lanes of the old v[t].
template <int L, int G = L>
MOESERVE_BF16_INLINE void ReduceLanes(typename Vec<L>::F* v) {
  constexpr int kCount = G;  // vectors entering this level, L / G outputs each
#pragma GCC unroll 16
  for (int i = 0; i < kCount / 2; ++i) {
    v[i] = Fold<L, G>(v[2 * i], v[2 * i + 1], std::make_index_sequence<L>());
  }
  if constexpr (G > 2) ReduceLanes<L, G / 2>(v);
}

// acc[i * NR + j] += x[i] · w[j] over one chunk of 2L weights at p (x) and q (w): the even
// elements, then the odd ones, so only MR vectors of x are live at a time (AVX2 has 16
// registers; the second load of w hits L1).
template <int L, int MR>
MOESERVE_BF16_INLINE void Step(const float* const* x, int64_t p, const uint16_t* const* w,
                               int64_t q, typename Vec<L>::F* acc) {
  using F = typename Vec<L>::F;
  constexpr int kNr = L / MR;
#pragma GCC unroll 2
  for (int half = 0; half < 2; ++half) {
    F xv[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) xv[i] = LoadF<L>(x[i] + p + half * L);
#pragma GCC unroll 16
    for (int j = 0; j < kNr; ++j) {
      F even, odd;
      LoadWidened<L>(w[j] + q, even, odd);
      const F wv = half == 0 ? even : odd;
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) acc[i * kNr + j] += xv[i] * wv;
    }
  }
}

// sums[i * NR + j] = x[i] · w[j] for MR rows of x and NR = L / MR rows of w, so the MR · NR
// accumulators fill exactly one reduction tree. x rows: permuted by PermuteX; w rows: bf16.
template <int L, int MR>
MOESERVE_BF16_INLINE void Tile(const float* const* x, const uint16_t* const* w, int64_t k,
                               float* sums) {
  using F = typename Vec<L>::F;
  constexpr int kNr = L / MR;
  F acc[L] = {};
  int64_t p = 0;
  for (; p + 2 * L <= k; p += 2 * L) Step<L, MR>(x, p, w, p, acc);
  if (p < k) {  // the last k % 2L weights of each row, zero-padded (so is x)
    uint16_t tail[kNr][2 * L] = {};
    const uint16_t* tails[kNr];
    for (int j = 0; j < kNr; ++j) {
      std::memcpy(tail[j], w[j] + p, (k - p) * sizeof(uint16_t));
      tails[j] = tail[j];
    }
    Step<L, MR>(x, p, tails, 0, acc);
  }
  ReduceLanes<L>(acc);
  std::memcpy(sums, &acc[0], sizeof(F));
}

// Tile<L, MR> for rows [i, i + MR) of x against the L rows of w starting at output column
// j0, of which the first `valid` are real (the others repeat the last row).
template <int L, int MR>
MOESERVE_BF16_INLINE void TileRow(const float* xp, int64_t kp, int64_t i, int64_t k,
                                  const uint16_t* const* w, float* y, int64_t n, int64_t j0,
                                  int64_t valid, float beta) {
  constexpr int kNr = L / MR;
  const float* xr[MR];
  for (int r = 0; r < MR; ++r) xr[r] = xp + (i + r) * kp;
  for (int jb = 0; jb < valid; jb += kNr) {
    float sums[L];
    Tile<L, MR>(xr, w + jb, k, sums);
    for (int r = 0; r < MR; ++r) {
      float* yr = y + (i + r) * n + j0 + jb;
      for (int c = 0; c < kNr && jb + c < valid; ++c) {
        yr[c] = beta == 0.0f ? sums[r * kNr + c] : sums[r * kNr + c] + beta * yr[c];
      }
    }
  }
}

struct Problem {
  const float* x;     // [m, k]
  const uint16_t* w;  // [n, k] bf16
  float* y;           // [m, n]
  int64_t m, n, k;
  float beta;
  const float* xp;  // [m, kp]: x permuted by PermuteX for the ISA's lane count
  int64_t kp;
};

// Bytes of x kept in L2 while blocks of w pass over them.
constexpr int64_t kXPanelBytes = int64_t{256} << 10;

// Output columns [begin, end) in blocks of L rows of w (L1-sized). Each block meets a panel
// of x rows (L2-sized) before the next block is read, so w is read from memory once per
// panel: once per call for decode batches (32 rows of k = 2048 fill a panel).
template <int L>
MOESERVE_BF16_INLINE void KernelColumns(const Problem& p, int64_t begin, int64_t end) {
  // With 8 lanes, 2 x rows by 4 w rows ran 1.5x faster than 4 by 2 at m = 32: each load of x
  // (from L2 once x outgrows L1) then feeds 4 multiply-adds, as with 16 lanes at 4 by 4.
  constexpr int kMaxMr = L >= 16 ? 4 : 2;
  const int64_t panel =
      std::max<int64_t>(kMaxMr, kXPanelBytes / (p.kp * int64_t{sizeof(float)}) / 4 * 4);
  for (int64_t i0 = 0; i0 < p.m; i0 += panel) {
    const int64_t i1 = std::min(p.m, i0 + panel);
    for (int64_t j0 = begin; j0 < end; j0 += L) {
      const int64_t valid = std::min<int64_t>(L, end - j0);
      const uint16_t* rows[L];
      for (int r = 0; r < L; ++r) rows[r] = p.w + std::min(j0 + r, end - 1) * p.k;
      int64_t i = i0;
      if constexpr (kMaxMr == 4) {
        for (; i + 4 <= i1; i += 4) {
          TileRow<L, 4>(p.xp, p.kp, i, p.k, rows, p.y, p.n, j0, valid, p.beta);
        }
      }
      for (; i + 2 <= i1; i += 2) {
        TileRow<L, 2>(p.xp, p.kp, i, p.k, rows, p.y, p.n, j0, valid, p.beta);
      }
      if (i < i1) TileRow<L, 1>(p.xp, p.kp, i, p.k, rows, p.y, p.n, j0, valid, p.beta);
    }
  }
}

#if defined(__x86_64__) || defined(__i386__)
#define MOESERVE_BF16_X86 1
__attribute__((target("avx512f,fma"))) void ColumnsAvx512(const Problem& p, int64_t begin,
                                                          int64_t end) {
  KernelColumns<16>(p, begin, end);
}
__attribute__((target("avx2,fma"))) void ColumnsAvx2(const Problem& p, int64_t begin, int64_t end) {
  KernelColumns<8>(p, begin, end);
}
#endif
void ColumnsPortable(const Problem& p, int64_t begin, int64_t end) {
  KernelColumns<4>(p, begin, end);
}

// Without AVX-512, from this many rows of x OpenBLAS (its AVX2 kernels) on widened panels of
// w beat the AVX2 kernel by ~10% at m = 256 (docs/PERFORMANCE.md); with AVX-512 the SIMD
// kernel won at every m measured, by 3x at m = 256.
constexpr int64_t kBlasMinRows = 64;

int Lanes(Bf16GemmKernel kernel) {
  switch (kernel) {
    case Bf16GemmKernel::kAvx512:
      return 16;
    case Bf16GemmKernel::kAvx2:
      return 8;
    default:
      return 4;
  }
}

// Rows of w widened per OpenBLAS call: [kPanelRows, k] f32 stays in L2 for common k.
constexpr int64_t kPanelRows = 128;

// Per-thread buffer; grows to the largest call seen. One use per call and thread: the
// permuted x of the SIMD kernels (calling thread) or the panels of the OpenBLAS path.
float* Scratch(size_t floats) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer.data();
}

void BlasColumns(const Problem& p, int64_t begin, int64_t end) {
  float* panel = Scratch(kPanelRows * p.k);
  for (int64_t j0 = begin; j0 < end; j0 += kPanelRows) {
    const int64_t rows = std::min(kPanelRows, end - j0);
    const uint16_t* src = p.w + j0 * p.k;
    for (int64_t q = 0; q < rows * p.k; ++q) panel[q] = Widen(src[q]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(p.m),
                static_cast<blasint>(rows), static_cast<blasint>(p.k), 1.0f, p.x,
                static_cast<blasint>(p.k), panel, static_cast<blasint>(p.k), p.beta, p.y + j0,
                static_cast<blasint>(p.n));
  }
}

void Columns(const Problem& p, Bf16GemmKernel kernel, int64_t begin, int64_t end) {
  switch (kernel) {
#ifdef MOESERVE_BF16_X86
    case Bf16GemmKernel::kAvx512:
      ColumnsAvx512(p, begin, end);
      return;
    case Bf16GemmKernel::kAvx2:
      ColumnsAvx2(p, begin, end);
      return;
#endif
    case Bf16GemmKernel::kWidenBlas:
      BlasColumns(p, begin, end);
      return;
    default:
      ColumnsPortable(p, begin, end);
  }
}

// The widest SIMD kernel this CPU runs.
Bf16GemmKernel BestSimdKernel() {
  static const Bf16GemmKernel best = [] {
    for (Bf16GemmKernel kernel : {Bf16GemmKernel::kAvx512, Bf16GemmKernel::kAvx2}) {
      if (Bf16GemmKernelSupported(kernel)) return kernel;
    }
    return Bf16GemmKernel::kPortable;
  }();
  return best;
}

}  // namespace

bool Bf16GemmKernelSupported(Bf16GemmKernel kernel) {
  switch (kernel) {
#ifdef MOESERVE_BF16_X86
    case Bf16GemmKernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    case Bf16GemmKernel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    case Bf16GemmKernel::kAvx512:
    case Bf16GemmKernel::kAvx2:
      return false;
#endif
    default:
      return true;
  }
}

Bf16GemmKernel ChooseBf16GemmKernel(int64_t m) {
  const Bf16GemmKernel simd = BestSimdKernel();
  return simd == Bf16GemmKernel::kAvx512 || m < kBlasMinRows ? simd : Bf16GemmKernel::kWidenBlas;
}

const char* Bf16GemmKernelName(Bf16GemmKernel kernel) {
  switch (kernel) {
    case Bf16GemmKernel::kAuto:
      return "auto";
    case Bf16GemmKernel::kAvx512:
      return "avx512";
    case Bf16GemmKernel::kAvx2:
      return "avx2";
    case Bf16GemmKernel::kPortable:
      return "portable";
    case Bf16GemmKernel::kWidenBlas:
      return "widen+openblas";
  }
  return "?";
}

void GemmBf16(const float* x, const uint16_t* w, float* y, int64_t m, int64_t n, int64_t k,
              float beta, ThreadPool* pool, Bf16GemmKernel kernel) {
  if (kernel == Bf16GemmKernel::kAuto) kernel = ChooseBf16GemmKernel(m);
  CHECK(Bf16GemmKernelSupported(kernel));
  if (m <= 0 || n <= 0) return;
  Problem p{x, w, y, m, n, k, beta, nullptr, 0};
  if (kernel != Bf16GemmKernel::kWidenBlas) {
    const int64_t lanes = Lanes(kernel);
    p.kp = (k + 2 * lanes - 1) / (2 * lanes) * (2 * lanes);
    float* xp = Scratch(m * p.kp);  // the calling thread's; workers only read it
    PermuteX(x, m, k, lanes, xp);
    p.xp = xp;
  }
  // Below ~64K multiply-adds per thread the hand-off costs more than it saves.
  if (pool == nullptr || pool->num_threads() == 1 || m * n * k < (int64_t{1} << 17)) {
    Columns(p, kernel, 0, n);
    return;
  }
  // Column slices in multiples of 16: whole blocks of the widest kernel per thread.
  const int64_t threads = pool->num_threads();
  const int64_t slice = std::max<int64_t>(16, (n / threads + 15) / 16 * 16);
  const int64_t slices = (n + slice - 1) / slice;
  pool->ParallelFor(slices, 1, [&](int64_t first, int64_t last) {
    for (int64_t s = first; s < last; ++s) {
      Columns(p, kernel, s * slice, std::min(n, (s + 1) * slice));
    }
  });
}

}  // namespace moeserve::cpu
