// Random bf16 values written straight into device memory, so the GPU benchmarks can build
// models of many GiB without a host copy of their weights. Plain C++: no CUDA headers.
#ifndef MOESERVE_BENCH_GPU_DEVICE_RANDOM_H_
#define MOESERVE_BENCH_GPU_DEVICE_RANDOM_H_

#include <cstdint>

#include "kernels/cuda/stream.h"

namespace moeserve::bench {

// dst[i] = bf16(mean + scale * u_i), u_i uniform in [-sqrt(3), sqrt(3)) (unit variance),
// a hash of (seed, i): the same seed gives the same values. dst: [n] bf16 on the device.
void FillRandomBf16(void* dst, int64_t n, float mean, float scale, uint64_t seed,
                    cuda::Stream stream);

}  // namespace moeserve::bench

#endif  // MOESERVE_BENCH_GPU_DEVICE_RANDOM_H_
