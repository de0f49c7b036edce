// The command line of moeserve-convert, parsed into a command the library runs; kept out
// of main() so the tests check every error a user can make.
//
//   moeserve-convert upcycle --experts E --top-k K [--router random|zero] [--seed S]
//                            [--dtype f32|bf16|f16] [--force] SRC DST
//   moeserve-convert split   --experts E --top-k K [--zero-router] [--seed S]
//                            [--score-scale-factor X] [--dtype f32|bf16|f16] [--force] SRC DST
#ifndef MOESERVE_TOOLS_CONVERT_CLI_H_
#define MOESERVE_TOOLS_CONVERT_CLI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/convert/checkpoint_writer.h"

namespace moeserve::convert {

struct ConvertCommand {
  enum class Kind { kUpcycle, kSplit, kHelp };
  Kind kind = Kind::kHelp;
  std::string src;
  std::string dst;
  ConvertOptions options;
};

// The usage text printed by --help and after an error.
std::string ConvertUsage();

// Parses the arguments after the program name. InvalidArgument naming the flag or
// argument that is wrong (unknown subcommand or flag, a missing or malformed value,
// options out of range, a missing SRC or DST).
absl::StatusOr<ConvertCommand> ParseConvertArgs(const std::vector<std::string>& args);

// Runs a parsed upcycle or split command.
absl::Status RunConvertCommand(const ConvertCommand& command);

}  // namespace moeserve::convert

#endif  // MOESERVE_TOOLS_CONVERT_CLI_H_
