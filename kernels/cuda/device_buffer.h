// Owned device memory for the backend's workspaces, weights and tests: a move-only RAII
// buffer plus synchronous host <-> device copies. Plain C++: no CUDA headers.
#ifndef MOESERVE_KERNELS_CUDA_DEVICE_BUFFER_H_
#define MOESERVE_KERNELS_CUDA_DEVICE_BUFFER_H_

#include <cstddef>

namespace moeserve::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // Allocates `bytes` on the current device (aborts when out of memory: size first).
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return bytes_; }

  // Synchronous copies of `bytes` <= size() (the device is idle when they return).
  void CopyFromHost(const void* src, size_t bytes);
  void CopyToHost(void* dst, size_t bytes) const;

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_DEVICE_BUFFER_H_
