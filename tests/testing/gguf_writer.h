// A small GGUF (v3 by default) writer for tests: builds model files by hand with metadata of
// every value type and tensors of any ggml type from raw bytes. It encodes the format on
// its own, independent of engine/loaders, so reader tests check one encoding against
// another. It writes what it is told, duplicates and odd offsets included, so tests can
// also build malformed files.
//
//   GgufWriter w;
//   w.AddString("general.architecture", "llama");
//   w.AddUint32("llama.block_count", 2);
//   w.AddF32Tensor("output_norm.weight", {64}, values);
//   ASSERT_TRUE(w.WriteTo(path).ok());
#ifndef MOESERVE_TESTS_TESTING_GGUF_WRITER_H_
#define MOESERVE_TESTS_TESTING_GGUF_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace moeserve::testing {

// GGUF metadata value type ids, numbered as in the file format.
enum class GgufType : uint32_t {
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

// ggml tensor type ids (ggml.h's enum ggml_type) that tests commonly need.
inline constexpr uint32_t kGgmlF32 = 0;
inline constexpr uint32_t kGgmlF16 = 1;
inline constexpr uint32_t kGgmlQ4_0 = 2;
inline constexpr uint32_t kGgmlQ4_1 = 3;
inline constexpr uint32_t kGgmlQ8_0 = 8;
inline constexpr uint32_t kGgmlQ4_K = 12;
inline constexpr uint32_t kGgmlQ5_K = 13;
inline constexpr uint32_t kGgmlQ6_K = 14;
inline constexpr uint32_t kGgmlI32 = 26;
inline constexpr uint32_t kGgmlBF16 = 30;

// One metadata value encoded as it appears in the file: a type id and its payload bytes.
class GgufValue {
 public:
  static GgufValue Uint8(uint8_t v);
  static GgufValue Int8(int8_t v);
  static GgufValue Uint16(uint16_t v);
  static GgufValue Int16(int16_t v);
  static GgufValue Uint32(uint32_t v);
  static GgufValue Int32(int32_t v);
  static GgufValue Uint64(uint64_t v);
  static GgufValue Int64(int64_t v);
  static GgufValue Float32(float v);
  static GgufValue Float64(double v);
  static GgufValue Bool(bool v);
  static GgufValue String(std::string_view v);
  // An array of `elements`, each of type `element_type` (CHECKed). Elements may themselves
  // be arrays (of any element type each).
  static GgufValue Array(GgufType element_type, const std::vector<GgufValue>& elements);

  GgufType type() const { return type_; }
  // The bytes after the value's type id: the scalar, the length-prefixed string, or the
  // array's element type, count and elements.
  const std::vector<uint8_t>& payload() const { return payload_; }

 private:
  GgufValue(GgufType type, std::vector<uint8_t> payload)
      : type_(type), payload_(std::move(payload)) {}

  GgufType type_;
  std::vector<uint8_t> payload_;
};

class GgufWriter {
 public:
  GgufWriter() = default;

  // The version written in the header (default 3). Any value, to test rejection.
  void SetVersion(uint32_t version) { version_ = version; }
  // Lays tensor data out at `alignment` (default 32) and records it as the uint32
  // general.alignment key, replacing an earlier SetAlignment's key. Adding
  // general.alignment with AddUint32 instead writes the key without changing the layout.
  void SetAlignment(uint32_t alignment);

  // Metadata, written in the order added; duplicate keys are written as given.
  void Add(std::string_view key, GgufValue value);
  void AddUint8(std::string_view key, uint8_t value);
  void AddInt8(std::string_view key, int8_t value);
  void AddUint16(std::string_view key, uint16_t value);
  void AddInt16(std::string_view key, int16_t value);
  void AddUint32(std::string_view key, uint32_t value);
  void AddInt32(std::string_view key, int32_t value);
  void AddUint64(std::string_view key, uint64_t value);
  void AddInt64(std::string_view key, int64_t value);
  void AddFloat32(std::string_view key, float value);
  void AddFloat64(std::string_view key, double value);
  void AddBool(std::string_view key, bool value);
  void AddString(std::string_view key, std::string_view value);
  void AddArray(std::string_view key, GgufType element_type,
                const std::vector<GgufValue>& elements);
  void AddStringArray(std::string_view key, const std::vector<std::string>& values);
  void AddFloat32Array(std::string_view key, const std::vector<float>& values);
  void AddInt32Array(std::string_view key, const std::vector<int32_t>& values);
  void AddUint32Array(std::string_view key, const std::vector<uint32_t>& values);
  void AddInt64Array(std::string_view key, const std::vector<int64_t>& values);

  // A tensor whose data is `bytes`, placed at the next aligned offset of the data section
  // (each tensor's data is padded to the alignment, as ggml does). `shape` is in GGUF order,
  // ne[0] (the contiguous dimension) first. The bytes are not checked against the shape.
  void AddTensor(std::string_view name, std::vector<int64_t> shape, uint32_t ggml_type,
                 std::vector<uint8_t> bytes);
  // An F32 / F16 (rounded to nearest even) tensor; CHECKs values.size() == product(shape).
  void AddF32Tensor(std::string_view name, std::vector<int64_t> shape,
                    const std::vector<float>& values);
  void AddF16Tensor(std::string_view name, std::vector<int64_t> shape,
                    const std::vector<float>& values);
  // A tensor info with an explicit data offset and no data of its own, for malformed
  // files (misaligned or out-of-range offsets, too many dimensions).
  void AddTensorInfoOnly(std::string_view name, std::vector<int64_t> shape, uint32_t ggml_type,
                         uint64_t offset);

  // The whole file.
  std::vector<uint8_t> Serialize() const;
  absl::Status WriteTo(const std::string& path) const;

 private:
  struct KeyValue {
    std::string key;
    GgufValue value;
  };
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    uint32_t ggml_type;
    std::vector<uint8_t> bytes;
    bool info_only = false;
    uint64_t offset = 0;  // used when info_only
  };

  uint32_t version_ = 3;
  uint32_t alignment_ = 32;
  std::vector<KeyValue> metadata_;
  std::vector<Tensor> tensors_;
};

// Writes `bytes` to `path` (e.g. a truncated or patched Serialize() result).
absl::Status WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace moeserve::testing

#endif  // MOESERVE_TESTS_TESTING_GGUF_WRITER_H_
