// The grouped GEMM's tile schedule (kernels/moe_tiles.h), on the CPU: every row of every
// expert is covered exactly once by a tile of its own expert, tiles stay within
// tile_rows, and the launch bound covers every split of the rows.
#include "kernels/moe_tiles.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace moeserve::moe {
namespace {

std::vector<int32_t> Offsets(const std::vector<int32_t>& counts) {
  std::vector<int32_t> offsets(counts.size() + 1, 0);
  for (size_t e = 0; e < counts.size(); ++e) offsets[e + 1] = offsets[e] + counts[e];
  return offsets;
}

// Walks tile indices up to the launch bound as the kernel's blocks do.
void ExpectExactCover(const std::vector<int32_t>& counts, int32_t tile_rows) {
  const std::vector<int32_t> offsets = Offsets(counts);
  const int32_t experts = static_cast<int32_t>(counts.size());
  const int64_t rows = offsets.back();
  const int64_t bound = MaxRowTiles(rows, experts, tile_rows);
  std::vector<int> covered(rows, 0);
  int64_t real_tiles = 0;
  bool ended = false;
  for (int64_t t = 0; t < bound; ++t) {
    const RowTile tile = FindRowTile(offsets.data(), experts, tile_rows, t);
    if (tile.expert < 0) {
      ended = true;
      continue;
    }
    ASSERT_FALSE(ended) << "a real tile after an empty one at " << t;
    ++real_tiles;
    EXPECT_GE(tile.row_begin, offsets[tile.expert]);
    EXPECT_LE(tile.row_end, offsets[tile.expert + 1]);
    EXPECT_GT(tile.row_end, tile.row_begin);
    EXPECT_LE(tile.row_end - tile.row_begin, tile_rows);
    for (int32_t r = tile.row_begin; r < tile.row_end; ++r) ++covered[r];
  }
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(covered[r], 1) << "row " << r;
  int64_t expected_tiles = 0;
  for (int32_t c : counts) expected_tiles += (c + tile_rows - 1) / tile_rows;
  EXPECT_EQ(real_tiles, expected_tiles);
  EXPECT_EQ(FindRowTile(offsets.data(), experts, tile_rows, expected_tiles).expert, -1);
}

TEST(MoeTilesTest, EmptyExpertsGetNoTiles) {
  ExpectExactCover({0, 5, 0, 0, 70, 0}, 64);
  const std::vector<int32_t> offsets = Offsets({0, 5, 0, 0, 70, 0});
  const RowTile first = FindRowTile(offsets.data(), 6, 64, 0);
  EXPECT_EQ(first.expert, 1);
  EXPECT_EQ(first.row_begin, 0);
  EXPECT_EQ(first.row_end, 5);
  const RowTile third = FindRowTile(offsets.data(), 6, 64, 2);
  EXPECT_EQ(third.expert, 4);
  EXPECT_EQ(third.row_begin, 69);
  EXPECT_EQ(third.row_end, 75);
}

TEST(MoeTilesTest, OneExpertTakesEveryRow) {
  ExpectExactCover({0, 0, 0, 1000, 0, 0, 0, 0}, 64);
  ExpectExactCover({128}, 64);
}

TEST(MoeTilesTest, NoRowsNoTiles) {
  const std::vector<int32_t> offsets = Offsets({0, 0, 0});
  EXPECT_EQ(MaxRowTiles(0, 3, 64), 0);
  EXPECT_EQ(FindRowTile(offsets.data(), 3, 64, 0).expert, -1);
}

TEST(MoeTilesTest, BoundCoversRandomSplits) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int32_t experts = 1 + static_cast<int32_t>(rng() % 70);
    std::vector<int32_t> counts(experts);
    for (int32_t& c : counts) c = rng() % 3 == 0 ? 0 : static_cast<int32_t>(rng() % 150);
    ExpectExactCover(counts, trial % 2 == 0 ? 64 : 16);
  }
}

}  // namespace
}  // namespace moeserve::moe
