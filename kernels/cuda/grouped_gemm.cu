#include "kernels/cuda/grouped_gemm.h"

#include <cstdint>

#include "kernels/cuda/device_math.cuh"
#include "kernels/moe_tiles.h"

namespace moeserve::cuda {
namespace {

// The register-staged kernel steps through k in tiles of kBk with shared rows padded to
// kLds: 80 bytes keep the 8 rows an ldmatrix reads on distinct banks.
constexpr int kBk = 32;
constexpr int kLds = kBk + 8;

// The register-staged kernel (any k_dim): 64 x 64 tiles, 4 warps of 32 x 32.
constexpr int kBm = 64;
constexpr int kBn = 64;
constexpr int kThreads = 128;
constexpr int kChunksPerThread = kBm * kBk / 8 / kThreads;  // 16-byte chunks per operand

// The cp.async kernel (k_dim % 8 == 0, 16-byte aligned operands) keeps a pipeline of
// kStages shared tiles in flight to stream expert weights at full bandwidth; every
// configuration stays under 99 KB of shared memory (sm_86/89 run the sm_80 code).

union Chunk {
  uint4 v;
  uint16_t h[8];
};

__device__ __forceinline__ void LdMatrixX4(uint32_t* r, const void* smem_ptr) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem_ptr));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c += a * b for one m16n8k16 tile, bf16 in, f32 accumulate.
__device__ __forceinline__ void Mma(float* c, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Eight bf16 of one row from column k on; zeros past k_dim or for an absent row. Element
// by element: this path serves k_dim % 8 != 0 or unaligned rows (aligned shapes take the
// cp.async kernel).
__device__ __forceinline__ uint4 LoadChunk(const bf16* row, int64_t k, int64_t k_dim, bool valid) {
  Chunk c;
  c.v = make_uint4(0, 0, 0, 0);
  if (!valid) return c.v;
  const uint16_t* bits = reinterpret_cast<const uint16_t*>(row);
  for (int i = 0; i < 8; ++i) c.h[i] = k + i < k_dim ? bits[k + i] : uint16_t{0};
  return c.v;
}

// 16 bytes global -> shared without a register stage; zero-filled when !valid.
__device__ __forceinline__ void CpAsync16(void* smem_ptr, const void* global_ptr, bool valid) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem_ptr));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(global_ptr),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// Loads the A fragments of MT m16 tiles and the B fragments of NT n8 tiles for one k16
// step from row-major [rows][LDS] shared tiles, and multiplies them into acc.
template <int MT, int NT, int LDS>
__device__ __forceinline__ void MmaStep(const bf16* a_tile, const bf16* b_tile, int kk, int lane,
                                        float (*acc)[NT][4]) {
  uint32_t a_frag[MT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    LdMatrixX4(a_frag[mt], a_tile + (mt * 16 + (lane & 15)) * LDS + kk + (lane >> 4) * 8);
  }
  uint32_t b_frag[NT][2];
#pragma unroll
  for (int np = 0; np < NT / 2; ++np) {
    uint32_t r[4];
    LdMatrixX4(
        r, b_tile + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * LDS + kk + ((lane >> 3) & 1) * 8);
    b_frag[2 * np][0] = r[0];
    b_frag[2 * np][1] = r[1];
    b_frag[2 * np + 1][0] = r[2];
    b_frag[2 * np + 1][1] = r[3];
  }
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) Mma(acc[mt][nt], a_frag[mt], b_frag[nt]);
}

