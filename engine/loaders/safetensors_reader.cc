#include "engine/loaders/safetensors_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/absl_strings.h"
#include "common/status.h"
#include "engine/loaders/json_lite.h"

namespace moeserve {
namespace {

// The reference implementation's limit; it keeps a corrupt length from becoming a huge
// parse of whatever follows.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr uint64_t kMaxIndexBytes = 100'000'000;
constexpr std::string_view kIndexName = "model.safetensors.index.json";
constexpr std::string_view kSingleName = "model.safetensors";

absl::Status Invalid(std::string_view path, std::string_view message) {
  return absl::InvalidArgumentError(Cat(path, ": ", message));
}

std::string TensorContext(std::string_view name) { return Cat("tensor '", name, "'"); }

// The dtypes moeserve reads; anything else is reported by name.
std::optional<DType> ParseDType(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  if (name == "I32") return DType::kI32;
  return std::nullopt;
}

// Maps a whole file read-only; *data is nullptr for an empty file (mmap refuses those).
absl::Status MapFile(const std::string& path, void** data, size_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, Sv(Cat(path, ": cannot open")));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::ErrnoToStatus(error, Sv(Cat(path, ": cannot stat")));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Invalid(path, "not a regular file");
  }
  *size = static_cast<size_t>(st.st_size);
  *data = nullptr;
  if (*size > 0) {
    void* mapping = ::mmap(nullptr, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      return absl::ErrnoToStatus(error, Sv(Cat(path, ": cannot mmap ", *size, " bytes")));
    }
    *data = mapping;
  }
  ::close(fd);  // the mapping keeps the file alive
  return absl::OkStatus();
}

// A header entry before its offsets are checked against the other tensors.
struct Entry {
  TensorView view;
  int64_t begin = 0;
  int64_t end = 0;
};

// Parses one {"dtype", "shape", "data_offsets"} object; checks its own sizes and bounds.
absl::Status ParseEntry(std::string_view path, std::string_view name, const json_lite::Value& v,
                        int64_t buffer_size, Entry* entry) {
  const std::string context = TensorContext(name);
  if (!v.is_object()) {
    return Invalid(path, Cat(context, " is a ", json_lite::TypeName(v), ", expected an object"));
  }
  const json_lite::Value* dtype = nullptr;
  const json_lite::Value* shape = nullptr;
  const json_lite::Value* offsets = nullptr;
  for (const auto& [key, value] : v.as_object()) {
    if (key == "dtype") {
      dtype = &value;
    } else if (key == "shape") {
      shape = &value;
    } else if (key == "data_offsets") {
      offsets = &value;
    }
    // Other fields are ignored, as the reference implementation ignores them.
  }
  if (dtype == nullptr || shape == nullptr || offsets == nullptr) {
    return Invalid(path, Cat(context, " lacks ",
                             dtype == nullptr   ? "dtype"
                             : shape == nullptr ? "shape"
                                                : "data_offsets"));
  }

  if (!dtype->is_string()) return Invalid(path, Cat(context, " dtype is not a string"));
  const std::optional<DType> parsed = ParseDType(dtype->as_string());
  if (!parsed) {
    return absl::UnimplementedError(
        Cat(path, ": ", context, " has dtype ", dtype->as_string(),
            ", which moeserve does not read (only F32, F16, BF16, I32)"));
  }

  if (!shape->is_array()) return Invalid(path, Cat(context, " shape is not an array"));
  int64_t num_elements = 1;
  for (const json_lite::Value& dim : shape->as_array()) {
    if (!dim.is_int() || dim.as_int() < 0) {
      return Invalid(path, Cat(context, " shape has an entry that is not a non-negative integer"));
    }
    if (__builtin_mul_overflow(num_elements, dim.as_int(), &num_elements)) {
      return Invalid(path, Cat(context, " shape overflows int64 elements"));
    }
    entry->view.shape.push_back(dim.as_int());
  }
  int64_t num_bytes = 0;
  if (__builtin_mul_overflow(num_elements, DTypeRowBytes(*parsed, 1), &num_bytes)) {
    return Invalid(path, Cat(context, " size overflows int64 bytes"));
  }

  if (!offsets->is_array() || offsets->as_array().size() != 2 || !offsets->as_array()[0].is_int() ||
      !offsets->as_array()[1].is_int()) {
    return Invalid(path, Cat(context, " data_offsets is not an array of two integers"));
  }
  const int64_t begin = offsets->as_array()[0].as_int();
  const int64_t end = offsets->as_array()[1].as_int();
  if (begin < 0 || end < begin) {
    return Invalid(path, Cat(context, " has data_offsets [", begin, ", ", end, "]"));
  }
  if (end - begin != num_bytes) {
    return Invalid(path, Cat(context, " data_offsets [", begin, ", ", end, "] span ", end - begin,
                             " bytes but its shape and dtype need ", num_bytes));
  }
  if (end > buffer_size) {
    return Invalid(path, Cat(context, " data_offsets [", begin, ", ", end,
                             "] run past the end of the ", buffer_size, "-byte data buffer"));
  }
  entry->view.name = std::string(name);
  entry->view.dtype = *parsed;
  entry->view.num_bytes = num_bytes;
  entry->view.file = std::string(path);
  entry->begin = begin;
  entry->end = end;
  return absl::OkStatus();
}

