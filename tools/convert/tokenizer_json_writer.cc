#include "tools/convert/tokenizer_json_writer.h"

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/absl_strings.h"
#include "common/status.h"
#include "tools/convert/json_writer.h"

namespace moeserve::convert {
namespace {

// The Split regexes of Llama 3 and Qwen2 as their tokenizer.json files spell them.
constexpr std::string_view kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// llama.cpp's token types (tokenizer.ggml.token_type).
constexpr int64_t kControl = 3;
constexpr int64_t kUserDefined = 4;

// What tokenizer.json says for one GGUF pre-tokenizer type.
struct PreTokenizerRecipe {
  enum class Kind { kByteLevel, kDigitsByteLevel, kSplit } kind;
  std::string_view regex;  // kSplit
  bool nfc = false;
  bool ignore_merges = false;
};

std::optional<PreTokenizerRecipe> RecipeFor(std::string_view pre) {
  using Kind = PreTokenizerRecipe::Kind;
  if (pre == "gpt2" || pre == "gpt-2" || pre == "default") {
    return PreTokenizerRecipe{Kind::kByteLevel, {}};
  }
  if (pre == "smollm" || pre == "starcoder") return PreTokenizerRecipe{Kind::kDigitsByteLevel, {}};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    return PreTokenizerRecipe{Kind::kSplit, kLlama3Regex, false, /*ignore_merges=*/true};
  }
  if (pre == "qwen2") return PreTokenizerRecipe{Kind::kSplit, kQwen2Regex, /*nfc=*/true, false};
  return std::nullopt;
}

void ByteLevel(JsonWriter& json, bool add_prefix_space, bool use_regex) {
  json.BeginObject();
  json.Key("type").String("ByteLevel");
  json.Key("add_prefix_space").Bool(add_prefix_space);
  json.Key("trim_offsets").Bool(true);
  json.Key("use_regex").Bool(use_regex);
  json.EndObject();
}

void PreTokenizer(JsonWriter& json, const PreTokenizerRecipe& recipe) {
  using Kind = PreTokenizerRecipe::Kind;
  if (recipe.kind == Kind::kByteLevel) {
    ByteLevel(json, false, true);
    return;
  }
  json.BeginObject().Key("type").String("Sequence").Key("pretokenizers").BeginArray();
  if (recipe.kind == Kind::kDigitsByteLevel) {
    json.BeginObject().Key("type").String("Digits").Key("individual_digits").Bool(true).EndObject();
    ByteLevel(json, false, true);
  } else {
    json.BeginObject().Key("type").String("Split");
    json.Key("pattern").BeginObject().Key("Regex").String(recipe.regex).EndObject();
    json.Key("behavior").String("Isolated").Key("invert").Bool(false).EndObject();
    ByteLevel(json, false, false);
  }
  json.EndArray().EndObject();
}

// TemplateProcessing adding `bos` before and `eos` after each sequence when asked.
void PostProcessor(JsonWriter& json, const std::string* bos, int32_t bos_id, const std::string* eos,
                   int32_t eos_id) {
  const auto special = [&](const std::string& token, int type_id) {
    json.BeginObject().Key("SpecialToken").BeginObject();
    json.Key("id").String(token).Key("type_id").Int(type_id);
    json.EndObject().EndObject();
  };
  const auto sequence = [&](const char* id, int type_id) {
    json.BeginObject().Key("Sequence").BeginObject();
    json.Key("id").String(id).Key("type_id").Int(type_id);
    json.EndObject().EndObject();
  };
  json.BeginObject().Key("type").String("TemplateProcessing");
  json.Key("single").BeginArray();
  if (bos != nullptr) special(*bos, 0);
  sequence("A", 0);
  if (eos != nullptr) special(*eos, 0);
  json.EndArray();
  json.Key("pair").BeginArray();
  if (bos != nullptr) special(*bos, 0);
  sequence("A", 0);
  if (eos != nullptr) special(*eos, 0);
  if (bos != nullptr) special(*bos, 1);
  sequence("B", 1);
  if (eos != nullptr) special(*eos, 1);
  json.EndArray();
  json.Key("special_tokens").BeginObject();
  for (const auto& [token, id] : {std::pair(bos, bos_id), std::pair(eos, eos_id)}) {
    if (token == nullptr || (token == eos && bos != nullptr && *bos == *eos)) continue;
    json.Key(*token).BeginObject().Key("id").String(*token);
    json.Key("ids").BeginArray().Int(id).EndArray();
    json.Key("tokens").BeginArray().String(*token).EndArray().EndObject();
  }
  json.EndObject().EndObject();
}

// An optional token id: -1 when absent; InvalidArgument when outside the vocabulary.
absl::StatusOr<int32_t> OptionalId(const gguf::GgufFile& file, std::string_view key,
                                   size_t vocab_size) {
  if (file.Find(key) == nullptr) return -1;
  MOESERVE_ASSIGN_OR_RETURN(const int64_t id, file.GetInt(key));
  if (id < -1 || id >= static_cast<int64_t>(vocab_size)) {
    return absl::InvalidArgumentError(Cat(file.path(), ": ", key, " = ", id,
                                          " is outside the vocabulary of ", vocab_size, " tokens"));
  }
  return static_cast<int32_t>(id);
}

absl::StatusOr<bool> OptionalBool(const gguf::GgufFile& file, std::string_view key, bool fallback) {
  if (file.Find(key) == nullptr) return fallback;
  return file.GetBool(key);
}

}  // namespace

