// Parses memory sizes as operators write them on command lines: "1073741824", "512MiB",
// "2GiB", "1.5G", "800MB". Binary (KiB, MiB, GiB, TiB; K, M, G, T) and decimal (KB, MB,
// GB, TB) suffixes, case-insensitive.
#ifndef MOESERVE_COMMON_BYTE_SIZE_H_
#define MOESERVE_COMMON_BYTE_SIZE_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace moeserve {

// InvalidArgument for anything else, for negative or non-finite values and past 2^62.
absl::StatusOr<int64_t> ParseByteSize(std::string_view text);

}  // namespace moeserve

#endif  // MOESERVE_COMMON_BYTE_SIZE_H_