// The tensors must tile [0, buffer_size) exactly, as the reference implementation checks:
// an overlap means two tensors alias, a gap or tail means the header does not describe the
// file it came with.
absl::Status CheckTiling(std::string_view path, std::vector<Entry>* entries, int64_t buffer_size) {
  std::sort(entries->begin(), entries->end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  int64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : *entries) {
    if (e.begin < expected) {
      return Invalid(path, Cat(TensorContext(e.view.name), " data_offsets [", e.begin, ", ", e.end,
                               "] overlap ", TensorContext(previous->view.name), " [",
                               previous->begin, ", ", previous->end, "]"));
    }
    if (e.begin > expected) {
      return Invalid(path, Cat(TensorContext(e.view.name), " starts at ", e.begin,
                               " but the previous tensor ends at ", expected,
                               " (tensors must cover the data buffer contiguously)"));
    }
    expected = e.end;
    previous = &e;
  }
  if (expected != buffer_size) {
    return Invalid(path, Cat("the tensors cover ", expected, " bytes of the ", buffer_size,
                             "-byte data buffer"));
  }
  return absl::OkStatus();
}

absl::Status ParseMetadata(std::string_view path, const json_lite::Value& v,
                           std::map<std::string, std::string, std::less<>>* metadata) {
  if (!v.is_object()) return Invalid(path, "__metadata__ is not an object");
  for (const auto& [key, value] : v.as_object()) {
    if (!value.is_string()) {
      return Invalid(path, Cat("__metadata__ '", key, "' is a ", json_lite::TypeName(value),
                               ", expected a string"));
    }
    metadata->emplace(key, value.as_string());
  }
  return absl::OkStatus();
}

// Parses a mapped file into views of its tensors (in header order) and its metadata.
absl::Status ParseFile(const std::string& path, const uint8_t* bytes, size_t size,
                       std::vector<TensorView>* tensors,
                       std::map<std::string, std::string, std::less<>>* metadata) {
  if (size < 8) {
    return Invalid(path, Cat("file is ", size, " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
  if (header_size > kMaxHeaderBytes) {
    return Invalid(path, Cat("header length ", header_size, " exceeds the limit of ",
                             kMaxHeaderBytes, " bytes"));
  }
  if (header_size > size - 8) {
    return Invalid(
        path, Cat("header length ", header_size, " runs past the end of the ", size, "-byte file"));
  }
  const std::string_view header(reinterpret_cast<const char*>(bytes + 8), header_size);
  absl::StatusOr<json_lite::Value> root = json_lite::Parse(header);
  if (!root.ok()) return Invalid(path, Cat("header: ", root.status().message()));
  if (!root->is_object()) {
    return Invalid(path, Cat("header is a ", json_lite::TypeName(*root), ", expected an object"));
  }

  const uint8_t* buffer = bytes + 8 + header_size;
  const auto buffer_size = static_cast<int64_t>(size - 8 - header_size);
  std::vector<Entry> entries;
  for (const auto& [name, value] : root->as_object()) {
    if (name == "__metadata__") {
      MOESERVE_RETURN_IF_ERROR(ParseMetadata(path, value, metadata));
      continue;
    }
    Entry entry;
    MOESERVE_RETURN_IF_ERROR(ParseEntry(path, name, value, buffer_size, &entry));
    entries.push_back(std::move(entry));
  }
  MOESERVE_RETURN_IF_ERROR(CheckTiling(path, &entries, buffer_size));
  for (Entry& e : entries) {
    e.view.data = buffer + e.begin;
    tensors->push_back(std::move(e.view));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, uint64_t limit) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) return absl::NotFoundError(Cat(path, ": cannot read: ", error.message()));
  if (size > limit) return Invalid(path, Cat("file is ", size, " bytes, over the limit ", limit));
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat(path, ": cannot open"));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::DataLossError(Cat(path, ": read failed"));
  return std::move(contents).str();
}

// The shard names an index lists must be plain file names inside the checkpoint directory.
bool IsPlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of("/\\") == std::string_view::npos;
}

}  // namespace

SafetensorsSource::~SafetensorsSource() {
  for (const Mapping& m : mappings_) {
    if (m.data != nullptr) ::munmap(m.data, m.size);
  }
}

