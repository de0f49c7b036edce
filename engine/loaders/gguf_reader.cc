#include "engine/loaders/gguf_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/absl_strings.h"
#include "common/absl_strings.h"
#include "common/status.h"

namespace moeserve::gguf {

// Values are memcpy'd straight out of the mapping; GGUF as read here is little-endian.
static_assert(std::endian::native == std::endian::little,
              "the GGUF reader assumes a little-endian host");

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
// Nested arrays recurse; real files nest at most once, and a bound keeps a hostile file
// from exhausting the stack.
constexpr int kMaxArrayDepth = 16;
// Smallest encoding of one tensor info: name length, n_dims, type, offset.
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;
// Smallest encoding of one key/value: key length, value type, a one-byte value.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;

absl::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
      return "uint8";
    case ValueType::kInt8:
      return "int8";
    case ValueType::kUint16:
      return "uint16";
    case ValueType::kInt16:
      return "int16";
    case ValueType::kUint32:
      return "uint32";
    case ValueType::kInt32:
      return "int32";
    case ValueType::kFloat32:
      return "float32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kUint64:
      return "uint64";
    case ValueType::kInt64:
      return "int64";
    case ValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool IsValidValueType(uint32_t raw) { return raw <= static_cast<uint32_t>(ValueType::kFloat64); }

// Bytes the smallest value of `type` takes in the file; bounds array counts before any
// allocation.
uint64_t MinEncodedBytes(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
    case ValueType::kString:
      return 8;  // a string is at least its length
    case ValueType::kArray:
      return 4 + 8;  // element type + count
  }
  return 1;
}

