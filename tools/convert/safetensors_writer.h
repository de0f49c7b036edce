// Writes one .safetensors file, streaming: the header (every tensor's name, dtype, shape and
// data_offsets) is written first, then each tensor's data in the same order as the caller
// produces it, so a checkpoint far larger than memory needs only one tensor at a time.
// Layout as the reference implementation writes it: an 8-byte little-endian header length
// N, N bytes of JSON padded with spaces so the data starts 8-byte aligned, then the
// tensors back to back with no gaps. Data arrives as f32 and is converted to the tensor's
// dtype (F32, F16 or BF16; round-to-nearest-even, an overflow to infinity is an error).
#ifndef MOESERVE_TOOLS_CONVERT_SAFETENSORS_WRITER_H_
#define MOESERVE_TOOLS_CONVERT_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace moeserve::convert {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;   // kF32, kF16 or kBF16
  std::vector<int64_t> shape;  // outermost first
};

// Elements in a tensor of `shape` (1 for a scalar).
int64_t NumElements(const std::vector<int64_t>& shape);

// The header JSON (without the length prefix or padding) for tensors stored in this order.
std::string SafetensorsHeaderJson(const std::vector<SafetensorsTensor>& tensors,
                                  const std::vector<std::pair<std::string, std::string>>& metadata);

class SafetensorsWriter {
 public:
  // Creates `path` and writes the header. InvalidArgument for an unsupported dtype, a
  // negative dimension or a duplicate name; errors name the file.
  static absl::StatusOr<std::unique_ptr<SafetensorsWriter>> Create(
      const std::string& path, std::vector<SafetensorsTensor> tensors,
      const std::vector<std::pair<std::string, std::string>>& metadata);

  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // The tensor the next Write() fills, or nullptr when all are written.
  const SafetensorsTensor* next() const;

  // Writes the next tensor's data. `values`: [NumElements(next()->shape)] f32.
  absl::Status Write(const float* values, int64_t count);

  // Checks that every tensor was written and closes the file.
  absl::Status Finish();

 private:
  SafetensorsWriter(std::string path, std::vector<SafetensorsTensor> tensors, std::FILE* file)
      : path_(std::move(path)), tensors_(std::move(tensors)), file_(file) {}

  absl::Status WriteBytes(const void* data, size_t size);

  std::string path_;
  std::vector<SafetensorsTensor> tensors_;
  std::FILE* file_;
  size_t written_ = 0;          // tensors written so far
  std::vector<uint16_t> half_;  // conversion buffer for F16/BF16
};

}  // namespace moeserve::convert

#endif  // MOESERVE_TOOLS_CONVERT_SAFETENSORS_WRITER_H_
