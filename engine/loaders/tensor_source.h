// A checkpoint file as a set of named tensors, whatever its format (safetensors,
// PyTorch .bin, and later GGUF through an adapter). Views stay valid for the life of the
// source; data is mmapped where the format allows and copied only when it must be (e.g.
// a non-contiguous tensor in a pickle). Shapes are PyTorch order: outermost first,
// row-major, the last dimension contiguous.
#ifndef MOESERVE_ENGINE_LOADERS_TENSOR_SOURCE_H_
#define MOESERVE_ENGINE_LOADERS_TENSOR_SOURCE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/dtype.h"

namespace moeserve {

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first
  const uint8_t* data = nullptr;
  int64_t num_bytes = 0;
  std::string file;  // the file it came from, for error messages
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // Every tensor, in a stable order (sorted by name).
  virtual const std::vector<TensorView>& tensors() const = 0;
  // nullptr when absent.
  virtual const TensorView* Find(std::string_view name) const = 0;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_LOADERS_TENSOR_SOURCE_H_