// BM x BN output tiles (BN columns of the gate and the same of up with kGateUp), warps in a
// kWarpsM x kWarpsN grid, k tiles of BK. Dynamic shared memory: kStages x (BM + kMats *
// BN) x (BK + 8) bf16.
template <int BM, int BN, int BK, int kStages, int kWarpsM, int kWarpsN, bool kGateUp, typename O>
__global__ void __launch_bounds__(kWarpsM* kWarpsN * 32)
    GroupedGemmAsyncKernel(GroupedGemmArgs args) {
  constexpr int kAsyncThreads = kWarpsM * kWarpsN * 32;
  constexpr int kMats = kGateUp ? 2 : 1;
  constexpr int WM = BM / kWarpsM, WN = BN / kWarpsN;
  constexpr int MT = WM / 16, NT = WN / 8;
  static_assert(NT % 2 == 0, "B fragments load in pairs of n8 tiles");
  constexpr int LDS = BK + 8;  // 16 bytes of padding keep ldmatrix rows on distinct banks
  constexpr int kChunksRow = BK / 8;
  constexpr int kStageElems = (BM + kMats * BN) * LDS;
  extern __shared__ __align__(16) unsigned char dynamic_smem[];
  bf16* smem = reinterpret_cast<bf16*>(dynamic_smem);
  __shared__ moe::RowTile tile_s;

  if (threadIdx.x == 0) {
    tile_s = moe::FindRowTile(args.offsets, args.num_experts, BM, blockIdx.x);
  }
  __syncthreads();
  const moe::RowTile tile = tile_s;
  if (tile.expert < 0) return;

  const int64_t k_dim = args.k_dim, n_out = args.n_out;
  const int64_t n_w = kGateUp ? 2 * n_out : n_out;
  const int64_t n0 = int64_t{blockIdx.y} * BN;
  const bf16* x = static_cast<const bf16*>(args.x);
  const bf16* w = static_cast<const bf16*>(args.w) + int64_t{tile.expert} * n_w * k_dim;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warp_m = warp / kWarpsN, warp_n = warp % kWarpsN;

  auto issue = [&](int stage, int64_t k0) {
    bf16* a_s = smem + stage * kStageElems;
    bf16* b_s = a_s + BM * LDS;
    for (int c = threadIdx.x; c < BM * kChunksRow; c += kAsyncThreads) {
      const int r = c / kChunksRow, kc = (c % kChunksRow) * 8;
      const int64_t row = tile.row_begin + r;
      const bool valid = row < tile.row_end && k0 + kc < k_dim;
      CpAsync16(a_s + r * LDS + kc, valid ? x + row * k_dim + k0 + kc : x, valid);
    }
    for (int c = threadIdx.x; c < kMats * BN * kChunksRow; c += kAsyncThreads) {
      const int m = c / (BN * kChunksRow), rem = c - m * (BN * kChunksRow);
      const int r = rem / kChunksRow, kc = (rem % kChunksRow) * 8;
      const int64_t n = n0 + r;
      const bool valid = n < n_out && k0 + kc < k_dim;
      const int64_t w_row = m == 0 ? n : n_out + n;
      CpAsync16(b_s + (m * BN + r) * LDS + kc, valid ? w + w_row * k_dim + k0 + kc : w, valid);
    }
  };

  float acc[kMats][MT][NT][4];
#pragma unroll
  for (int m = 0; m < kMats; ++m)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[m][mt][nt][i] = 0.0f;

  // One commit group per k tile, empty past the end, so wait_group counts stay uniform.
  const int64_t num_k = (k_dim + BK - 1) / BK;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_k) issue(s, int64_t{s} * BK);
    CpAsyncCommit();
  }
  for (int64_t kt = 0; kt < num_k; ++kt) {
    CpAsyncWait<kStages - 2>();  // tile kt has landed (this thread's part) ...
    __syncthreads();             // ... and everyone's; stage (kt - 1) is free again
    const int64_t next = kt + kStages - 1;
    if (next < num_k) issue(static_cast<int>(next % kStages), next * BK);
    CpAsyncCommit();
    const bf16* a_s = smem + (kt % kStages) * kStageElems;
    const bf16* b_s = a_s + BM * LDS;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
#pragma unroll
      for (int m = 0; m < kMats; ++m) {
        MmaStep<MT, NT, LDS>(a_s + warp_m * WM * LDS, b_s + (m * BN + warp_n * WN) * LDS, kk, lane,
                             acc[m]);
      }
    }
  }
  CpAsyncWait<0>();

  O* out = static_cast<O*>(args.out);
  const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t row = tile.row_begin + warp_m * WM + mt * 16 + g + half * 8;
      if (row >= tile.row_end) continue;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int64_t col = n0 + warp_n * WN + nt * 8 + t4 * 2 + c;
          if (col >= n_out) continue;
          float v = acc[0][mt][nt][half * 2 + c];
          if constexpr (kGateUp) v = Silu(v) * acc[kMats - 1][mt][nt][half * 2 + c];
          out[row * n_out + col] = FromF32<O>(v);
        }
      }
    }
  }
}

