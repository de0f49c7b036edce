#include "engine/loaders/torch_bin_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/absl_strings.h"
#include "common/status.h"
#include "engine/loaders/json_lite.h"
#include "engine/loaders/pickle.h"
#include "engine/loaders/zip_reader.h"

namespace moeserve {
namespace {

constexpr char kIndexName[] = "pytorch_model.bin.index.json";
constexpr char kSingleName[] = "pytorch_model.bin";
constexpr int64_t kMaxIndexBytes = 64 << 20;

int64_t ElementBytes(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
    default:
      return 0;  // the unpickler yields only the four above
  }
}

struct Storage {
  const uint8_t* data = nullptr;
  int64_t numel = 0;
  DType dtype = DType::kF32;
  std::string type_name;
};

class TorchBinSource : public TensorSource {
 public:
  const std::vector<TensorView>& tensors() const override { return tensors_; }

  const TensorView* Find(std::string_view name) const override {
    const auto it =
        std::lower_bound(tensors_.begin(), tensors_.end(), name,
                         [](const TensorView& view, std::string_view n) { return view.name < n; });
    return it != tensors_.end() && it->name == name ? &*it : nullptr;
  }

  // Reads one archive and appends its tensors (unsorted until Finish()).
  absl::Status AddFile(const std::string& path);

