// CUDA paged attention against the CPU backend: batches mixing a fresh prefill, a chunked
// prefill over a cached prefix, long and length-1 decodes, with scattered block tables and
// several GQA group sizes and head dims. Batches of few blocks over long contexts take the
// split-KV path (kernels/attention_plan.h PlanKeySplits), the others the single pass.
#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/absl_strings.h"
#include "gtest/gtest.h"
#include "tests/gpu/gpu_test_util.h"

namespace moeserve::gputest {
namespace {

using CudaAttentionTest = GpuTest;

struct SeqSpec {
  int32_t num_tokens;
  int32_t context_len;
};

struct Case {
  int64_t heads, kv_heads, head_dim, block_size;
  DType type;
  std::vector<SeqSpec> seqs;
};

void RunCase(GpuTest* test, CudaBackend& gpu, CpuBackend& cpu, const Case& c, uint32_t seed) {
  int64_t total_tokens = 0, total_blocks = 0;
  for (const SeqSpec& s : c.seqs) {
    total_tokens += s.num_tokens;
    total_blocks += (s.context_len + c.block_size - 1) / c.block_size;
  }
  const int64_t num_blocks = total_blocks + 3;  // a few blocks nobody owns
  // Scattered physical blocks: a shuffled pool.
  std::vector<int32_t> pool(num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), std::mt19937(seed));
  std::vector<std::vector<int32_t>> tables;
  std::vector<BatchSequence> batch;
  int64_t next_block = 0, token_begin = 0;
  for (const SeqSpec& s : c.seqs) {
    const int64_t blocks = (s.context_len + c.block_size - 1) / c.block_size;
    tables.emplace_back(pool.begin() + next_block, pool.begin() + next_block + blocks);
    next_block += blocks;
  }
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    batch.push_back({static_cast<int32_t>(token_begin), c.seqs[i].num_tokens, c.seqs[i].context_len,
                     tables[i].data()});
    token_begin += c.seqs[i].num_tokens;
  }
  const int64_t cache_elems = num_blocks * c.block_size * c.kv_heads * c.head_dim;
  std::vector<float> k_cache = RandomBf16(cache_elems, seed + 1);
  std::vector<float> v_cache = RandomBf16(cache_elems, seed + 2);
  std::vector<float> q = RandomBf16(total_tokens * c.heads * c.head_dim, seed + 3, 2.0f);
  const AttentionParams params{c.heads, c.kv_heads, c.head_dim, c.block_size,
                               1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  std::vector<float> want(q.size());
  cpu.PagedAttention(Host(q, {total_tokens, c.heads, c.head_dim}),
                     Host(k_cache, {num_blocks, c.block_size, c.kv_heads, c.head_dim}),
                     Host(v_cache, {num_blocks, c.block_size, c.kv_heads, c.head_dim}), batch,
                     params, Host(want, {total_tokens, c.heads, c.head_dim}));

  DeviceTensor d_q = Upload(q, c.type, {total_tokens, c.heads, c.head_dim});
  DeviceTensor d_k = Upload(k_cache, c.type, {num_blocks, c.block_size, c.kv_heads, c.head_dim});
  DeviceTensor d_v = Upload(v_cache, c.type, {num_blocks, c.block_size, c.kv_heads, c.head_dim});
  DeviceTensor d_out = Poisoned(c.type, {total_tokens, c.heads, c.head_dim});
  gpu.PagedAttention(d_q.t, d_k.t, d_v.t, batch, params, d_out.t);
  std::string shape = Cat("h", c.heads, "/", c.kv_heads, " hd", c.head_dim, " bs", c.block_size,
                          " ", DTypeName(c.type), " seqs");
  for (const SeqSpec& s : c.seqs) CatAppend(&shape, " ", s.num_tokens, "/", s.context_len);
  const double tol = c.type == DType::kF32 ? 1e-5 : kBf16Tol;
  EXPECT_LE(Report("PagedAttention", shape, NormalisedError(Download(gpu, d_out.t), want)), tol);
}

TEST_F(CudaAttentionTest, MixedPrefillChunksAndDecodesMatchCpu) {
  // num_tokens / context_len: fresh prefill, chunk over a cached prefix, decodes.
  const std::vector<SeqSpec> mixed = {{37, 37}, {20, 75}, {1, 300}, {1, 1}, {5, 16}};
  uint32_t seed = 100;
  for (const Case& c :
       {Case{8, 2, 64, 16, DType::kBF16, mixed}, Case{4, 4, 128, 16, DType::kBF16, mixed},
        Case{16, 2, 64, 32, DType::kBF16, mixed}, Case{6, 3, 80, 8, DType::kF32, mixed},
        Case{32, 8, 128, 16, DType::kBF16, {{1, 1000}, {1, 33}, {1, 2}}},
        Case{9, 3, 256, 16, DType::kBF16, {{70, 70}, {1, 129}}},
        Case{2, 1, 32, 4, DType::kF32, {{3, 3}}},
        // Few blocks, long keys: split-KV with causal rows inside splits.
        Case{8, 2, 128, 16, DType::kBF16, {{16, 3000}, {1, 5001}}},
        Case{4, 1, 64, 16, DType::kF32, {{1, 20000}}}}) {
    RunCase(this, gpu(), cpu(), c, seed);
    seed += 10;
  }
}

}  // namespace
}  // namespace moeserve::gputest
