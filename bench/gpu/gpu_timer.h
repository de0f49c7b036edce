// Timing helpers of the GPU benchmarks: the median of many CUDA-event-timed runs of an
// op after a warm-up, each run behind an L2 flush so weights come from HBM as they do in
// a real layer, and the device's copy bandwidth. Includes the CUDA runtime: for bench
// sources only.
#ifndef MOESERVE_BENCH_GPU_GPU_TIMER_H_
#define MOESERVE_BENCH_GPU_GPU_TIMER_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_buffer.h"

namespace moeserve::bench {

class GpuTimer {
 public:
  explicit GpuTimer(cudaStream_t stream) : stream_(stream), flush_(kFlushBytes) {
    MOESERVE_CUDA_CHECK(cudaEventCreate(&start_));
    MOESERVE_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~GpuTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  GpuTimer(const GpuTimer&) = delete;
  GpuTimer& operator=(const GpuTimer&) = delete;

  // Median milliseconds of `op` (which enqueues work on the stream): 3 warm-up runs, then
  // enough runs for about 0.3 s of work (10 to 100).
  double MedianMs(const std::function<void()>& op) {
    for (int i = 0; i < 3; ++i) op();
    const double first = TimeOnce(op);
    const int reps = std::clamp(static_cast<int>(300.0 / std::max(first, 1e-3)), 10, 100);
    std::vector<double> times;
    times.reserve(reps);
    for (int i = 0; i < reps; ++i) times.push_back(TimeOnce(op));
    std::nth_element(times.begin(), times.begin() + reps / 2, times.end());
    return times[reps / 2];
  }

 private:
  static constexpr size_t kFlushBytes = size_t{256} << 20;  // 5x the H100's 50 MB L2

  double TimeOnce(const std::function<void()>& op) {
    MOESERVE_CUDA_CHECK(
        cudaMemsetAsync(flush_.data(), ++flush_value_ & 0xFF, kFlushBytes, stream_));
    MOESERVE_CUDA_CHECK(cudaEventRecord(start_, stream_));
    op();
    MOESERVE_CUDA_CHECK(cudaEventRecord(stop_, stream_));
    MOESERVE_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    MOESERVE_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

  cudaStream_t stream_;
  cuda::DeviceBuffer flush_;
  int flush_value_ = 0;
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

// Bytes moved (read + written) per second by cudaMemcpyAsync device to device of 1 GiB:
// the median of the timed copies.
inline double CopyBandwidth(cudaStream_t stream) {
  const size_t bytes = size_t{1} << 30;
  cuda::DeviceBuffer src(bytes), dst(bytes);
  MOESERVE_CUDA_CHECK(cudaMemsetAsync(src.data(), 1, bytes, stream));
  GpuTimer timer(stream);
  const double ms = timer.MedianMs([&] {
    MOESERVE_CUDA_CHECK(
        cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, stream));
  });
  return 2.0 * bytes / (ms * 1e-3);
}

}  // namespace moeserve::bench

#endif  // MOESERVE_BENCH_GPU_GPU_TIMER_H_
