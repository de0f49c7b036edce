// moeserve-convert: turns a dense Llama (GGUF or Hugging Face directory) into a MoE
// checkpoint by the upcycle or split recipe (tools/convert/cli.h has the command line).
#include <cstdio>
#include <string>
#include <vector>

#include "common/logging.h"
#include "tools/convert/cli.h"

int main(int argc, char** argv) {
  using moeserve::convert::ConvertCommand;
  const std::vector<std::string> args(argv + 1, argv + argc);
  const absl::StatusOr<ConvertCommand> command = moeserve::convert::ParseConvertArgs(args);
  if (!command.ok()) {
    std::fprintf(stderr, "moeserve-convert: %s\n\n%s",
                 std::string(command.status().message()).c_str(),
                 moeserve::convert::ConvertUsage().c_str());
    return 2;
  }
  if (command->kind == ConvertCommand::Kind::kHelp) {
    std::fputs(moeserve::convert::ConvertUsage().c_str(), stdout);
    return 0;
  }
  const absl::Status status = moeserve::convert::RunConvertCommand(*command);
  if (!status.ok()) {
    std::fprintf(stderr, "moeserve-convert: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