bool IsInteger(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsFloat(ValueType type) { return type == ValueType::kFloat32 || type == ValueType::kFloat64; }

// Overflow-checked arithmetic on file offsets and sizes.
bool CheckedAdd(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}
bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

// Parses the bytes of one mapped file into a GgufFile's fields. Every read is checked
// against the end of the file; failures carry the path and what was being read.
class Parser {
 public:
  Parser(absl::string_view path, const uint8_t* data, uint64_t size)
      : path_(path), data_(data), size_(size) {}

  absl::Status ParseHeader(uint32_t* version, uint64_t* tensor_count, uint64_t* kv_count) {
    uint32_t magic = 0;
    if (!Read(&magic)) return Truncated("the magic");
    if (magic != kMagic) {
      return Invalid(absl::StrFormat("not a GGUF file (magic 0x%08x, expected 0x%08x \"GGUF\")",
                                     magic, kMagic));
    }
    if (!Read(version)) return Truncated("the version");
    if (*version == 1) {
      return Invalid(
          "GGUF version 1 is not supported (only versions 2 and 3); reconvert the model");
    }
    if (*version != 2 && *version != 3) {
      const uint32_t swapped = __builtin_bswap32(*version);
      if (swapped == 2 || swapped == 3) {
        return Invalid(absl::StrCat("big-endian GGUF (version ", swapped,
                                    ") is not supported; use a little-endian file"));
      }
      return Invalid(
          absl::StrCat("unsupported GGUF version ", *version, " (only versions 2 and 3)"));
    }
    if (!Read(tensor_count)) return Truncated("the tensor count");
    if (!Read(kv_count)) return Truncated("the metadata key/value count");
    uint64_t min_bytes = 0;
    if (!CheckedMul(*kv_count, kMinKeyValueBytes, &min_bytes) || min_bytes > remaining()) {
      return Corrupt(absl::StrCat("metadata count ", *kv_count, " cannot fit in the ", remaining(),
                                  " bytes left"));
    }
    return absl::OkStatus();
  }

  absl::Status ParseKeyValue(uint64_t index, std::string* key, Value* value) {
    absl::string_view key_view;
    if (!ReadString(&key_view)) {
      return Truncated(absl::StrCat("the key of metadata entry ", index));
    }
    *key = std::string(key_view);
    key_ = key_view;
    element_path_.clear();
    uint32_t raw_type = 0;
    if (!Read(&raw_type)) return Truncated(KeyContext("value type"));
    if (!IsValidValueType(raw_type)) {
      return Invalid(
          absl::StrCat("metadata key '", key_view, "' has unknown value type ", raw_type));
    }
    return ParseValue(static_cast<ValueType>(raw_type), /*depth=*/0, value);
  }

  absl::Status ParseTensorInfo(uint64_t index, TensorInfo* info) {
    absl::string_view name;
    if (!ReadString(&name)) return Truncated(absl::StrCat("the name of tensor ", index));
    info->name = std::string(name);
    const auto context = [&](absl::string_view field) {
      return absl::StrCat(field, " of tensor '", name, "'");
    };
    uint32_t n_dims = 0;
    if (!Read(&n_dims)) return Truncated(context("the dimension count"));
    if (n_dims > kMaxDims) {
      return Invalid(
          absl::StrCat("tensor '", name, "' has ", n_dims, " dimensions (at most ", kMaxDims, ")"));
    }
    info->shape.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim = 0;
      if (!Read(&dim)) return Truncated(context(absl::StrCat("dimension ", d)));
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Invalid(
            absl::StrCat("tensor '", name, "' dimension ", d, " is ", dim, " (too large)"));
      }
      info->shape[d] = static_cast<int64_t>(dim);
    }
    if (!Read(&info->ggml_type)) return Truncated(context("the type"));
    if (!Read(&info->offset)) return Truncated(context("the data offset"));
    return absl::OkStatus();
  }

  uint64_t position() const { return pos_; }

  absl::Status Invalid(absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", message));
  }

 private:
  uint64_t remaining() const { return size_ - pos_; }

  template <typename T>
  bool Read(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  // A length-prefixed string; the length is checked against the bytes left before the
  // string is touched, so a corrupt length never turns into an allocation.
  bool ReadString(absl::string_view* out) {
    uint64_t length = 0;
    if (!Read(&length) || length > remaining()) return false;
    *out = absl::string_view(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return true;
  }

  absl::Status ParseValue(ValueType type, int depth, Value* value) {
    value->type = type;
    switch (type) {
      case ValueType::kUint8:
        return ReadInto<uint8_t, uint64_t>(value);
      case ValueType::kInt8:
        return ReadInto<int8_t, int64_t>(value);
      case ValueType::kUint16:
        return ReadInto<uint16_t, uint64_t>(value);
      case ValueType::kInt16:
        return ReadInto<int16_t, int64_t>(value);
      case ValueType::kUint32:
        return ReadInto<uint32_t, uint64_t>(value);
      case ValueType::kInt32:
        return ReadInto<int32_t, int64_t>(value);
      case ValueType::kUint64:
        return ReadInto<uint64_t, uint64_t>(value);
      case ValueType::kInt64:
        return ReadInto<int64_t, int64_t>(value);
      case ValueType::kFloat32:
        return ReadInto<float, double>(value);
      case ValueType::kFloat64:
        return ReadInto<double, double>(value);
      case ValueType::kBool: {
        uint8_t raw = 0;
        if (!Read(&raw)) return Truncated(KeyContext("value"));
        if (raw > 1) return Invalid(KeyContext(absl::StrCat("bool value ", raw, " (not 0 or 1)")));
        value->data = raw == 1;
        return absl::OkStatus();
      }
      case ValueType::kString: {
        absl::string_view text;
        if (!ReadString(&text)) return Truncated(KeyContext("string value"));
        value->data = std::string(text);
        return absl::OkStatus();
      }
      case ValueType::kArray:
        return ParseArray(depth, value);
    }
    return Invalid(KeyContext("unknown value type"));
  }

  absl::Status ParseArray(int depth, Value* value) {
    if (depth >= kMaxArrayDepth) {
      return Invalid(KeyContext(absl::StrCat("arrays nested deeper than ", kMaxArrayDepth)));
    }
    uint32_t raw_type = 0;
    if (!Read(&raw_type)) return Truncated(KeyContext("array element type"));
    if (!IsValidValueType(raw_type)) {
      return Invalid(KeyContext(absl::StrCat("unknown array element type ", raw_type)));
    }
    const auto element_type = static_cast<ValueType>(raw_type);
    uint64_t count = 0;
    if (!Read(&count)) return Truncated(KeyContext("array length"));
    uint64_t min_bytes = 0;
    if (!CheckedMul(count, MinEncodedBytes(element_type), &min_bytes) || min_bytes > remaining()) {
      return Corrupt(
          KeyContext(absl::StrCat("array of ", count, " ", ValueTypeName(element_type),
                                  " elements (only ", remaining(), " bytes left in the file)")));
    }
    value->element_type = element_type;
    std::vector<Value> elements(count);
    element_path_.push_back(0);
    for (uint64_t i = 0; i < count; ++i) {
      element_path_.back() = i;
      MOESERVE_RETURN_IF_ERROR(ParseValue(element_type, depth + 1, &elements[i]));
    }
    element_path_.pop_back();
    value->data = std::move(elements);
    return absl::OkStatus();
  }

  template <typename FileT, typename HeldT>
  absl::Status ReadInto(Value* value) {
    FileT raw{};
    if (!Read(&raw)) return Truncated(KeyContext("value"));
    value->data = static_cast<HeldT>(raw);
    return absl::OkStatus();
  }

  // "metadata key 'k' (array element 3, 7) <what>": which value of which key failed.
  std::string KeyContext(absl::string_view what) const {
    std::string context = absl::StrCat("metadata key '", key_, "'");
    if (!element_path_.empty()) {
      absl::StrAppend(&context, " (array element ", absl::StrJoin(element_path_, ", "), ")");
    }
    absl::StrAppend(&context, " ", what);
    return context;
  }

  absl::Status Truncated(absl::string_view what) const {
    return absl::DataLossError(absl::StrCat(path_, ": truncated while reading ", what, " (at byte ",
                                            pos_, " of ", size_, ")"));
  }

  // A count or length too large for what is left: truncation or corruption, and either way
  // rejected before anything is allocated for it.
  absl::Status Corrupt(absl::string_view what) const {
    return absl::DataLossError(absl::StrCat(path_, ": truncated or corrupt: ", what));
  }

  absl::string_view path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  absl::string_view key_;               // the key being parsed, for messages
  std::vector<uint64_t> element_path_;  // array indices down to the value being parsed
};

// Maps a whole file read-only. On success *data/*size describe the mapping (nullptr for
// an empty file, which mmap refuses).
absl::Status MapFile(const std::string& path, void** data, size_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot open"));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot stat"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  *size = static_cast<size_t>(st.st_size);
  *data = nullptr;
  if (*size > 0) {
    void* mapping = ::mmap(nullptr, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot mmap ", *size, " bytes"));
    }
    *data = mapping;
  }
  ::close(fd);  // the mapping keeps the file alive
  return absl::OkStatus();
}

}  // namespace