template <bool kGateUp, typename O>
__global__ void __launch_bounds__(kThreads) GroupedGemmKernel(GroupedGemmArgs args) {
  constexpr int kMats = kGateUp ? 2 : 1;  // weight operands: gate (or w), up
  __shared__ alignas(16) bf16 a_s[2][kBm][kLds];
  __shared__ alignas(16) bf16 b_s[2][kMats][kBn][kLds];
  __shared__ moe::RowTile tile_s;

  if (threadIdx.x == 0) {
    tile_s = moe::FindRowTile(args.offsets, args.num_experts, kBm, blockIdx.x);
  }
  __syncthreads();
  const moe::RowTile tile = tile_s;
  if (tile.expert < 0) return;

  const int64_t k_dim = args.k_dim, n_out = args.n_out;
  const int64_t n_w = kGateUp ? 2 * n_out : n_out;
  const int64_t n0 = int64_t{blockIdx.y} * kBn;
  const bf16* x = static_cast<const bf16*>(args.x);
  const bf16* w = static_cast<const bf16*>(args.w) + int64_t{tile.expert} * n_w * k_dim;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warp_m = warp >> 1, warp_n = warp & 1;

  uint4 a_reg[kChunksPerThread];
  uint4 b_reg[kMats][kChunksPerThread];
  auto load = [&](int64_t k0) {
#pragma unroll
    for (int i = 0; i < kChunksPerThread; ++i) {
      const int c = threadIdx.x + i * kThreads;
      const int r = c >> 2, kc = (c & 3) * 8;
      const int64_t row = tile.row_begin + r;
      a_reg[i] = LoadChunk(x + row * k_dim, k0 + kc, k_dim, row < tile.row_end);
      const int64_t n = n0 + r;
#pragma unroll
      for (int m = 0; m < kMats; ++m) {
        const int64_t w_row = m == 0 ? n : n_out + n;
        b_reg[m][i] = LoadChunk(w + w_row * k_dim, k0 + kc, k_dim, n < n_out);
      }
    }
  };
  auto store = [&](int buf) {
#pragma unroll
    for (int i = 0; i < kChunksPerThread; ++i) {
      const int c = threadIdx.x + i * kThreads;
      const int r = c >> 2, kc = (c & 3) * 8;
      *reinterpret_cast<uint4*>(&a_s[buf][r][kc]) = a_reg[i];
#pragma unroll
      for (int m = 0; m < kMats; ++m) *reinterpret_cast<uint4*>(&b_s[buf][m][r][kc]) = b_reg[m][i];
    }
  };

  float acc[kMats][2][4][4];
#pragma unroll
  for (int m = 0; m < kMats; ++m)
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[m][mt][nt][i] = 0.0f;

  // Two shared buffers and a register stage: the next tile's global loads are in flight
  // while this one is multiplied; one barrier per step suffices (see the store order).
  const int64_t num_k = (k_dim + kBk - 1) / kBk;
  load(0);
  for (int64_t kt = 0; kt < num_k; ++kt) {
    const int buf = static_cast<int>(kt & 1);
    store(buf);
    __syncthreads();
    if (kt + 1 < num_k) load((kt + 1) * kBk);
#pragma unroll
    for (int kk = 0; kk < kBk; kk += 16) {
      uint32_t a_frag[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        LdMatrixX4(a_frag[mt],
                   &a_s[buf][warp_m * 32 + mt * 16 + (lane & 15)][kk + (lane >> 4) * 8]);
      }
#pragma unroll
      for (int m = 0; m < kMats; ++m) {
        uint32_t b_frag[4][2];
#pragma unroll
        for (int np = 0; np < 2; ++np) {
          uint32_t r[4];
          LdMatrixX4(r, &b_s[buf][m][warp_n * 32 + np * 16 + (lane & 7) + ((lane >> 4) << 3)]
                            [kk + ((lane >> 3) & 1) * 8]);
          b_frag[2 * np][0] = r[0];
          b_frag[2 * np][1] = r[1];
          b_frag[2 * np + 1][0] = r[2];
          b_frag[2 * np + 1][1] = r[3];
        }
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
          for (int nt = 0; nt < 4; ++nt) Mma(acc[m][mt][nt], a_frag[mt], b_frag[nt]);
      }
    }
  }

  // Accumulator layout of m16n8: c0, c1 at (lane / 4, 2 * (lane % 4) + {0, 1}); c2, c3 eight
  // rows below.
  O* out = static_cast<O*>(args.out);
  const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t row = tile.row_begin + warp_m * 32 + mt * 16 + g + half * 8;
      if (row >= tile.row_end) continue;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int64_t col = n0 + warp_n * 32 + nt * 8 + t4 * 2 + c;
          if (col >= n_out) continue;
          const float v0 = acc[0][mt][nt][half * 2 + c];
          float v = v0;
          if constexpr (kGateUp) v = Silu(v0) * acc[kMats - 1][mt][nt][half * 2 + c];
          out[row * n_out + col] = FromF32<O>(v);
        }
      }
    }
  }
}

