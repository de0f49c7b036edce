// What CUDA devices this process can use, without initialising any backend state.
// Plain C++ interface: callers need no CUDA headers.
#ifndef MOESERVE_KERNELS_CUDA_DEVICE_INFO_H_
#define MOESERVE_KERNELS_CUDA_DEVICE_INFO_H_

#include <string>
#include <vector>

namespace moeserve::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_capability = 0;  // e.g. 90 for sm_90
  size_t total_memory_bytes = 0;
};

// Every visible device; empty when there is no driver or no device (never an error:
// CUDA being absent is a normal state on CPU machines). `error` receives the driver's
// reason when the list is empty because of a failure.
std::vector<DeviceInfo> ListDevices(std::string* error);

// The cuBLAS version linked in, as major.minor.patch.
std::string CublasVersion();

}  // namespace moeserve::cuda

#endif  // MOESERVE_KERNELS_CUDA_DEVICE_INFO_H_