int64_t TensorInfo::num_elements() const {
  int64_t n = 1;
  for (const int64_t dim : shape) n *= dim;
  return n;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  MOESERVE_RETURN_IF_ERROR(MapFile(path, &file->mapping_, &file->mapping_size_));
  const auto* bytes = static_cast<const uint8_t*>(file->mapping_);
  const uint64_t file_size = file->mapping_size_;
  Parser parser(path, bytes, file_size);

  uint64_t tensor_count = 0;
  uint64_t kv_count = 0;
  MOESERVE_RETURN_IF_ERROR(parser.ParseHeader(&file->version_, &tensor_count, &kv_count));

  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key;
    Value value;
    MOESERVE_RETURN_IF_ERROR(parser.ParseKeyValue(i, &key, &value));
    if (file->metadata_.contains(key)) {
      return parser.Invalid(absl::StrCat("duplicate metadata key '", key, "'"));
    }
    file->metadata_.emplace(std::move(key), std::move(value));
  }

  if (const Value* alignment = file->Find("general.alignment")) {
    const auto* held = std::get_if<uint64_t>(&alignment->data);
    if (held == nullptr || alignment->type != ValueType::kUint32) {
      return parser.Invalid(absl::StrCat("general.alignment is ", ValueTypeName(alignment->type),
                                         ", expected uint32"));
    }
    if (*held == 0 || !std::has_single_bit(*held)) {
      return parser.Invalid(absl::StrCat("general.alignment ", *held, " is not a power of two"));
    }
    file->alignment_ = static_cast<uint32_t>(*held);
  } else {
    file->alignment_ = kDefaultAlignment;
  }

  uint64_t min_info_bytes = 0;
  if (!CheckedMul(tensor_count, kMinTensorInfoBytes, &min_info_bytes) ||
      min_info_bytes > file_size - parser.position()) {
    return absl::DataLossError(absl::StrCat(path, ": truncated or corrupt: tensor count ",
                                            tensor_count, " cannot fit in the file"));
  }
  file->tensors_.resize(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    TensorInfo& info = file->tensors_[i];
    MOESERVE_RETURN_IF_ERROR(parser.ParseTensorInfo(i, &info));
    if (!file->tensor_index_.emplace(info.name, i).second) {
      return parser.Invalid(absl::StrCat("duplicate tensor name '", info.name, "'"));
    }
  }

  // The data section starts at the first aligned offset after the tensor infos. Positions
  // are at most the file size, so adding alignment - 1 cannot overflow.
  const uint64_t alignment = file->alignment_;
  file->data_offset_ = (parser.position() + alignment - 1) / alignment * alignment;

  for (TensorInfo& info : file->tensors_) {
    const auto tensor_error = [&](absl::string_view message) {
      return parser.Invalid(absl::StrCat("tensor '", info.name, "' ", message));
    };
    const std::optional<GgmlTypeInfo> type = GgmlTypeInfoOf(info.ggml_type);
    if (!type) return tensor_error(absl::StrCat("has unknown ggml type id ", info.ggml_type));
    info.dtype = DTypeFromGgmlType(info.ggml_type);
    const std::string shape = absl::StrCat("[", absl::StrJoin(info.shape, ", "), "]");
    // Rows are whole blocks; a 0-d tensor counts as one element along dimension 0.
    const int64_t ne0 = info.shape.empty() ? 1 : info.shape[0];
    if (ne0 % type->block_size != 0) {
      return tensor_error(absl::StrCat("of type ", Sv(type->name), " has shape ", shape,
                                       ": dimension 0 is not a multiple of the block size ",
                                       type->block_size));
    }
    uint64_t elements = 1;
    for (const int64_t dim : info.shape) {
      if (!CheckedMul(elements, static_cast<uint64_t>(dim), &elements)) {
        return tensor_error(absl::StrCat("has too many elements (shape ", shape, ")"));
      }
    }
    // Dimension 0 is a whole number of blocks, so the element count is too.
    uint64_t num_bytes = 0;
    if (!CheckedMul(elements / static_cast<uint64_t>(type->block_size),
                    static_cast<uint64_t>(type->block_bytes), &num_bytes) ||
        num_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return tensor_error(absl::StrCat("is too large (shape ", shape, ")"));
    }
    if (info.offset % alignment != 0) {
      return tensor_error(
          absl::StrCat("data offset ", info.offset, " is not aligned to ", alignment, " bytes"));
    }
    uint64_t begin = 0;
    uint64_t end = 0;
    if (!CheckedAdd(file->data_offset_, info.offset, &begin) ||
        !CheckedAdd(begin, num_bytes, &end) || end > file_size) {
      return absl::DataLossError(absl::StrCat(
          path, ": tensor '", info.name, "' (", Sv(type->name), " ", shape, ", ", num_bytes,
          " bytes at data offset ", info.offset, ") extends past the end of the file (", file_size,
          " bytes; data section starts at ", file->data_offset_, ")"));
    }
    info.num_bytes = static_cast<int64_t>(num_bytes);
    info.data = bytes + begin;
  }
  return file;
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

