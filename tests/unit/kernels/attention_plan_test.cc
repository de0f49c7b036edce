// The CUDA paged attention's launch plan (kernels/attention_plan.h), on the CPU: every new
// token of every sequence falls in exactly one work item, the packed layout holds each
// sequence's fields and block table, and tile sizes follow the decode/prefill rule.
#include "kernels/attention_plan.h"

#include <vector>

#include "gtest/gtest.h"

namespace moeserve::attention {
namespace {

TEST(AttentionPlanTest, TokensPerTile) {
  EXPECT_EQ(TokensPerTile(1, 4), 1);   // decode-only batch
  EXPECT_EQ(TokensPerTile(37, 4), 4);  // 16 rows / group 4
  EXPECT_EQ(TokensPerTile(37, 1), 16);
  EXPECT_EQ(TokensPerTile(3, 1), 3);    // never more than the longest sequence
  EXPECT_EQ(TokensPerTile(37, 32), 1);  // group past the row budget: one token
}

TEST(AttentionPlanTest, PacksSequencesWorkAndTables) {
  const std::vector<int32_t> table_a = {7, 2, 9};        // 37 tokens, block size 16
  const std::vector<int32_t> table_b = {4, 5, 0, 1, 3};  // 20 new of 75
  const std::vector<int32_t> table_c = {8};              // decode at 1
  const std::vector<SeqInput> seqs = {
      {0, 37, 37, table_a.data()}, {37, 20, 75, table_b.data()}, {57, 1, 1, table_c.data()}};
  Plan plan;
  PlanPagedAttention(seqs.data(), 3, /*group=*/4, /*block_size=*/16, &plan);
  EXPECT_EQ(plan.tokens_per_tile, 4);
  EXPECT_EQ(plan.num_seqs, 3);
  EXPECT_EQ(plan.num_work, 10 + 5 + 1);
  const int32_t* p = plan.packed.data();
  // Sequence fields and where each block table begins.
  EXPECT_EQ(std::vector<int32_t>(p, p + 12),
            (std::vector<int32_t>{0, 37, 37, 0, 37, 20, 75, 3, 57, 1, 1, 8}));
  const int32_t* tables = p + plan.tables_offset();
  EXPECT_EQ(std::vector<int32_t>(tables, p + plan.packed.size()),
            (std::vector<int32_t>{7, 2, 9, 4, 5, 0, 1, 3, 8}));
  // Work items cover each sequence's tokens once, in tiles of tokens_per_tile.
  std::vector<std::vector<int>> covered = {std::vector<int>(37), std::vector<int>(20),
                                           std::vector<int>(1)};
  for (int32_t w = 0; w < plan.num_work; ++w) {
    const int32_t seq = p[plan.work_offset() + 2 * w];
    const int32_t start = p[plan.work_offset() + 2 * w + 1];
    ASSERT_GE(seq, 0);
    ASSERT_LT(seq, 3);
    EXPECT_EQ(start % plan.tokens_per_tile, 0);
    for (int32_t t = start; t < start + plan.tokens_per_tile && t < seqs[seq].num_tokens; ++t) {
      ++covered[seq][t];
    }
  }
  for (const auto& seq : covered) {
    for (int c : seq) EXPECT_EQ(c, 1);
  }
}

TEST(AttentionPlanTest, ReusesThePlanAcrossSteps) {
  const std::vector<int32_t> table = {3, 1};
  const std::vector<SeqInput> prefill = {{0, 20, 20, table.data()}};
  const std::vector<SeqInput> decode = {{0, 1, 21, table.data()}};
  Plan plan;
  PlanPagedAttention(prefill.data(), 1, 1, 16, &plan);
  EXPECT_EQ(plan.num_work, 2);
  PlanPagedAttention(decode.data(), 1, 1, 16, &plan);
  EXPECT_EQ(plan.tokens_per_tile, 1);
  EXPECT_EQ(plan.num_work, 1);
  EXPECT_EQ(plan.packed, (std::vector<int32_t>{0, 1, 21, 0, 0, 0, 3, 1}));
}

TEST(AttentionPlanTest, SplitsKeysOnlyWhenBlocksAreFew) {
  const std::vector<int32_t> table(400, 0);
  const std::vector<SeqInput> long_decode = {{0, 1, 6000, table.data()}};
  Plan plan;
  PlanPagedAttention(long_decode.data(), 1, 4, 16, &plan);
  EXPECT_EQ(plan.max_context, 6000);
  // 1 work item x 8 kv heads against a target of 264 blocks: 33 wanted, capped at 32, and
  // 6000 keys allow 24 splits of at least 256; lengths are whole key tiles.
  PlanKeySplits(8, 264, &plan);
  EXPECT_EQ(plan.split_keys % kKeyTile, 0);
  EXPECT_GE(plan.split_keys, kMinKeysPerSplit - kKeyTile);
  EXPECT_LE(plan.num_splits, kMaxSplits);
  EXPECT_GE(int64_t{plan.num_splits} * plan.split_keys, 6000);
  EXPECT_LT(int64_t{plan.num_splits - 1} * plan.split_keys, 6000);  // no empty split
  EXPECT_EQ(plan.num_splits, 24);
  EXPECT_EQ(plan.split_keys, 256);

  // Enough blocks already: one split covering every key.
  PlanKeySplits(8, 8, &plan);
  EXPECT_EQ(plan.num_splits, 1);
  EXPECT_GE(plan.split_keys, 6000);

  // Short contexts never split.
  const std::vector<SeqInput> short_decode = {{0, 1, 200, table.data()}};
  PlanPagedAttention(short_decode.data(), 1, 4, 16, &plan);
  PlanKeySplits(8, 264, &plan);
  EXPECT_EQ(plan.num_splits, 1);
}

}  // namespace
}  // namespace moeserve::attention