template <bool kGateUp>
void Launch(const GroupedGemmArgs& args, Stream stream) {
  const int64_t row_tiles = moe::MaxRowTiles(args.rows, args.num_experts, kBm);
  const dim3 grid(static_cast<unsigned>(row_tiles), CeilDiv(args.n_out, kBn));
  MOESERVE_DISPATCH_FLOAT(args.out_type, O, "GroupedGemm",
                          { GroupedGemmKernel<kGateUp, O><<<grid, kThreads, 0, stream>>>(args); });
}

template <int BM, int BN, int BK, int kStages, int kWarpsM, int kWarpsN, bool kGateUp>
void LaunchAsync(const GroupedGemmArgs& args, Stream stream) {
  constexpr int kMats = kGateUp ? 2 : 1;
  constexpr size_t kSmem = sizeof(bf16) * kStages * (BM + kMats * BN) * (BK + 8);
  const int64_t row_tiles = moe::MaxRowTiles(args.rows, args.num_experts, BM);
  const dim3 grid(static_cast<unsigned>(row_tiles), CeilDiv(args.n_out, BN));
  MOESERVE_DISPATCH_FLOAT(args.out_type, O, "GroupedGemm", {
    auto* kernel = GroupedGemmAsyncKernel<BM, BN, BK, kStages, kWarpsM, kWarpsN, kGateUp, O>;
    static const bool configured = [&] {
      MOESERVE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(kSmem)));
      return true;
    }();
    (void)configured;
    kernel<<<grid, kWarpsM * kWarpsN * 32, kSmem, stream>>>(args);
  });
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

void GroupedGemm(const GroupedGemmArgs& args, Stream stream) {
  if (args.rows == 0 || args.n_out == 0) return;
  const bool vec = args.k_dim % 8 == 0 && Aligned16(args.x) && Aligned16(args.w);
  // Few rows per expert (decode, small batches): memory-bound on the weights, so 64-row
  // tiles and 64-wide k tiles (128 contiguous bytes per weight row and step); many rows:
  // 128-row tiles reuse each weight tile twice as often.
  const bool large = args.rows >= 64 * int64_t{args.num_experts};
  if (!vec) {
    args.gate_up_silu ? Launch<true>(args, stream) : Launch<false>(args, stream);
  } else if (args.gate_up_silu) {
    large ? LaunchAsync<128, 64, 32, 4, 4, 2, true>(args, stream)
          : LaunchAsync<64, 64, 64, 3, 2, 2, true>(args, stream);
  } else {
    large ? LaunchAsync<128, 128, 32, 4, 2, 4, false>(args, stream)
          : LaunchAsync<64, 64, 64, 3, 2, 2, false>(args, stream);
  }
  MOESERVE_CUDA_CHECK_LAUNCH();
}

}  // namespace moeserve::cuda