const Value* GgufFile::Find(std::string_view key) const {
  const auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const TensorInfo* GgufFile::FindTensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

absl::StatusOr<const Value*> FindOrNotFound(const GgufFile& file, absl::string_view key) {
  const Value* value = file.Find(std::string_view(key.data(), key.size()));
  if (value == nullptr) {
    return absl::NotFoundError(absl::StrCat(file.path(), ": no metadata key '", key, "'"));
  }
  return value;
}

absl::Status WrongType(const GgufFile& file, absl::string_view key, const Value& value,
                       absl::string_view expected) {
  std::string actual(ValueTypeName(value.type));
  if (value.type == ValueType::kArray) {
    absl::StrAppend(&actual, " of ", ValueTypeName(value.element_type));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(file.path(), ": metadata key '", key, "' is ", actual, ", expected ", expected));
}

// An integer value as int64; false for non-integers and uint64 values past int64's range.
bool AsInt64(const Value& value, int64_t* out) {
  if (!IsInteger(value.type)) return false;
  if (const auto* u = std::get_if<uint64_t>(&value.data)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(*u);
    return true;
  }
  *out = std::get<int64_t>(value.data);
  return true;
}

// The elements of an array of `element type` values, or InvalidArgument naming the key.
template <typename Pred>
absl::StatusOr<const std::vector<Value>*> ArrayOf(const GgufFile& file, absl::string_view key,
                                                  absl::string_view expected, Pred accepts) {
  MOESERVE_ASSIGN_OR_RETURN(const Value* value, FindOrNotFound(file, key));
  if (value->type != ValueType::kArray || !accepts(value->element_type)) {
    return WrongType(file, key, *value, expected);
  }
  return &std::get<std::vector<Value>>(value->data);
}

}  // namespace

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key_view) const {
  const absl::string_view key = Sv(key_view);
  MOESERVE_ASSIGN_OR_RETURN(const Value* value, FindOrNotFound(*this, key));
  if (value->type != ValueType::kString) return WrongType(*this, key, *value, "string");
  return std::get<std::string>(value->data);
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key_view) const {
  const absl::string_view key = Sv(key_view);
  MOESERVE_ASSIGN_OR_RETURN(const Value* value, FindOrNotFound(*this, key));
  int64_t result = 0;
  if (!AsInt64(*value, &result)) {
    if (IsInteger(value->type)) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": metadata key '", key, "' value ",
                                                     std::get<uint64_t>(value->data),
                                                     " does not fit in int64"));
    }
    return WrongType(*this, key, *value, "an integer");
  }
  return result;
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key_view) const {
  const absl::string_view key = Sv(key_view);
  MOESERVE_ASSIGN_OR_RETURN(const Value* value, FindOrNotFound(*this, key));
  if (!IsFloat(value->type)) return WrongType(*this, key, *value, "float32 or float64");
  return std::get<double>(value->data);
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key_view) const {
  const absl::string_view key = Sv(key_view);
  MOESERVE_ASSIGN_OR_RETURN(const Value* value, FindOrNotFound(*this, key));
  if (value->type != ValueType::kBool) return WrongType(*this, key, *value, "bool");
  return std::get<bool>(value->data);
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key_view) const {
  const absl::string_view key = Sv(key_view);
  MOESERVE_ASSIGN_OR_RETURN(
      const std::vector<Value>* elements,
      ArrayOf(*this, key, "array of string", [](ValueType t) { return t == ValueType::kString; }));
  std::vector<std::string> result;
  result.reserve(elements->size());
  for (const Value& element : *elements) result.push_back(std::get<std::string>(element.data));
  return result;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key_view) const {
  const absl::string_view key = Sv(key_view);
  MOESERVE_ASSIGN_OR_RETURN(const std::vector<Value>* elements,
                            ArrayOf(*this, key, "array of integers", IsInteger));
  std::vector<int64_t> result(elements->size());
  for (size_t i = 0; i < elements->size(); ++i) {
    if (!AsInt64((*elements)[i], &result[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": metadata key '", key, "' element ", i, " does not fit in int64"));
    }
  }
  return result;
}