  // Sorts by name; fails on a name that two files both hold.
  absl::Status Finish() {
    std::sort(tensors_.begin(), tensors_.end(),
              [](const TensorView& a, const TensorView& b) { return a.name < b.name; });
    for (size_t i = 1; i < tensors_.size(); ++i) {
      if (tensors_[i].name == tensors_[i - 1].name) {
        return absl::InvalidArgumentError(Cat("tensor '", tensors_[i].name, "' is in both ",
                                              tensors_[i - 1].file, " and ", tensors_[i].file));
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<TensorView> MakeView(const std::string& path, const Storage& storage,
                                      const pickle::PickledTensor& tensor);

  std::vector<std::unique_ptr<ZipArchive>> archives_;
  std::vector<std::unique_ptr<uint8_t[]>> copies_;  // non-contiguous tensors, made contiguous
  std::vector<TensorView> tensors_;
};

// The "<archive>/" prefix shared by the entries: the directory holding data.pkl.
absl::StatusOr<std::string> ArchivePrefix(const ZipArchive& zip) {
  std::string prefix;
  for (const ZipEntry& entry : zip.entries()) {
    const size_t slash = entry.name.find('/');
    if (slash == std::string::npos ||
        entry.name.compare(slash, std::string::npos, "/data.pkl") != 0) {
      continue;
    }
    if (!prefix.empty()) {
      return absl::InvalidArgumentError(
          Cat(zip.path(), ": more than one data.pkl (", prefix, "data.pkl, ", entry.name, ")"));
    }
    prefix = entry.name.substr(0, slash + 1);
  }
  if (prefix.empty()) {
    return absl::InvalidArgumentError(
        Cat(zip.path(), ": no <archive>/data.pkl entry; not a torch.save checkpoint"));
  }
  return prefix;
}

absl::Status CheckByteOrder(const ZipArchive& zip, const std::string& prefix) {
  const ZipEntry* entry = zip.Find(prefix + "byteorder");
  if (entry == nullptr) return absl::OkStatus();  // older torch: always little-endian
  MOESERVE_ASSIGN_OR_RETURN(const ZipData data, zip.Read(*entry));
  const std::string_view order(reinterpret_cast<const char*>(data.data), data.size);
  if (order == "little") return absl::OkStatus();
  if (order == "big") {
    return absl::InvalidArgumentError(
        Cat(zip.path(), ": big-endian checkpoint (byteorder 'big') is not supported"));
  }
  return absl::InvalidArgumentError(
      Cat(zip.path(), ": unrecognised byteorder '", order.substr(0, 32), "'"));
}

// Elements a strided tensor spans in its storage past its offset (max index + 1), or 0
// when it is empty; false on overflow.
bool Extent(const pickle::PickledTensor& t, int64_t* numel, int64_t* span) {
  *numel = 1;
  int64_t last = 0;
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (__builtin_mul_overflow(*numel, t.shape[d], numel)) return false;
  }
  if (*numel == 0) {
    *span = 0;
    return true;
  }
  for (size_t d = 0; d < t.shape.size(); ++d) {
    int64_t step = 0;
    if (__builtin_mul_overflow(t.shape[d] - 1, t.stride[d], &step) ||
        __builtin_add_overflow(last, step, &last)) {
      return false;
    }
  }
  *span = last + 1;
  return true;
}

bool IsRowMajor(const pickle::PickledTensor& t) {
  int64_t expected = 1;
  for (size_t d = t.shape.size(); d-- > 0;) {
    if (t.shape[d] != 1 && t.stride[d] != expected) return false;  // size-1 dims: any stride
    expected *= t.shape[d];
  }
  return true;
}

// Gathers a strided tensor into a row-major buffer of numel * element_bytes.
void CopyStrided(const uint8_t* base, const pickle::PickledTensor& t, int64_t numel,
                 int64_t element_bytes, uint8_t* out) {
  const size_t rank = t.shape.size();
  std::vector<int64_t> index(rank, 0);
  int64_t offset = 0;  // elements from base, following `index`
  for (int64_t i = 0; i < numel; ++i) {
    std::memcpy(out + i * element_bytes, base + offset * element_bytes, element_bytes);
    for (size_t d = rank; d-- > 0;) {  // odometer increment, innermost dimension first
      if (++index[d] < t.shape[d]) {
        offset += t.stride[d];
        break;
      }
      offset -= (t.shape[d] - 1) * t.stride[d];
      index[d] = 0;
    }
  }
}

absl::StatusOr<TensorView> TorchBinSource::MakeView(const std::string& path, const Storage& storage,
                                                    const pickle::PickledTensor& tensor) {
  const auto error = [&](std::string_view what) {
    return absl::InvalidArgumentError(Cat(path, ": tensor '", tensor.name, "' ", what));
  };
  int64_t numel = 0;
  int64_t span = 0;
  if (!Extent(tensor, &numel, &span)) return error("has a size or stride that overflows");
  if (span > 0 &&
      (tensor.storage_offset > storage.numel || span > storage.numel - tensor.storage_offset)) {
    return error(Cat("spans elements [", tensor.storage_offset, ", +", span, ") of storage '",
                     tensor.storage.key, "' which has only ", storage.numel));
  }
  // Overlapping strides (an expanded tensor) would make the copy larger than the file;
  // every layout torch saves for a plain tensor has at most as many elements as its storage.
  if (numel > storage.numel) {
    return error(Cat("has ", numel, " elements but its storage only ", storage.numel,
                     " (overlapping strides, e.g. an expanded tensor, are not supported)"));
  }
  const int64_t element_bytes = ElementBytes(storage.dtype);
  TensorView view;
  view.name = tensor.name;
  view.dtype = storage.dtype;
  view.shape = tensor.shape;
  view.num_bytes = numel * element_bytes;  // <= the storage's bytes, checked above
  view.file = path;
  if (numel == 0) {
    view.data = storage.data;
    return view;
  }
  const uint8_t* base = storage.data + tensor.storage_offset * element_bytes;
  if (IsRowMajor(tensor)) {
    view.data = base;
  } else {
    auto copy = std::make_unique_for_overwrite<uint8_t[]>(view.num_bytes);
    CopyStrided(base, tensor, numel, element_bytes, copy.get());
    view.data = copy.get();
    copies_.push_back(std::move(copy));
  }
  return view;
}

absl::Status TorchBinSource::AddFile(const std::string& path) {
  MOESERVE_ASSIGN_OR_RETURN(std::unique_ptr<ZipArchive> zip, ZipArchive::Open(path));
  MOESERVE_ASSIGN_OR_RETURN(const std::string prefix, ArchivePrefix(*zip));
  MOESERVE_RETURN_IF_ERROR(CheckByteOrder(*zip, prefix));
  const std::string pkl_name = prefix + "data.pkl";
  MOESERVE_ASSIGN_OR_RETURN(const ZipData pkl, zip->Read(*zip->Find(pkl_name)));
  MOESERVE_ASSIGN_OR_RETURN(
      const std::vector<pickle::PickledTensor> pickled,
      pickle::ParseStateDict(std::string_view(reinterpret_cast<const char*>(pkl.data), pkl.size),
                             Cat(path, " (", pkl_name, ")")));

  std::unordered_map<std::string, Storage> storages;
  for (const pickle::PickledTensor& tensor : pickled) {
    const pickle::StorageRef& ref = tensor.storage;
    auto it = storages.find(ref.key);
    if (it == storages.end()) {
      const std::string entry_name = Cat(prefix, "data/", ref.key);
      const ZipEntry* entry = zip->Find(entry_name);
      if (entry == nullptr) {
        return absl::InvalidArgumentError(Cat(path, ": tensor '", tensor.name, "' needs entry '",
                                              entry_name, "', which the archive lacks"));
      }
      MOESERVE_ASSIGN_OR_RETURN(const ZipData data, zip->Read(*entry));
      const int64_t element_bytes = ElementBytes(*ref.dtype);
      if (data.size % element_bytes != 0 ||
          static_cast<int64_t>(data.size / element_bytes) != ref.numel) {
        return absl::InvalidArgumentError(
            Cat(path, ": storage '", entry_name, "' of tensor '", tensor.name, "' has ", data.size,
                " bytes, but the pickle says ", ref.numel, " elements of ", ref.type_name));
      }
      it =
          storages.emplace(ref.key, Storage{data.data, ref.numel, *ref.dtype, ref.type_name}).first;
    } else if (it->second.type_name != ref.type_name || it->second.numel != ref.numel) {
      return absl::InvalidArgumentError(Cat(
          path, ": tensor '", tensor.name, "' sees storage '", ref.key, "' as ", ref.numel, " x ",
          ref.type_name, ", another tensor as ", it->second.numel, " x ", it->second.type_name));
    }
    MOESERVE_ASSIGN_OR_RETURN(TensorView view, MakeView(path, it->second, tensor));
    tensors_.push_back(std::move(view));
  }
  archives_.push_back(std::move(zip));
  return absl::OkStatus();
}

bool IsFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat(path, ": cannot open"));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0 || size > kMaxIndexBytes) {
    return absl::InvalidArgumentError(Cat(path, ": unreadable or larger than ", kMaxIndexBytes));
  }
  in.seekg(0);
  std::string text(static_cast<size_t>(size), '\0');
  if (!in.read(text.data(), size)) return absl::DataLossError(Cat(path, ": read failed"));
  return text;
}