absl::StatusOr<HfTokenizerFiles> TokenizerFilesFromGguf(const gguf::GgufFile& file) {
  MOESERVE_ASSIGN_OR_RETURN(const std::string model, file.GetString("tokenizer.ggml.model"));
  if (model != "gpt2") {
    return absl::UnimplementedError(Cat(file.path(), ": tokenizer.ggml.model '", model,
                                        "' cannot be converted to tokenizer.json (supported: "
                                        "'gpt2', byte-level BPE)"));
  }
  std::string pre = "gpt2";
  if (file.Find("tokenizer.ggml.pre") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(pre, file.GetString("tokenizer.ggml.pre"));
  }
  const std::optional<PreTokenizerRecipe> recipe = RecipeFor(pre);
  if (!recipe.has_value()) {
    return absl::UnimplementedError(
        Cat(file.path(), ": tokenizer.ggml.pre '", pre,
            "' cannot be converted to tokenizer.json (supported: gpt2, smollm, starcoder, "
            "llama-bpe, qwen2)"));
  }
  MOESERVE_ASSIGN_OR_RETURN(const std::vector<std::string> tokens,
                            file.GetStringArray("tokenizer.ggml.tokens"));
  if (tokens.empty()) {
    return absl::InvalidArgumentError(Cat(file.path(), ": tokenizer.ggml.tokens is empty"));
  }
  std::vector<int64_t> types(tokens.size(), 1);
  if (file.Find("tokenizer.ggml.token_type") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(types, file.GetIntArray("tokenizer.ggml.token_type"));
    if (types.size() != tokens.size()) {
      return absl::InvalidArgumentError(Cat(file.path(), ": tokenizer.ggml.token_type has ",
                                            types.size(), " entries for ", tokens.size(),
                                            " tokens"));
    }
  }
  MOESERVE_ASSIGN_OR_RETURN(const std::vector<std::string> merges,
                            file.GetStringArray("tokenizer.ggml.merges"));
  const size_t n = tokens.size();
  MOESERVE_ASSIGN_OR_RETURN(const int32_t bos_id,
                            OptionalId(file, "tokenizer.ggml.bos_token_id", n));
  MOESERVE_ASSIGN_OR_RETURN(const int32_t eos_id,
                            OptionalId(file, "tokenizer.ggml.eos_token_id", n));
  MOESERVE_ASSIGN_OR_RETURN(const int32_t unk_id,
                            OptionalId(file, "tokenizer.ggml.unknown_token_id", n));
  MOESERVE_ASSIGN_OR_RETURN(const int32_t pad_id,
                            OptionalId(file, "tokenizer.ggml.padding_token_id", n));
  // llama.cpp adds BOS unless told otherwise, and EOS only when told.
  MOESERVE_ASSIGN_OR_RETURN(const bool add_bos,
                            OptionalBool(file, "tokenizer.ggml.add_bos_token", bos_id >= 0));
  MOESERVE_ASSIGN_OR_RETURN(const bool add_eos,
                            OptionalBool(file, "tokenizer.ggml.add_eos_token", false));
  if (add_bos && bos_id < 0) {
    return absl::InvalidArgumentError(
        Cat(file.path(), ": tokenizer.ggml.add_bos_token is true but there is no bos_token_id"));
  }
  if (add_eos && eos_id < 0) {
    return absl::InvalidArgumentError(
        Cat(file.path(), ": tokenizer.ggml.add_eos_token is true but there is no eos_token_id"));
  }

  absl::flat_hash_map<std::string, int64_t> seen;
  for (size_t id = 0; id < n; ++id) {
    const auto [it, inserted] = seen.emplace(tokens[id], static_cast<int64_t>(id));
    if (!inserted) {
      return absl::InvalidArgumentError(Cat(file.path(), ": tokenizer.ggml.tokens holds '",
                                            tokens[id], "' twice (ids ", it->second, " and ", id,
                                            "); tokenizer.json cannot"));
    }
  }

  JsonWriter json;
  json.BeginObject();
  json.Key("version").String("1.0");
  json.Key("truncation").Null();
  json.Key("padding").Null();
  json.Key("added_tokens").BeginArray();
  for (size_t id = 0; id < n; ++id) {
    if (types[id] != kControl && types[id] != kUserDefined) continue;
    json.BeginObject();
    json.Key("id").Int(static_cast<int64_t>(id));
    json.Key("content").String(tokens[id]);
    json.Key("single_word").Bool(false);
    json.Key("lstrip").Bool(false);
    json.Key("rstrip").Bool(false);
    json.Key("normalized").Bool(false);
    json.Key("special").Bool(types[id] == kControl);
    json.EndObject();
  }
  json.EndArray();
  json.Key("normalizer");
  if (recipe->nfc) {
    json.BeginObject().Key("type").String("NFC").EndObject();
  } else {
    json.Null();
  }
  json.Key("pre_tokenizer");
  PreTokenizer(json, *recipe);
  json.Key("post_processor");
  PostProcessor(json, add_bos ? &tokens[bos_id] : nullptr, bos_id,
                add_eos ? &tokens[eos_id] : nullptr, eos_id);
  json.Key("decoder");
  ByteLevel(json, true, true);
  json.Key("model").BeginObject();
  json.Key("type").String("BPE");
  json.Key("dropout").Null();
  json.Key("unk_token").Null();  // byte-level BPE has no unknowns
  json.Key("continuing_subword_prefix").String("");
  json.Key("end_of_word_suffix").String("");
  json.Key("fuse_unk").Bool(false);
  json.Key("byte_fallback").Bool(false);
  json.Key("ignore_merges").Bool(recipe->ignore_merges);
  json.Key("vocab").BeginObject();
  for (size_t id = 0; id < n; ++id) json.Key(tokens[id]).Int(static_cast<int64_t>(id));
  json.EndObject();
  json.Key("merges").BeginArray();
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& merge = merges[i];
    const size_t space = merge.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == merge.size() ||
        merge.find(' ', space + 1) != std::string::npos) {
      return absl::InvalidArgumentError(Cat(file.path(), ": tokenizer.ggml.merges[", i, "] '",
                                            merge, "' is not two tokens joined by one space"));
    }
    json.BeginArray().String(merge.substr(0, space)).String(merge.substr(space + 1)).EndArray();
  }
  json.EndArray();
  json.EndObject();
  json.EndObject();

  HfTokenizerFiles files;
  files.tokenizer_json = json.str();

  JsonWriter config(2);
  config.BeginObject();
  config.Key("add_bos_token").Bool(add_bos);
  config.Key("add_eos_token").Bool(add_eos);
  const auto token_or_null = [&](const char* key, int32_t id) {
    config.Key(key);
    if (id >= 0) {
      config.String(tokens[id]);
    } else {
      config.Null();
    }
  };
  token_or_null("bos_token", bos_id);
  if (file.Find("tokenizer.chat_template") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(const std::string chat_template,
                              file.GetString("tokenizer.chat_template"));
    config.Key("chat_template").String(chat_template);
  }
  config.Key("clean_up_tokenization_spaces").Bool(false);
  token_or_null("eos_token", eos_id);
  if (file.Find("llama.context_length") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(const int64_t context, file.GetInt("llama.context_length"));
    config.Key("model_max_length").Int(context);
  }
  token_or_null("pad_token", pad_id);
  config.Key("tokenizer_class").String("PreTrainedTokenizerFast");
  token_or_null("unk_token", unk_id);
  config.EndObject();
  files.tokenizer_config_json = config.str() + "\n";

  JsonWriter generation(2);
  generation.BeginObject();
  if (bos_id >= 0) generation.Key("bos_token_id").Int(bos_id);
  if (eos_id >= 0) generation.Key("eos_token_id").Int(eos_id);
  if (pad_id >= 0) generation.Key("pad_token_id").Int(pad_id);
  generation.EndObject();
  files.generation_config_json = generation.str() + "\n";
  return files;
}

}  // namespace moeserve::convert
