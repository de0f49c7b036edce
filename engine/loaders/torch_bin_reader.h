// Reads PyTorch checkpoints written by torch.save (the zip format, torch >= 1.6) as a
// TensorSource: pytorch_model.bin files and sharded directories. The pickle is read by the
// restricted unpickler in pickle.h, which never executes anything. Tensors whose layout
// is row-major contiguous are views into the mmapped storage; others (e.g. a saved
// transpose) are copied once into a buffer the source owns. Several tensors may share a
// storage (tied weights). Supported dtypes: float32, float16, bfloat16, int32; others
// (int64, float64, ...) fail naming the tensor. Big-endian checkpoints are refused.
#ifndef MOESERVE_ENGINE_LOADERS_TORCH_BIN_READER_H_
#define MOESERVE_ENGINE_LOADERS_TORCH_BIN_READER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/loaders/tensor_source.h"

namespace moeserve {

// One torch.save archive. Every error names `path` and, where there is one, the tensor.
absl::StatusOr<std::unique_ptr<TensorSource>> OpenTorchBin(const std::string& path);

// A checkpoint directory: the shards named by pytorch_model.bin.index.json's weight_map
// when that file exists, else pytorch_model.bin. Shards are merged; a tensor in two
// shards, a missing shard, a tensor the index places in a shard that lacks it, or a
// shard tensor the index does not list, is an error.
absl::StatusOr<std::unique_ptr<TensorSource>> OpenTorchBinDir(const std::string& dir);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_LOADERS_TORCH_BIN_READER_H_
