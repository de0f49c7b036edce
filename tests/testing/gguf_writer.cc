#include "tests/testing/gguf_writer.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/dtype.h"
#include "common/logging.h"

namespace moeserve::testing {
namespace {

static_assert(std::endian::native == std::endian::little, "GGUF is written little-endian");

template <typename T>
void Append(std::vector<uint8_t>* out, T value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out->insert(out->end(), p, p + sizeof(T));
}

void AppendString(std::vector<uint8_t>* out, std::string_view s) {
  Append<uint64_t>(out, s.size());
  out->insert(out->end(), s.begin(), s.end());
}

void PadTo(std::vector<uint8_t>* out, uint64_t alignment) {
  out->resize((out->size() + alignment - 1) / alignment * alignment, 0);
}

template <typename T>
std::vector<uint8_t> Bytes(T value) {
  std::vector<uint8_t> out;
  Append(&out, value);
  return out;
}

int64_t Product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

}  // namespace

GgufValue GgufValue::Uint8(uint8_t v) { return {GgufType::kUint8, Bytes(v)}; }
GgufValue GgufValue::Int8(int8_t v) { return {GgufType::kInt8, Bytes(v)}; }
GgufValue GgufValue::Uint16(uint16_t v) { return {GgufType::kUint16, Bytes(v)}; }
GgufValue GgufValue::Int16(int16_t v) { return {GgufType::kInt16, Bytes(v)}; }
GgufValue GgufValue::Uint32(uint32_t v) { return {GgufType::kUint32, Bytes(v)}; }
GgufValue GgufValue::Int32(int32_t v) { return {GgufType::kInt32, Bytes(v)}; }
GgufValue GgufValue::Uint64(uint64_t v) { return {GgufType::kUint64, Bytes(v)}; }
GgufValue GgufValue::Int64(int64_t v) { return {GgufType::kInt64, Bytes(v)}; }
GgufValue GgufValue::Float32(float v) { return {GgufType::kFloat32, Bytes(v)}; }
GgufValue GgufValue::Float64(double v) { return {GgufType::kFloat64, Bytes(v)}; }
GgufValue GgufValue::Bool(bool v) { return {GgufType::kBool, Bytes<uint8_t>(v ? 1 : 0)}; }

GgufValue GgufValue::String(std::string_view v) {
  std::vector<uint8_t> payload;
  AppendString(&payload, v);
  return {GgufType::kString, std::move(payload)};
}

GgufValue GgufValue::Array(GgufType element_type, const std::vector<GgufValue>& elements) {
  std::vector<uint8_t> payload;
  Append(&payload, static_cast<uint32_t>(element_type));
  Append<uint64_t>(&payload, elements.size());
  for (const GgufValue& element : elements) {
    CHECK_MSG(element.type() == element_type, "GgufValue::Array: mixed element types");
    // Nested arrays carry their own element type and count, which the payload starts with.
    payload.insert(payload.end(), element.payload().begin(), element.payload().end());
  }
  return {GgufType::kArray, std::move(payload)};
}

void GgufWriter::SetAlignment(uint32_t alignment) {
  alignment_ = alignment;
  for (KeyValue& kv : metadata_) {
    if (kv.key == "general.alignment" && kv.value.type() == GgufType::kUint32) {
      kv.value = GgufValue::Uint32(alignment);
      return;
    }
  }
  AddUint32("general.alignment", alignment);
}

void GgufWriter::Add(std::string_view key, GgufValue value) {
  metadata_.push_back({std::string(key), std::move(value)});
}

void GgufWriter::AddUint8(std::string_view key, uint8_t v) { Add(key, GgufValue::Uint8(v)); }
void GgufWriter::AddInt8(std::string_view key, int8_t v) { Add(key, GgufValue::Int8(v)); }
void GgufWriter::AddUint16(std::string_view key, uint16_t v) { Add(key, GgufValue::Uint16(v)); }
void GgufWriter::AddInt16(std::string_view key, int16_t v) { Add(key, GgufValue::Int16(v)); }
void GgufWriter::AddUint32(std::string_view key, uint32_t v) { Add(key, GgufValue::Uint32(v)); }
void GgufWriter::AddInt32(std::string_view key, int32_t v) { Add(key, GgufValue::Int32(v)); }
void GgufWriter::AddUint64(std::string_view key, uint64_t v) { Add(key, GgufValue::Uint64(v)); }
void GgufWriter::AddInt64(std::string_view key, int64_t v) { Add(key, GgufValue::Int64(v)); }
void GgufWriter::AddFloat32(std::string_view key, float v) { Add(key, GgufValue::Float32(v)); }
void GgufWriter::AddFloat64(std::string_view key, double v) { Add(key, GgufValue::Float64(v)); }
void GgufWriter::AddBool(std::string_view key, bool v) { Add(key, GgufValue::Bool(v)); }
void GgufWriter::AddString(std::string_view key, std::string_view v) {
  Add(key, GgufValue::String(v));
}

void GgufWriter::AddArray(std::string_view key, GgufType element_type,
                          const std::vector<GgufValue>& elements) {
  Add(key, GgufValue::Array(element_type, elements));
}

namespace {

template <typename T, typename Make>
GgufValue ArrayOf(GgufType type, const std::vector<T>& values, Make make) {
  std::vector<GgufValue> elements;
  elements.reserve(values.size());
  for (const T& v : values) elements.push_back(make(v));
  return GgufValue::Array(type, elements);
}

}  // namespace

void GgufWriter::AddStringArray(std::string_view key, const std::vector<std::string>& values) {
  Add(key, ArrayOf(GgufType::kString, values,
                   [](const std::string& v) { return GgufValue::String(v); }));
}
void GgufWriter::AddFloat32Array(std::string_view key, const std::vector<float>& values) {
  Add(key, ArrayOf(GgufType::kFloat32, values, GgufValue::Float32));
}
void GgufWriter::AddInt32Array(std::string_view key, const std::vector<int32_t>& values) {
  Add(key, ArrayOf(GgufType::kInt32, values, GgufValue::Int32));
}
void GgufWriter::AddUint32Array(std::string_view key, const std::vector<uint32_t>& values) {
  Add(key, ArrayOf(GgufType::kUint32, values, GgufValue::Uint32));
}
void GgufWriter::AddInt64Array(std::string_view key, const std::vector<int64_t>& values) {
  Add(key, ArrayOf(GgufType::kInt64, values, GgufValue::Int64));
}

void GgufWriter::AddTensor(std::string_view name, std::vector<int64_t> shape, uint32_t ggml_type,
                           std::vector<uint8_t> bytes) {
  tensors_.push_back({std::string(name), std::move(shape), ggml_type, std::move(bytes)});
}

void GgufWriter::AddF32Tensor(std::string_view name, std::vector<int64_t> shape,
                              const std::vector<float>& values) {
  CHECK_MSG(static_cast<int64_t>(values.size()) == Product(shape),
            "AddF32Tensor: value count does not match the shape");
  std::vector<uint8_t> bytes(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  AddTensor(name, std::move(shape), kGgmlF32, std::move(bytes));
}

void GgufWriter::AddF16Tensor(std::string_view name, std::vector<int64_t> shape,
                              const std::vector<float>& values) {
  CHECK_MSG(static_cast<int64_t>(values.size()) == Product(shape),
            "AddF16Tensor: value count does not match the shape");
  std::vector<uint8_t> bytes;
  bytes.reserve(values.size() * 2);
  for (const float v : values) Append(&bytes, F32ToF16(v));
  AddTensor(name, std::move(shape), kGgmlF16, std::move(bytes));
}

void GgufWriter::AddTensorInfoOnly(std::string_view name, std::vector<int64_t> shape,
                                   uint32_t ggml_type, uint64_t offset) {
  tensors_.push_back({std::string(name), std::move(shape), ggml_type, {}, true, offset});
}

std::vector<uint8_t> GgufWriter::Serialize() const {
  CHECK_MSG(alignment_ > 0, "GgufWriter: alignment must be positive");
  std::vector<uint8_t> out;
  // Reserving up front also quiets GCC 12's false -Warray-bounds on the first small inserts.
  out.reserve(4096);
  Append<uint32_t>(&out, 0x46554747);  // "GGUF" read as a little-endian uint32
  Append(&out, version_);
  Append<uint64_t>(&out, tensors_.size());
  Append<uint64_t>(&out, metadata_.size());
  for (const KeyValue& kv : metadata_) {
    AppendString(&out, kv.key);
    Append(&out, static_cast<uint32_t>(kv.value.type()));
    out.insert(out.end(), kv.value.payload().begin(), kv.value.payload().end());
  }

  // Data offsets first: each tensor with data starts at the next aligned offset.
  std::vector<uint64_t> offsets;
  uint64_t data_size = 0;
  for (const Tensor& t : tensors_) {
    if (t.info_only) {
      offsets.push_back(t.offset);
      continue;
    }
    offsets.push_back(data_size);
    data_size = (data_size + t.bytes.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    AppendString(&out, t.name);
    Append<uint32_t>(&out, static_cast<uint32_t>(t.shape.size()));
    for (const int64_t d : t.shape) Append<uint64_t>(&out, static_cast<uint64_t>(d));
    Append(&out, t.ggml_type);
    Append(&out, offsets[i]);
  }

  if (data_size == 0) return out;  // nothing to align to
  PadTo(&out, alignment_);
  const uint64_t data_start = out.size();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (tensors_[i].info_only) continue;
    out.resize(data_start + offsets[i], 0);
    out.insert(out.end(), tensors_[i].bytes.begin(), tensors_[i].bytes.end());
  }
  out.resize(data_start + data_size, 0);
  return out;
}

absl::Status GgufWriter::WriteTo(const std::string& path) const {
  return WriteBytes(path, Serialize());
}

absl::Status WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace moeserve::testing