const TensorView* SafetensorsSource::Find(std::string_view name) const {
  const auto it = std::lower_bound(
      tensors_.begin(), tensors_.end(), name,
      [](const TensorView& t, std::string_view n) { return std::string_view(t.name) < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

std::vector<std::string> SafetensorsSource::files() const {
  std::vector<std::string> files;
  for (const Mapping& m : mappings_) files.push_back(m.path);
  return files;
}

absl::Status SafetensorsSource::AddFile(const std::string& path) {
  Mapping mapping;
  mapping.path = path;
  MOESERVE_RETURN_IF_ERROR(MapFile(path, &mapping.data, &mapping.size));
  mappings_.push_back(mapping);  // owned from here on, so an error below still unmaps it
  return ParseFile(path, static_cast<const uint8_t*>(mapping.data), mapping.size, &tensors_,
                   &metadata_);
}

absl::Status SafetensorsSource::Finish() {
  std::sort(tensors_.begin(), tensors_.end(),
            [](const TensorView& a, const TensorView& b) { return a.name < b.name; });
  const auto duplicate =
      std::adjacent_find(tensors_.begin(), tensors_.end(),
                         [](const TensorView& a, const TensorView& b) { return a.name == b.name; });
  if (duplicate != tensors_.end()) {
    return absl::InvalidArgumentError(Cat(TensorContext(duplicate->name), " is in both ",
                                          duplicate->file, " and ", (duplicate + 1)->file));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SafetensorsSource>> SafetensorsSource::Open(
    const std::string& path) {
  std::unique_ptr<SafetensorsSource> source(new SafetensorsSource());
  MOESERVE_RETURN_IF_ERROR(source->AddFile(path));
  MOESERVE_RETURN_IF_ERROR(source->Finish());
  return source;
}

absl::StatusOr<std::unique_ptr<SafetensorsSource>> SafetensorsSource::OpenDir(
    const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(Cat(dir, ": not a directory"));
  }
  std::unique_ptr<SafetensorsSource> source(new SafetensorsSource());
  const fs::path root(dir);
  const std::string index_path = (root / kIndexName).string();

  if (fs::exists(index_path, error)) {
    MOESERVE_ASSIGN_OR_RETURN(const std::string text, ReadSmallFile(index_path, kMaxIndexBytes));
    absl::StatusOr<json_lite::Value> index = json_lite::Parse(text);
    if (!index.ok()) return Invalid(index_path, std::string(index.status().message()));
    const json_lite::Value* weight_map = index->Find("weight_map");
    if (weight_map == nullptr || !weight_map->is_object()) {
      return Invalid(index_path, "has no \"weight_map\" object");
    }
    std::set<std::string> shards;  // sorted, so shards open in file name order
    for (const auto& [name, shard] : weight_map->as_object()) {
      if (!shard.is_string() || !IsPlainFileName(shard.as_string())) {
        return Invalid(index_path, Cat("weight_map maps ", TensorContext(name),
                                       " to something that is not a file name in ", dir));
      }
      shards.insert(shard.as_string());
    }
    for (const std::string& shard : shards) {
      const std::string shard_path = (root / shard).string();
      if (!fs::exists(shard_path, error)) {
        return absl::NotFoundError(
            Cat(index_path, ": names shard ", shard, ", which does not exist in ", dir));
      }
      MOESERVE_RETURN_IF_ERROR(source->AddFile(shard_path));
    }
    MOESERVE_RETURN_IF_ERROR(source->Finish());
    for (const auto& [name, shard] : weight_map->as_object()) {
      const std::string shard_path = (root / shard.as_string()).string();
      const TensorView* tensor = source->Find(name);
      if (tensor == nullptr || tensor->file != shard_path) {
        return Invalid(index_path, Cat("weight_map puts ", TensorContext(name), " in ",
                                       shard.as_string(), ", which does not contain it"));
      }
    }
    return source;
  }

  const std::string single_path = (root / kSingleName).string();
  if (fs::exists(single_path, error)) {
    MOESERVE_RETURN_IF_ERROR(source->AddFile(single_path));
    MOESERVE_RETURN_IF_ERROR(source->Finish());
    return source;
  }

  std::vector<std::string> paths;
  for (fs::directory_iterator it(root, error), end; !error && it != end; it.increment(error)) {
    if (it->path().extension() == ".safetensors") paths.push_back(it->path().string());
  }
  if (error) return absl::NotFoundError(Cat(dir, ": cannot list: ", error.message()));
  if (paths.empty()) {
    return absl::NotFoundError(
        Cat(dir, ": no ", kIndexName, ", ", kSingleName, " or *.safetensors file"));
  }
  std::sort(paths.begin(), paths.end());
  for (const std::string& path : paths) MOESERVE_RETURN_IF_ERROR(source->AddFile(path));
  MOESERVE_RETURN_IF_ERROR(source->Finish());
  return source;
}

absl::StatusOr<std::unique_ptr<TensorSource>> OpenSafetensors(const std::string& path) {
  MOESERVE_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsSource> source,
                            SafetensorsSource::Open(path));
  return std::unique_ptr<TensorSource>(std::move(source));
}

absl::StatusOr<std::unique_ptr<TensorSource>> OpenSafetensorsDir(const std::string& dir) {
  MOESERVE_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsSource> source,
                            SafetensorsSource::OpenDir(dir));
  return std::unique_ptr<TensorSource>(std::move(source));
}

}  // namespace moeserve
