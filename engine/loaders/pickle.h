// A restricted unpickler for the data.pkl of a torch.save archive holding a state_dict.
// It interprets only the opcodes a state_dict pickle uses, resolves only a whitelist of
// globals (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter /
// _rebuild_parameter_with_state and the torch.*Storage classes) and never imports or calls
// anything: "calling" a whitelisted global builds a plain record. Anything else - another
// global (os.system, builtins.eval, ...), REDUCE on a non-whitelisted callable, an opcode
// outside the subset - is an InvalidArgument error naming the global or opcode and the byte
// offset. Values live in one flat arena addressed by index, so there is no recursion and
// no reference cycle, and the arena, stack and memo are bounded by PickleLimits.
#ifndef MOESERVE_ENGINE_LOADERS_PICKLE_H_
#define MOESERVE_ENGINE_LOADERS_PICKLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace moeserve::pickle {

// The persistent id of a storage: ('storage', torch.XStorage, key, location, numel).
struct StorageRef {
  std::string key;             // names the archive entry "<archive>/data/<key>"
  std::string type_name;       // e.g. "torch.FloatStorage"
  std::optional<DType> dtype;  // nullopt for types moeserve does not read (Long, Double, ...)
  std::string location;        // e.g. "cpu", "cuda:0"; informational
  int64_t numel = 0;           // elements in the storage
};

// One entry of the state dict: a strided view into a storage, in elements.
struct PickledTensor {
  std::string name;
  StorageRef storage;
  int64_t storage_offset = 0;
  std::vector<int64_t> shape;   // outermost first
  std::vector<int64_t> stride;  // same rank as shape
};

struct PickleLimits {
  // Objects created (ints, strings, tuples, ...); a real state dict uses ~15 per tensor.
  int64_t max_values = 4 << 20;
  int64_t max_rank = 16;               // dimensions of a tensor
  int64_t max_string_bytes = 1 << 20;  // one string or global name
};

// Unpickles `bytes` (the whole data.pkl) and returns the tensors of its top-level dict in
// file order. `file` prefixes every error message. Fails on: a non-whitelisted global or
// opcode, malformed or truncated input, a top level that is not a dict of str -> tensor,
// a duplicate name, a tensor whose storage dtype moeserve cannot read (naming the tensor),
// negative sizes/strides/offsets, or exceeding `limits`.
absl::StatusOr<std::vector<PickledTensor>> ParseStateDict(std::string_view bytes,
                                                          std::string_view file,
                                                          const PickleLimits& limits = {});

}  // namespace moeserve::pickle

#endif  // MOESERVE_ENGINE_LOADERS_PICKLE_H_
