#include "kernels/cuda/attention.h"

#include <climits>
#include <cmath>
#include <cstdint>

#include "kernels/attention_plan.h"
#include "kernels/cuda/device_math.cuh"

namespace moeserve::cuda {
namespace {

constexpr int kKeyTile = 32;  // one key per lane in the softmax step
constexpr int kThreads = 128;

struct KernelArgs {
  const void* q;
  const void* k_cache;
  const void* v_cache;
  void* out;
  const attention::SeqInfo* seqs;
  const attention::WorkItem* work;
  const int32_t* tables;
  int32_t tokens_per_tile;
  int32_t split_keys;
  bool split;            // write partials (see below) instead of out
  float* partial_acc;    // [splits, total_tokens * num_heads, hd], unnormalised
  float* partial_stats;  // [splits, total_tokens * num_heads, 2]: running max, denominator
  int64_t total_rows;    // total_tokens * num_heads
  int32_t num_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  int32_t block_size;
  float scale;
};

// Loads keys [key0, key0 + kKeyTile) of one kv head into tile[kKeyTile][hd + 1] as f32
// (the +1 keeps the per-key rows on different banks); keys past num_keys read as zero.
template <typename T>
__device__ void LoadKvTile(const T* cache, const int32_t* table, int key0, int num_keys,
                           const KernelArgs& a, int kv_head, float* tile) {
  const int hd = a.head_dim;
  const int64_t kv_width = int64_t{a.num_kv_heads} * hd;
  for (int idx = threadIdx.x; idx < kKeyTile * hd; idx += blockDim.x) {
    const int j = idx / hd, d = idx - j * hd;
    const int key = key0 + j;
    float v = 0.0f;
    if (key < num_keys) {
      const int64_t slot = int64_t{table[key / a.block_size]} * a.block_size + key % a.block_size;
      v = ToF32(cache[slot * kv_width + int64_t{kv_head} * hd + d]);
    }
    tile[j * (hd + 1) + d] = v;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) PagedAttentionKernel(KernelArgs a) {
  const attention::WorkItem item = a.work[blockIdx.x];
  const attention::SeqInfo seq = a.seqs[item.seq];
  const int kv_head = blockIdx.y;
  const int group = a.num_heads / a.num_kv_heads;
  const int hd = a.head_dim;
  const int rows = a.tokens_per_tile * group;  // query rows r = token_in_tile * group + g
  const int num_tokens = min(a.tokens_per_tile, seq.num_tokens - item.token_start);
  const int first_pos = seq.context_len - seq.num_tokens + item.token_start;
  const int num_keys = first_pos + num_tokens;      // what the tile's last token sees
  const int key_begin = blockIdx.z * a.split_keys;  // this block's key split
  const int key_end = min(num_keys, key_begin + a.split_keys);
  const int32_t* table = a.tables + seq.table_begin;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;

  extern __shared__ float smem[];
  float* q_s = smem;                        // [rows][hd], pre-scaled
  float* acc_s = q_s + rows * hd;           // [rows][hd]
  float* kv_s = acc_s + rows * hd;          // [kKeyTile][hd + 1]
  float* p_s = kv_s + kKeyTile * (hd + 1);  // [rows][kKeyTile]: scores, then probabilities
  float* max_s = p_s + rows * kKeyTile;     // [rows] running maximum
  float* sum_s = max_s + rows;              // [rows] running denominator
  float* corr_s = sum_s + rows;             // [rows] this tile's rescale of acc

  const T* q = static_cast<const T*>(a.q);
  for (int idx = threadIdx.x; idx < rows * hd; idx += blockDim.x) {
    const int r = idx / hd, d = idx - r * hd;
    const int t = r / group, head = kv_head * group + r % group;
    const int64_t row = seq.token_begin + item.token_start + t;
    q_s[idx] = t < num_tokens ? ToF32(q[(row * a.num_heads + head) * hd + d]) * a.scale : 0.0f;
    acc_s[idx] = 0.0f;
  }
  for (int r = threadIdx.x; r < rows; r += blockDim.x) {
    max_s[r] = -INFINITY;
    sum_s[r] = 0.0f;
  }

  for (int key0 = key_begin; key0 < key_end; key0 += kKeyTile) {
    __syncthreads();  // q_s ready; the previous tile's acc update is done with kv_s
    LoadKvTile(static_cast<const T*>(a.k_cache), table, key0, key_end, a, kv_head, kv_s);
    __syncthreads();
    for (int idx = threadIdx.x; idx < rows * kKeyTile; idx += blockDim.x) {
      const int r = idx / kKeyTile, j = idx - r * kKeyTile;
      const int t = r / group;
      float s = -INFINITY;
      if (t < num_tokens && key0 + j <= first_pos + t && key0 + j < key_end) {
        const float* qr = q_s + r * hd;
        const float* kr = kv_s + j * (hd + 1);
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) dot = fmaf(qr[d], kr[d], dot);
        s = dot;
      }
      p_s[idx] = s;
    }
    __syncthreads();
    for (int r = warp; r < rows; r += warps) {
      const float s = p_s[r * kKeyTile + lane];
      const float old_max = max_s[r];
      const float new_max = fmaxf(old_max, WarpMax(s));
      const bool none = new_max == -INFINITY;  // absent token row: nothing to weigh
      const float p = none ? 0.0f : expf(s - new_max);
      const float tile_sum = WarpSum(p);
      p_s[r * kKeyTile + lane] = p;
      if (lane == 0) {
        const float corr = none ? 1.0f : expf(old_max - new_max);
        corr_s[r] = corr;
        sum_s[r] = sum_s[r] * corr + tile_sum;
        max_s[r] = new_max;
      }
    }
    __syncthreads();  // scores read; kv_s free for the values
    LoadKvTile(static_cast<const T*>(a.v_cache), table, key0, key_end, a, kv_head, kv_s);
    __syncthreads();
    for (int idx = threadIdx.x; idx < rows * hd; idx += blockDim.x) {
      const int r = idx / hd, d = idx - r * hd;
      const float* pr = p_s + r * kKeyTile;
      float acc = acc_s[idx] * corr_s[r];
      for (int j = 0; j < kKeyTile; ++j) acc = fmaf(pr[j], kv_s[j * (hd + 1) + d], acc);
      acc_s[idx] = acc;
    }
  }
  __syncthreads();
  T* out = static_cast<T*>(a.out);
  for (int idx = threadIdx.x; idx < rows * hd; idx += blockDim.x) {
    const int r = idx / hd, d = idx - r * hd;
    const int t = r / group, head = kv_head * group + r % group;
    if (t >= num_tokens) continue;
    const int64_t row = seq.token_begin + item.token_start + t;
    const int64_t out_row = row * a.num_heads + head;
    if (!a.split) {
      out[out_row * hd + d] = FromF32<T>(acc_s[idx] / sum_s[r]);
      continue;
    }
    // A split with no key for this row leaves max -inf, denominator 0 and acc 0.
    const int64_t part_row = blockIdx.z * a.total_rows + out_row;
    a.partial_acc[part_row * hd + d] = acc_s[idx];
    if (d == 0) {
      a.partial_stats[2 * part_row] = max_s[r];
      a.partial_stats[2 * part_row + 1] = sum_s[r];
    }
  }
}

// One block per (token, head): out = sum_s acc_s * e^(m_s - M) / sum_s l_s * e^(m_s - M),
// M the largest m_s. Split 0 always holds key 0, so M is finite.
template <typename T>
__global__ void MergeSplitsKernel(const float* partial_acc, const float* partial_stats,
                                  int32_t num_splits, int64_t total_rows, int32_t hd, T* out) {
  const int64_t row = blockIdx.x;
  float global_max = -INFINITY;
  for (int s = 0; s < num_splits; ++s) {
    global_max = fmaxf(global_max, partial_stats[2 * (s * total_rows + row)]);
  }
  float denom = 0.0f;
  for (int s = 0; s < num_splits; ++s) {
    const float* st = partial_stats + 2 * (s * total_rows + row);
    denom += st[1] * expf(st[0] - global_max);
  }
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = 0.0f;
    for (int s = 0; s < num_splits; ++s) {
      const float m = partial_stats[2 * (s * total_rows + row)];
      acc += partial_acc[(s * total_rows + row) * hd + d] * expf(m - global_max);
    }
    out[row * hd + d] = FromF32<T>(acc / denom);
  }
}

}  // namespace

