// A non-owning view of a dense tensor: pointer, element type, shape (row-major, last
// dimension contiguous) and the device the memory lives on. Owners (weights, KV cache,
// workspaces) keep the memory alive; views are cheap to copy and pass by value.
#ifndef MOESERVE_COMMON_TENSOR_H_
#define MOESERVE_COMMON_TENSOR_H_

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "common/dtype.h"
#include "common/logging.h"

namespace moeserve {

enum class Device : uint8_t { kCpu, kCuda };

class Tensor {
 public:
  static constexpr int kMaxDims = 4;

  Tensor() = default;
  Tensor(void* data, DType dtype, std::initializer_list<int64_t> shape,
         Device device = Device::kCpu)
      : data_(data), dtype_(dtype), device_(device) {
    CHECK(shape.size() <= kMaxDims);
    for (int64_t d : shape) shape_[ndim_++] = d;
  }

  void* data() const { return data_; }
  template <typename T>
  T* data_as() const {
    return static_cast<T*>(data_);
  }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int ndim() const { return ndim_; }
  int64_t dim(int i) const {
    CHECK(i >= 0 && i < ndim_);
    return shape_[i];
  }
  int64_t num_elements() const {
    int64_t n = 1;
    for (int i = 0; i < ndim_; ++i) n *= shape_[i];
    return n;
  }
  // Elements of one row (the last dimension) and bytes of the whole tensor.
  int64_t row_size() const { return ndim_ == 0 ? 1 : shape_[ndim_ - 1]; }
  int64_t num_rows() const { return row_size() == 0 ? 0 : num_elements() / row_size(); }
  int64_t num_bytes() const { return num_rows() * DTypeRowBytes(dtype_, row_size()); }

  // "[576, 49152] q4_1" for error messages.
  std::string DebugString() const {
    std::string s = "[";
    for (int i = 0; i < ndim_; ++i) {
      if (i > 0) s += ", ";
      s += std::to_string(shape_[i]);
    }
    s += "] ";
    s += DTypeName(dtype_);
    return s;
  }

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  Device device_ = Device::kCpu;
  int ndim_ = 0;
  std::array<int64_t, kMaxDims> shape_{};
};

}  // namespace moeserve

#endif  // MOESERVE_COMMON_TENSOR_H_
