#include <string>

#include "gtest/gtest.h"
#include "kernels/cuda/device_info.h"

namespace moeserve::cuda {
namespace {

TEST(CudaDeviceTest, ListsUsableDevices) {
  std::string error;
  const std::vector<DeviceInfo> devices = ListDevices(&error);
  if (devices.empty()) GTEST_SKIP() << "no CUDA device: " << (error.empty() ? "none" : error);
  for (const DeviceInfo& d : devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(d.compute_capability, 80) << d.name << ": moeserve targets sm_80 and newer";
    EXPECT_GT(d.total_memory_bytes, size_t{1} << 30);
  }
}

TEST(CudaDeviceTest, CublasIsLinked) {
  const std::string version = CublasVersion();
  EXPECT_NE(version.rfind("0.", 0), 0u) << version;
}

}  // namespace
}  // namespace moeserve::cuda
