#include "tools/convert/safetensors_writer.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

#include "common/absl_strings.h"
#include "common/status.h"
#include "tools/convert/json_writer.h"

namespace moeserve::convert {
namespace {

int64_t ElementBytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

// The dtype's name in safetensors headers.
const char* SafetensorsDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    default:
      return nullptr;
  }
}

}  // namespace

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

std::string SafetensorsHeaderJson(
    const std::vector<SafetensorsTensor>& tensors,
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  JsonWriter json;
  json.BeginObject();
  if (!metadata.empty()) {
    json.Key("__metadata__").BeginObject();
    for (const auto& [key, value] : metadata) json.Key(key).String(value);
    json.EndObject();
  }
  int64_t offset = 0;
  for (const SafetensorsTensor& tensor : tensors) {
    const int64_t bytes = NumElements(tensor.shape) * ElementBytes(tensor.dtype);
    json.Key(tensor.name).BeginObject();
    json.Key("dtype").String(SafetensorsDTypeName(tensor.dtype));
    json.Key("shape").BeginArray();
    for (const int64_t d : tensor.shape) json.Int(d);
    json.EndArray();
    json.Key("data_offsets").BeginArray().Int(offset).Int(offset + bytes).EndArray();
    json.EndObject();
    offset += bytes;
  }
  json.EndObject();
  return json.str();
}

absl::StatusOr<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::Create(
    const std::string& path, std::vector<SafetensorsTensor> tensors,
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::set<std::string> names;
  for (const SafetensorsTensor& tensor : tensors) {
    if (SafetensorsDTypeName(tensor.dtype) == nullptr) {
      return absl::InvalidArgumentError(Cat(path, ": tensor '", tensor.name, "' has dtype ",
                                            DTypeName(tensor.dtype),
                                            "; the writer stores F32, F16 or BF16"));
    }
    for (const int64_t d : tensor.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(
            Cat(path, ": tensor '", tensor.name, "' has a negative dimension"));
      }
    }
    if (tensor.name.empty() || tensor.name == "__metadata__" || !names.insert(tensor.name).second) {
      return absl::InvalidArgumentError(
          Cat(path, ": tensor name '", tensor.name, "' is empty, reserved or used twice"));
    }
  }
  std::string header = SafetensorsHeaderJson(tensors, metadata);
  // Pad with spaces so the data begins 8-byte aligned (8 + N is a multiple of 8).
  header.append((8 - header.size() % 8) % 8, ' ');

  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) {
    return absl::PermissionDeniedError(Cat(path, ": cannot create: ", std::strerror(errno)));
  }
  std::unique_ptr<SafetensorsWriter> writer(new SafetensorsWriter(path, std::move(tensors), file));
  uint8_t length[8];
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
  MOESERVE_RETURN_IF_ERROR(writer->WriteBytes(length, sizeof(length)));
  MOESERVE_RETURN_IF_ERROR(writer->WriteBytes(header.data(), header.size()));
  return writer;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

const SafetensorsTensor* SafetensorsWriter::next() const {
  return written_ < tensors_.size() ? &tensors_[written_] : nullptr;
}

absl::Status SafetensorsWriter::WriteBytes(const void* data, size_t size) {
  if (file_ == nullptr) return absl::FailedPreconditionError(Cat(path_, ": already closed"));
  if (size > 0 && std::fwrite(data, 1, size, file_) != size) {
    return absl::DataLossError(Cat(path_, ": write failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::Write(const float* values, int64_t count) {
  const SafetensorsTensor* tensor = next();
  if (tensor == nullptr) {
    return absl::FailedPreconditionError(Cat(path_, ": every tensor is already written"));
  }
  if (count != NumElements(tensor->shape)) {
    return absl::InvalidArgumentError(Cat(path_, ": tensor '", tensor->name, "' needs ",
                                          NumElements(tensor->shape), " values, got ", count));
  }
  ++written_;
  if (tensor->dtype == DType::kF32) return WriteBytes(values, count * sizeof(float));
  half_.resize(count);
  const bool f16 = tensor->dtype == DType::kF16;
  for (int64_t i = 0; i < count; ++i) {
    half_[i] = f16 ? F32ToF16(values[i]) : F32ToBF16(values[i]);
    const float back = f16 ? F16ToF32(half_[i]) : BF16ToF32(half_[i]);
    if (std::isinf(back) && std::isfinite(values[i])) {
      return absl::OutOfRangeError(Cat(path_, ": tensor '", tensor->name, "' value ", values[i],
                                       " overflows ", DTypeName(tensor->dtype)));
    }
  }
  return WriteBytes(half_.data(), count * sizeof(uint16_t));
}

absl::Status SafetensorsWriter::Finish() {
  if (written_ != tensors_.size()) {
    return absl::FailedPreconditionError(Cat(path_, ": ", tensors_.size() - written_,
                                             " tensor(s) not written, the first '",
                                             tensors_[written_].name, "'"));
  }
  if (file_ == nullptr) return absl::OkStatus();
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) return absl::DataLossError(Cat(path_, ": close failed: ", std::strerror(errno)));
  return absl::OkStatus();
}

}  // namespace moeserve::convert