absl::StatusOr<std::vector<double>> GgufFile::GetFloatArray(std::string_view key_view) const {
  const absl::string_view key = Sv(key_view);
  MOESERVE_ASSIGN_OR_RETURN(const std::vector<Value>* elements,
                            ArrayOf(*this, key, "array of float32 or float64", IsFloat));
  std::vector<double> result;
  result.reserve(elements->size());
  for (const Value& element : *elements) result.push_back(std::get<double>(element.data));
  return result;
}

uint32_t GgmlTypeOf(DType type) {
  switch (type) {
    case DType::kF32:
      return 0;
    case DType::kF16:
      return 1;
    case DType::kQ4_0:
      return 2;
    case DType::kQ4_1:
      return 3;
    case DType::kQ8_0:
      return 8;
    case DType::kQ4_K:
      return 12;
    case DType::kQ6_K:
      return 14;
    case DType::kI32:
      return 26;
    case DType::kBF16:
      return 30;
  }
  return 0;
}

std::optional<DType> DTypeFromGgmlType(uint32_t ggml_type) {
  switch (ggml_type) {
    case 0:
      return DType::kF32;
    case 1:
      return DType::kF16;
    case 2:
      return DType::kQ4_0;
    case 3:
      return DType::kQ4_1;
    case 8:
      return DType::kQ8_0;
    case 12:
      return DType::kQ4_K;
    case 14:
      return DType::kQ6_K;
    case 26:
      return DType::kI32;
    case 30:
      return DType::kBF16;
    default:
      return std::nullopt;
  }
}

