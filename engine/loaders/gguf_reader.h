// Reads a GGUF file (versions 2 and 3): header, metadata key/values of every value type,
// tensor infos and the aligned tensor data, which stays mmapped for the life of the
// GgufFile. Every failure names the file (and the key or tensor) in its Status message.
// Tensor shapes are given as GGUF stores them: ne[0] first, the contiguous dimension.
#ifndef MOESERVE_ENGINE_LOADERS_GGUF_READER_H_
#define MOESERVE_ENGINE_LOADERS_GGUF_READER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace moeserve::gguf {

// GGUF metadata value types, numbered as in the file format.
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// One metadata value. Integers of every width are held as int64/uint64, floats as double;
// `type` keeps the width the file used. Arrays hold elements of one type.
struct Value {
  ValueType type = ValueType::kUint8;
  // For arrays: the element type the file declared, so an empty array still has one.
  ValueType element_type = ValueType::kUint8;
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<Value>> data;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // GGUF order: shape[0] is the contiguous dimension
  uint32_t ggml_type = 0;      // the raw type id from the file
  std::optional<DType> dtype;  // nullopt when moeserve cannot read this ggml type
  uint64_t offset = 0;         // from the start of the data section
  const uint8_t* data = nullptr;
  int64_t num_bytes = 0;
  int64_t num_elements() const;
};

class GgufFile {
 public:
  // Maps `path` and parses everything but the tensor data. Fails (naming the file and the
  // field) on a bad magic, an unsupported version, truncation, a tensor whose data would
  // lie outside the file, or inconsistent sizes.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  // Byte offset of the data section in the file; TensorInfo::offset counts from here.
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return mapping_size_; }

  const std::map<std::string, Value, std::less<>>& metadata() const { return metadata_; }
  const Value* Find(std::string_view key) const;

  // Typed getters: NotFound when absent, InvalidArgument when of another type. GetInt
  // accepts any integer type that fits int64; GetFloat accepts float32 and float64.
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  absl::StatusOr<std::vector<double>> GetFloatArray(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(std::string_view name) const;

 private:
  GgufFile() = default;

  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, Value, std::less<>> metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
};

// The ggml type id for a DType, and back (nullopt for types moeserve cannot read).
uint32_t GgmlTypeOf(DType type);
std::optional<DType> DTypeFromGgmlType(uint32_t ggml_type);

// Block geometry of every standard ggml type, readable by moeserve or not, so files holding
// other quantizations still parse and their tensor sizes can be checked.
struct GgmlTypeInfo {
  std::string_view name;    // as ggml names it: "q4_K", "f16"
  int64_t block_size = 1;   // elements per block
  int64_t block_bytes = 0;  // bytes per block
};
// nullopt for ids that are not (or no longer) ggml types.
std::optional<GgmlTypeInfo> GgmlTypeInfoOf(uint32_t ggml_type);

}  // namespace moeserve::gguf

#endif  // MOESERVE_ENGINE_LOADERS_GGUF_READER_H_
