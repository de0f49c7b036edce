// Reads safetensors checkpoints: one file, or a directory of shards merged into one
// TensorSource. Files are mmapped read-only for the life of the source and the tensor
// views point into the mappings (no copies). A safetensors file is an 8-byte
// little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the byte buffer the offsets count from. Everything in the header is validated as
// the reference implementation does (the tensors must tile the buffer exactly, with no
// gap or overlap); every error names the file and, where there is one, the tensor.
// Data pointers are only as aligned as the file makes them (writers pad the header to 8
// bytes); readers of f32 should not assume more.
#ifndef MOESERVE_ENGINE_LOADERS_SAFETENSORS_READER_H_
#define MOESERVE_ENGINE_LOADERS_SAFETENSORS_READER_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/loaders/tensor_source.h"

namespace moeserve {

// Opens one .safetensors file. Accepted dtypes: F32, F16, BF16, I32.
absl::StatusOr<std::unique_ptr<TensorSource>> OpenSafetensors(const std::string& path);

// Opens a checkpoint directory: the shards named by model.safetensors.index.json when it
// exists, else model.safetensors, else every *.safetensors in `dir`. Fails when a tensor is
// in two shards, or the index names a missing shard or a tensor its shard lacks.
absl::StatusOr<std::unique_ptr<TensorSource>> OpenSafetensorsDir(const std::string& dir);

// The concrete source behind both functions, for callers that want the metadata too.
class SafetensorsSource final : public TensorSource {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsSource>> Open(const std::string& path);
  static absl::StatusOr<std::unique_ptr<SafetensorsSource>> OpenDir(const std::string& dir);

  ~SafetensorsSource() override;
  SafetensorsSource(const SafetensorsSource&) = delete;
  SafetensorsSource& operator=(const SafetensorsSource&) = delete;

  const std::vector<TensorView>& tensors() const override { return tensors_; }
  const TensorView* Find(std::string_view name) const override;

  // The "__metadata__" maps of every file, merged; on a key set differently by two shards
  // the first shard (in file name order) wins.
  const std::map<std::string, std::string, std::less<>>& metadata() const { return metadata_; }
  // The files read, in the order they were opened.
  std::vector<std::string> files() const;

 private:
  struct Mapping {
    std::string path;
    void* data = nullptr;  // nullptr for an empty file
    size_t size = 0;
  };

  SafetensorsSource() = default;
  // Maps `path` and appends its tensors and metadata (tensors_ is left unsorted).
  absl::Status AddFile(const std::string& path);
  // Sorts tensors_ by name and fails on a name present twice.
  absl::Status Finish();

  std::vector<Mapping> mappings_;
  std::vector<TensorView> tensors_;  // sorted by name after Finish()
  std::map<std::string, std::string, std::less<>> metadata_;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_LOADERS_SAFETENSORS_READER_H_