void PagedAttention(const PagedAttentionArgs& args, Stream stream) {
  if (args.num_work == 0) return;
  const int64_t group = args.num_heads / args.num_kv_heads;
  const int64_t rows = args.tokens_per_tile * group;
  const int64_t hd = args.head_dim;
  const size_t smem =
      sizeof(float) * (2 * rows * hd + kKeyTile * (hd + 1) + rows * kKeyTile + 3 * rows);
  const bool split = args.num_splits > 1;
  const int64_t total_rows = args.total_tokens * args.num_heads;
  float* partial_acc = static_cast<float*>(args.workspace);
  KernelArgs a{args.q,
               args.k_cache,
               args.v_cache,
               args.out,
               reinterpret_cast<const attention::SeqInfo*>(args.plan),
               reinterpret_cast<const attention::WorkItem*>(args.plan + 4 * int64_t{args.num_seqs}),
               args.plan + 4 * int64_t{args.num_seqs} + 2 * int64_t{args.num_work},
               args.tokens_per_tile,
               split ? args.split_keys : INT32_MAX,
               split,
               partial_acc,
               partial_acc + total_rows * args.num_splits * hd,
               total_rows,
               static_cast<int32_t>(args.num_heads),
               static_cast<int32_t>(args.num_kv_heads),
               static_cast<int32_t>(hd),
               static_cast<int32_t>(args.block_size),
               args.scale};
  const dim3 grid(static_cast<unsigned>(args.num_work), static_cast<unsigned>(args.num_kv_heads),
                  static_cast<unsigned>(args.num_splits));
  MOESERVE_DISPATCH_FLOAT(args.type, T, "PagedAttention", {
    if (smem > 48 * 1024) {
      MOESERVE_CUDA_CHECK(cudaFuncSetAttribute(PagedAttentionKernel<T>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    }
    PagedAttentionKernel<T><<<grid, kThreads, smem, stream>>>(a);
    if (split) {
      MOESERVE_CUDA_CHECK_LAUNCH();
      MergeSplitsKernel<T><<<static_cast<unsigned>(total_rows), 128, 0, stream>>>(
          partial_acc, a.partial_stats, args.num_splits, total_rows, static_cast<int32_t>(hd),
          static_cast<T*>(args.out));
    }
  });
  MOESERVE_CUDA_CHECK_LAUNCH();
}

}  // namespace moeserve::cuda
