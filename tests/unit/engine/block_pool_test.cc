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
