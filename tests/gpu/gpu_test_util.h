// Shared helpers of the CUDA op tests: device tensors made from host data (values rounded
// to bf16 first, so the CPU reference and the GPU see identical inputs), poisoned outputs,
// read-back through the backend, and the normalised error sqrt(sum (got - want)^2 /
// sum want^2) that every op is judged by. A fixture skips with a message when no device is
// usable.
#ifndef MOESERVE_TESTS_GPU_GPU_TEST_UTIL_H_
#define MOESERVE_TESTS_GPU_GPU_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/tensor.h"
#include "engine/cpu_backend.h"
#include "engine/cuda_backend.h"
#include "gtest/gtest.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/device_info.h"

namespace moeserve::gputest {

// Values of N(0, scale^2), each exactly representable in bf16.
inline std::vector<float> RandomBf16(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = BF16ToF32(F32ToBF16(dist(rng)));
  return v;
}

// A device tensor with its memory.
struct DeviceTensor {
  cuda::DeviceBuffer buffer;
  Tensor t;
};

inline DeviceTensor Upload(const std::vector<float>& host, DType type,
                           std::initializer_list<int64_t> shape) {
  Tensor shape_only(nullptr, type, shape, Device::kCuda);
  CHECK(shape_only.num_elements() == static_cast<int64_t>(host.size()));
  DeviceTensor d{cuda::DeviceBuffer(std::max<int64_t>(shape_only.num_bytes(), 1)), Tensor()};
  d.t = Tensor(d.buffer.data(), type, shape, Device::kCuda);
  if (type == DType::kF32) {
    d.buffer.CopyFromHost(host.data(), host.size() * sizeof(float));
  } else {
    CHECK(type == DType::kBF16);
    std::vector<uint16_t> bits(host.size());
    for (size_t i = 0; i < host.size(); ++i) bits[i] = F32ToBF16(host[i]);
    d.buffer.CopyFromHost(bits.data(), bits.size() * sizeof(uint16_t));
  }
  return d;
}

inline DeviceTensor UploadI32(const std::vector<int32_t>& host,
                              std::initializer_list<int64_t> shape) {
  DeviceTensor d{cuda::DeviceBuffer(std::max<size_t>(host.size() * 4, 1)), Tensor()};
  d.t = Tensor(d.buffer.data(), DType::kI32, shape, Device::kCuda);
  CHECK(d.t.num_elements() == static_cast<int64_t>(host.size()));
  d.buffer.CopyFromHost(host.data(), host.size() * 4);
  return d;
}

// All bytes 0xFF: NaN in f32 and bf16, -1 in i32; an op that skips an element shows.
inline DeviceTensor Poisoned(DType type, std::initializer_list<int64_t> shape) {
  Tensor shape_only(nullptr, type, shape, Device::kCuda);
  const size_t bytes = std::max<int64_t>(shape_only.num_bytes(), 1);
  DeviceTensor d{cuda::DeviceBuffer(bytes), Tensor()};
  d.t = Tensor(d.buffer.data(), type, shape, Device::kCuda);
  std::vector<uint8_t> ff(bytes, 0xFF);
  d.buffer.CopyFromHost(ff.data(), bytes);
  return d;
}

// Reads a float tensor back through the backend (its CopyToHost), as f32.
inline std::vector<float> Download(CudaBackend& backend, const Tensor& t) {
  std::vector<float> out(t.num_elements());
  if (t.dtype() == DType::kF32) {
    backend.CopyToHost(t, out.data());
  } else {
    CHECK(t.dtype() == DType::kBF16);
    std::vector<uint16_t> bits(t.num_elements());
    backend.CopyToHost(t, bits.data());
    for (size_t i = 0; i < bits.size(); ++i) out[i] = BF16ToF32(bits[i]);
  }
  return out;
}

inline std::vector<int32_t> DownloadI32(CudaBackend& backend, const Tensor& t) {
  std::vector<int32_t> out(t.num_elements());
  backend.CopyToHost(t, out.data());
  return out;
}

inline Tensor Host(std::vector<float>& v, std::initializer_list<int64_t> shape) {
  Tensor t(v.data(), DType::kF32, shape);
  CHECK(t.num_elements() == static_cast<int64_t>(v.size()));
  return t;
}

inline Tensor HostI32(std::vector<int32_t>& v, std::initializer_list<int64_t> shape) {
  Tensor t(v.data(), DType::kI32, shape);
  CHECK(t.num_elements() == static_cast<int64_t>(v.size()));
  return t;
}

// sqrt(sum (got - want)^2 / sum want^2); infinity for a NaN/Inf in got or a size mismatch.
inline double NormalisedError(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    const double d = double{got[i]} - double{want[i]};
    diff += d * d;
    norm += double{want[i]} * double{want[i]};
  }
  if (norm == 0.0) return diff == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(diff / norm);
}

// Prints one line per comparison so a device run's log carries every measured error.
inline double Report(const char* op, const std::string& shape, double err) {
  std::printf("NERR %-22s %-44s %.3e\n", op, shape.c_str(), err);
  return err;
}

// Tolerances: one bf16 rounding of the output is ~2^-9 relative per element (RMS ~1.6e-3);
// bf16 inputs are exact on both sides, so a few roundings' worth is the budget.
inline constexpr double kBf16Tol = 8e-3;
inline constexpr double kF32Tol = 2e-5;

// Skips the test when no device is usable; otherwise holds both backends.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    const std::vector<cuda::DeviceInfo> devices = cuda::ListDevices(&error);
    if (devices.empty()) {
      GTEST_SKIP() << "no CUDA device: " << (error.empty() ? "none visible" : error);
    }
    gpu_ = std::make_unique<CudaBackend>(0);
    cpu_ = std::make_unique<CpuBackend>(2);
  }

  CudaBackend& gpu() { return *gpu_; }
  CpuBackend& cpu() { return *cpu_; }

 private:
  std::unique_ptr<CudaBackend> gpu_;
  std::unique_ptr<CpuBackend> cpu_;
};

}  // namespace moeserve::gputest

#endif  // MOESERVE_TESTS_GPU_GPU_TEST_UTIL_H_