std::optional<GgmlTypeInfo> GgmlTypeInfoOf(uint32_t ggml_type) {
  // Ids 4, 5 (q4_2, q4_3), 31-33 and 36-38 (repacked variants) were removed from ggml and
  // never appear in files.
  switch (ggml_type) {
    case 0:
      return GgmlTypeInfo{"f32", 1, 4};
    case 1:
      return GgmlTypeInfo{"f16", 1, 2};
    case 2:
      return GgmlTypeInfo{"q4_0", 32, 18};
    case 3:
      return GgmlTypeInfo{"q4_1", 32, 20};
    case 6:
      return GgmlTypeInfo{"q5_0", 32, 22};
    case 7:
      return GgmlTypeInfo{"q5_1", 32, 24};
    case 8:
      return GgmlTypeInfo{"q8_0", 32, 34};
    case 9:
      return GgmlTypeInfo{"q8_1", 32, 36};
    case 10:
      return GgmlTypeInfo{"q2_K", 256, 84};
    case 11:
      return GgmlTypeInfo{"q3_K", 256, 110};
    case 12:
      return GgmlTypeInfo{"q4_K", 256, 144};
    case 13:
      return GgmlTypeInfo{"q5_K", 256, 176};
    case 14:
      return GgmlTypeInfo{"q6_K", 256, 210};
    case 15:
      return GgmlTypeInfo{"q8_K", 256, 292};
    case 16:
      return GgmlTypeInfo{"iq2_xxs", 256, 66};
    case 17:
      return GgmlTypeInfo{"iq2_xs", 256, 74};
    case 18:
      return GgmlTypeInfo{"iq3_xxs", 256, 98};
    case 19:
      return GgmlTypeInfo{"iq1_s", 256, 50};
    case 20:
      return GgmlTypeInfo{"iq4_nl", 32, 18};
    case 21:
      return GgmlTypeInfo{"iq3_s", 256, 110};
    case 22:
      return GgmlTypeInfo{"iq2_s", 256, 82};
    case 23:
      return GgmlTypeInfo{"iq4_xs", 256, 136};
    case 24:
      return GgmlTypeInfo{"i8", 1, 1};
    case 25:
      return GgmlTypeInfo{"i16", 1, 2};
    case 26:
      return GgmlTypeInfo{"i32", 1, 4};
    case 27:
      return GgmlTypeInfo{"i64", 1, 8};
    case 28:
      return GgmlTypeInfo{"f64", 1, 8};
    case 29:
      return GgmlTypeInfo{"iq1_m", 256, 56};
    case 30:
      return GgmlTypeInfo{"bf16", 1, 2};
    case 34:
      return GgmlTypeInfo{"tq1_0", 256, 54};
    case 35:
      return GgmlTypeInfo{"tq2_0", 256, 66};
    case 39:
      return GgmlTypeInfo{"mxfp4", 32, 17};
    default:
      return std::nullopt;
  }
}

}  // namespace moeserve::gguf