// weight_map of an index.json: tensor name -> shard file name (a plain file name).
absl::StatusOr<std::map<std::string, std::string, std::less<>>> ReadWeightMap(
    const std::string& index_path) {
  MOESERVE_ASSIGN_OR_RETURN(const std::string text, ReadSmallFile(index_path));
  absl::StatusOr<json_lite::Value> root = json_lite::Parse(text);
  if (!root.ok()) {
    return absl::InvalidArgumentError(Cat(index_path, ": ", root.status().message()));
  }
  const json_lite::Value* map = root->Find("weight_map");
  if (map == nullptr || !map->is_object()) {
    return absl::InvalidArgumentError(Cat(index_path, ": no \"weight_map\" object"));
  }
  std::map<std::string, std::string, std::less<>> out;
  for (const auto& [name, shard] : map->as_object()) {
    if (!shard.is_string()) {
      return absl::InvalidArgumentError(Cat(index_path, ": weight_map[\"", name, "\"] is a ",
                                            json_lite::TypeName(shard), ", not a string"));
    }
    const std::string& file = shard.as_string();
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos ||
        file.find('\\') != std::string::npos) {
      return absl::InvalidArgumentError(Cat(index_path, ": weight_map[\"", name, "\"] = \"", file,
                                            "\" is not a plain file name"));
    }
    out.emplace(name, file);
  }
  if (out.empty()) return absl::InvalidArgumentError(Cat(index_path, ": empty weight_map"));
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TensorSource>> OpenTorchBin(const std::string& path) {
  auto source = std::make_unique<TorchBinSource>();
  MOESERVE_RETURN_IF_ERROR(source->AddFile(path));
  MOESERVE_RETURN_IF_ERROR(source->Finish());
  return source;
}

absl::StatusOr<std::unique_ptr<TensorSource>> OpenTorchBinDir(const std::string& dir) {
  const std::string index_path = Cat(dir, "/", kIndexName);
  if (!IsFile(index_path)) {
    const std::string single = Cat(dir, "/", kSingleName);
    if (!IsFile(single)) {
      return absl::NotFoundError(Cat(dir, ": neither ", kIndexName, " nor ", kSingleName));
    }
    return OpenTorchBin(single);
  }
  MOESERVE_ASSIGN_OR_RETURN(const auto weight_map, ReadWeightMap(index_path));
  std::vector<std::string> shards;
  for (const auto& [name, shard] : weight_map) shards.push_back(shard);
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());

  auto source = std::make_unique<TorchBinSource>();
  for (const std::string& shard : shards) {
    const std::string path = Cat(dir, "/", shard);
    if (!IsFile(path)) {
      return absl::NotFoundError(Cat(index_path, ": shard '", shard, "' is missing"));
    }
    MOESERVE_RETURN_IF_ERROR(source->AddFile(path));
  }
  MOESERVE_RETURN_IF_ERROR(source->Finish());
  for (const TensorView& view : source->tensors()) {
    const auto it = weight_map.find(view.name);
    const std::string_view file = std::string_view(view.file).substr(dir.size() + 1);
    if (it == weight_map.end()) {
      return absl::InvalidArgumentError(
          Cat(view.file, ": tensor '", view.name, "' is not listed in ", index_path));
    }
    if (it->second != file) {
      return absl::InvalidArgumentError(Cat(index_path, ": places tensor '", view.name, "' in ",
                                            it->second, " but it is in ", view.file));
    }
  }
  if (source->tensors().size() != weight_map.size()) {
    for (const auto& [name, shard] : weight_map) {
      if (source->Find(name) == nullptr) {
        return absl::InvalidArgumentError(
            Cat(index_path, ": tensor '", name, "' is not in ", Cat(dir, "/", shard)));
      }
    }
  }
  return source;
}

}  // namespace moeserve
