#include "tools/convert/cli.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>

#include "common/absl_strings.h"
#include "common/status.h"
#include "tools/convert/split.h"
#include "tools/convert/upcycle.h"

namespace moeserve::convert {
namespace {

absl::Status FlagError(std::string_view flag, std::string_view what) {
  return absl::InvalidArgumentError(Cat("--", flag, ": ", what));
}

template <typename T>
absl::StatusOr<T> ParseInteger(std::string_view flag, std::string_view text) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return FlagError(flag, Cat("'", text, "' is not an integer in range"));
  }
  return value;
}

absl::StatusOr<float> ParseFloat(std::string_view flag, std::string_view text) {
  float value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return FlagError(flag, Cat("'", text, "' is not a number"));
  }
  return value;
}

absl::StatusOr<DType> ParseDType(std::string_view text) {
  if (text == "f32" || text == "float32") return DType::kF32;
  if (text == "bf16" || text == "bfloat16") return DType::kBF16;
  if (text == "f16" || text == "float16") return DType::kF16;
  return FlagError("dtype", Cat("'", text, "' is not one of f32, bf16, f16"));
}

}  // namespace

std::string ConvertUsage() {
  return R"(moeserve-convert: a dense Llama (GGUF file or Hugging Face directory) -> a MoE checkpoint

  moeserve-convert upcycle --experts E --top-k K [--router random|zero] [--seed S]
                           [--dtype f32|bf16|f16] [--force] SRC DST
      Llama3-8x8b-MoE recipe: E copies of each dense MLP plus a new router, written as a
      Mixtral checkpoint (MixtralForCausalLM).
  moeserve-convert split --experts E --top-k K [--zero-router] [--seed S]
                         [--score-scale-factor X] [--dtype f32|bf16|f16] [--force] SRC DST
      LLaMA-MoE recipe: the FFN neurons partitioned into E experts of I/E neurons behind an
      MLP gate, written as a llama_moe checkpoint; score_scale_factor defaults to E/K.

  --router random|zero   router init: normal(0, 0.02) from --seed (default), or zeros
  --zero-router          split: all gate weights zero (uniform scores)
  --seed S               seed of the random router (default 0)
  --dtype                tensor type of the output (default: the source's float type;
                         f32 for quantized GGUF)
  --force                write into DST even when it is not empty
DST receives config.json, model.safetensors, tokenizer.json, tokenizer_config.json and
generation_config.json.
)";
}

absl::StatusOr<ConvertCommand> ParseConvertArgs(const std::vector<std::string>& args) {
  ConvertCommand command;
  if (args.empty()) return absl::InvalidArgumentError("missing subcommand: upcycle or split");
  const std::string& sub = args[0];
  if (sub == "--help" || sub == "-h" || sub == "help") return command;
  if (sub == "upcycle") {
    command.kind = ConvertCommand::Kind::kUpcycle;
  } else if (sub == "split") {
    command.kind = ConvertCommand::Kind::kSplit;
  } else {
    return absl::InvalidArgumentError(
        Cat("unknown subcommand '", sub, "' (expected upcycle or split)"));
  }
  const bool split = command.kind == ConvertCommand::Kind::kSplit;
  ConvertOptions& o = command.options;
  bool have_experts = false;
  bool have_top_k = false;
  std::vector<std::string> positional;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!arg.starts_with("--") || arg == "--") {
      positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    for (char& c : name) c = c == '_' ? '-' : c;
    if (name == "help") {
      command.kind = ConvertCommand::Kind::kHelp;
      return command;
    }
    const bool boolean = name == "force" || name == "zero-router";
    if (boolean) {
      if (value.has_value()) return FlagError(name, "takes no value");
    } else if (!value.has_value()) {
      if (i + 1 >= args.size()) return FlagError(name, "needs a value");
      value = args[++i];
    }
    if (name == "experts") {
      MOESERVE_ASSIGN_OR_RETURN(o.num_experts, ParseInteger<int32_t>(name, *value));
      have_experts = true;
    } else if (name == "top-k") {
      MOESERVE_ASSIGN_OR_RETURN(o.top_k, ParseInteger<int32_t>(name, *value));
      have_top_k = true;
    } else if (name == "seed") {
      MOESERVE_ASSIGN_OR_RETURN(o.seed, ParseInteger<uint64_t>(name, *value));
    } else if (name == "dtype") {
      MOESERVE_ASSIGN_OR_RETURN(o.dtype, ParseDType(*value));
    } else if (name == "force") {
      o.force = true;
    } else if (name == "router" && !split) {
      if (*value == "random") {
        o.router = RouterInit::kRandom;
      } else if (*value == "zero") {
        o.router = RouterInit::kZero;
      } else {
        return FlagError(name, Cat("'", *value, "' is not one of random, zero"));
      }
    } else if (name == "zero-router" && split) {
      o.router = RouterInit::kZero;
    } else if (name == "score-scale-factor" && split) {
      MOESERVE_ASSIGN_OR_RETURN(o.score_scale_factor, ParseFloat(name, *value));
    } else {
      return absl::InvalidArgumentError(Cat("unknown flag '--", name, "' for ", sub));
    }
  }
  if (!have_experts) return FlagError("experts", "is required");
  if (!have_top_k) return FlagError("top-k", "is required");
  MOESERVE_RETURN_IF_ERROR(ValidateOptions(o));
  if (positional.size() < 2) {
    return absl::InvalidArgumentError(positional.empty() ? "missing SRC and DST" : "missing DST");
  }
  if (positional.size() > 2) {
    return absl::InvalidArgumentError(
        Cat("unexpected argument '", positional[2], "' after SRC and DST"));
  }
  command.src = positional[0];
  command.dst = positional[1];
  return command;
}

absl::Status RunConvertCommand(const ConvertCommand& command) {
  switch (command.kind) {
    case ConvertCommand::Kind::kUpcycle:
      return Upcycle(command.src, command.dst, command.options);
    case ConvertCommand::Kind::kSplit:
      return Split(command.src, command.dst, command.options);
    case ConvertCommand::Kind::kHelp:
      break;
  }
  return absl::OkStatus();
}

}  // namespace moeserve::convert
