#include "engine/block_pool.h"

#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace moeserve {
namespace {

TEST(BlockPoolTest, AllocatesAllOrNothingAndGetsEveryBlockBack) {
  BlockPool pool(10);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(pool.Allocate(6, &a));
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_FALSE(pool.Allocate(5, &b));
  EXPECT_TRUE(b.empty());
  ASSERT_TRUE(pool.Allocate(4, &b));
  std::set<int32_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 10u);  // no block handed out twice
  pool.Free(a);
  pool.Free(b);
  EXPECT_EQ(pool.num_free(), 10);
}

TEST(BlockPoolDeathTest, DoubleFreeIsCaught) {
  BlockPool pool(2);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.Allocate(1, &a));
  pool.Free(a);
  EXPECT_DEATH(pool.Free(a), "CHECK failed");
}

}  // namespace
}  // namespace moeserve

namespace moeserve {
namespace {

TEST(BlockHashTest, ChainsTheParentAndTheTokens) {
  const std::vector<int32_t> a = {1, 2, 3, 4};
  const std::vector<int32_t> b = {1, 2, 3, 5};
  EXPECT_EQ(HashBlock(0, a), HashBlock(0, a));
  EXPECT_NE(HashBlock(0, a), HashBlock(0, b));
  EXPECT_NE(HashBlock(0, a), HashBlock(HashBlock(0, b), a));  // same tokens, other prefix
}

TEST(BlockPoolPrefixTest, FreedRegisteredBlocksAreFoundUntilReused) {
  BlockPool pool(3);
  std::vector<int32_t> held;
  ASSERT_TRUE(pool.Allocate(1, &held));
  const std::vector<int32_t> tokens = {9, 8, 7, 6};
  const BlockHash h = HashBlock(0, tokens);
  pool.Register(held[0], h, 0, tokens);
  EXPECT_EQ(pool.num_cached(), 1);
  EXPECT_EQ(pool.Lookup(h, 0, tokens), held[0]);
  // Same hash but other contents or parent: never a hit.
  EXPECT_EQ(pool.Lookup(h, 0, std::vector<int32_t>{9, 8, 7, 5}), -1);
  EXPECT_EQ(pool.Lookup(h, 123, tokens), -1);

  pool.Free(held);
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_EQ(pool.Lookup(h, 0, tokens), held[0]);  // still cached while free
  pool.Touch(held[0]);
  EXPECT_EQ(pool.ref_count(held[0]), 1);
  EXPECT_EQ(pool.num_free(), 2);
  pool.Touch(held[0]);  // a second sharer
  EXPECT_EQ(pool.ref_count(held[0]), 2);
  pool.Free(held);
  EXPECT_EQ(pool.num_free(), 2);
  pool.Free(held);
  EXPECT_EQ(pool.num_free(), 3);

  // Allocation takes the least recently freed first: the two never-used blocks, then the
  // cached one, whose registration goes with it.
  std::vector<int32_t> fresh;
  ASSERT_TRUE(pool.Allocate(2, &fresh));
  EXPECT_EQ(pool.Lookup(h, 0, tokens), held[0]);
  ASSERT_TRUE(pool.Allocate(1, &fresh));
  EXPECT_EQ(fresh.back(), held[0]);
  EXPECT_EQ(pool.Lookup(h, 0, tokens), -1);
  EXPECT_EQ(pool.num_cached(), 0);
}

}  // namespace
}  // namespace moeserve
