// How the grouped GEMM of a MoE layer maps thread blocks to work, shared by the CUDA
// kernel (which evaluates it on the device, from the routing offsets the permute kernel
// left there, so no step waits on a device-to-host copy) and the CPU unit tests.
//
// The rows of permuted activations are grouped by expert: expert e owns rows
// [offsets[e], offsets[e + 1]). Each expert's rows are cut into tiles of tile_rows; tiles
// are numbered expert by expert, so the t-th tile belongs to the expert whose cumulative
// tile count first exceeds t. A launch covers MaxRowTiles(...) tiles, a bound known from
// the row count alone; blocks past the real tile count find no tile and exit.
#ifndef MOESERVE_KERNELS_MOE_TILES_H_
#define MOESERVE_KERNELS_MOE_TILES_H_

#include <cstdint>

#if defined(__CUDACC__)
#define MOESERVE_HOST_DEVICE __host__ __device__
#else
#define MOESERVE_HOST_DEVICE
#endif

namespace moeserve::moe {

// An upper bound of the row tiles of any split of `rows` among `num_experts` experts:
// ceil(c / t) <= floor(c / t) + (c > 0), and the floors sum to at most floor(rows / t).
MOESERVE_HOST_DEVICE inline int64_t MaxRowTiles(int64_t rows, int32_t num_experts,
                                                int32_t tile_rows) {
  const int64_t nonempty = rows < num_experts ? rows : num_experts;
  return rows / tile_rows + nonempty;
}

struct RowTile {
  int32_t expert = -1;  // -1: no such tile
  int32_t row_begin = 0;
  int32_t row_end = 0;  // exclusive; row_end - row_begin <= tile_rows
};

// The tile_index-th row tile. offsets: [num_experts + 1], non-decreasing, offsets[0] = 0.
MOESERVE_HOST_DEVICE inline RowTile FindRowTile(const int32_t* offsets, int32_t num_experts,
                                                int32_t tile_rows, int64_t tile_index) {
  RowTile tile;
  int64_t first = 0;  // index of expert e's first tile
  for (int32_t e = 0; e < num_experts; ++e) {
    const int32_t begin = offsets[e], end = offsets[e + 1];
    const int64_t tiles = (static_cast<int64_t>(end - begin) + tile_rows - 1) / tile_rows;
    if (tile_index < first + tiles) {
      tile.expert = e;
      tile.row_begin = begin + static_cast<int32_t>((tile_index - first) * tile_rows);
      tile.row_end = tile.row_begin + tile_rows < end ? tile.row_begin + tile_rows : end;
      return tile;
    }
    first += tiles;
  }
  return tile;
}

}  // namespace moeserve::moe

#endif  // MOESERVE_KERNELS_MOE_TILES_H_
