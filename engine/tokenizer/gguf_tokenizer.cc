#include "engine/tokenizer/gguf_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/tokenizer/bpe_tokenizer.h"

namespace moeserve {
namespace {

// Texts of tokens that end generation, as llama.cpp's end-of-generation list.
constexpr const char* kEndOfGenerationTexts[] = {
    "<|eot_id|>",      "<|im_end|>",         "<|end|>",    "<end_of_turn>",
    "<|endoftext|>",   "<|eom_id|>",         "<EOT>",      "_<EOT>",
    "<|end_of_text|>", "<end_of_utterance>", "<|return|>", "<|call|>",
};

// An optional integer id: -1 when `key` is absent.
absl::StatusOr<int32_t> OptionalId(const gguf::GgufFile& file, std::string_view key) {
  if (file.Find(key) == nullptr) return -1;
  MOESERVE_ASSIGN_OR_RETURN(const int64_t value, file.GetInt(key));
  if (value < -1 || value > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": ", std::string(key), " = ", value, " is not a token id"));
  }
  return static_cast<int32_t>(value);
}

absl::StatusOr<BpeVocab> ReadBpeVocab(const gguf::GgufFile& file) {
  BpeVocab vocab;
  if (file.Find("tokenizer.ggml.pre") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(vocab.pre, file.GetString("tokenizer.ggml.pre"));
  } else {
    MOESERVE_LOG_WARN("{}: no tokenizer.ggml.pre; assuming the GPT-2 pre-tokenizer", file.path());
    vocab.pre = "gpt2";
  }
  MOESERVE_ASSIGN_OR_RETURN(vocab.tokens, file.GetStringArray("tokenizer.ggml.tokens"));
  if (file.Find("tokenizer.ggml.token_type") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(const std::vector<int64_t> types,
                              file.GetIntArray("tokenizer.ggml.token_type"));
    vocab.token_types.reserve(types.size());
    for (const int64_t type : types) {
      vocab.token_types.push_back(static_cast<int32_t>(std::clamp<int64_t>(type, -1, 1000)));
    }
  }
  MOESERVE_ASSIGN_OR_RETURN(vocab.merges, file.GetStringArray("tokenizer.ggml.merges"));
  MOESERVE_ASSIGN_OR_RETURN(vocab.bos_id, OptionalId(file, "tokenizer.ggml.bos_token_id"));
  MOESERVE_ASSIGN_OR_RETURN(vocab.eos_id, OptionalId(file, "tokenizer.ggml.eos_token_id"));
  MOESERVE_ASSIGN_OR_RETURN(vocab.unk_id, OptionalId(file, "tokenizer.ggml.unknown_token_id"));
  if (file.Find("tokenizer.ggml.add_bos_token") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(vocab.add_bos, file.GetBool("tokenizer.ggml.add_bos_token"));
  }

  // Stop ids: eos, eot, eom, then the known end-of-generation control tokens.
  const auto n = static_cast<int64_t>(vocab.tokens.size());
  const auto add_stop = [&](int32_t id) {
    if (id >= 0 && id < n &&
        std::find(vocab.stop_ids.begin(), vocab.stop_ids.end(), id) == vocab.stop_ids.end()) {
      vocab.stop_ids.push_back(id);
    }
  };
  add_stop(vocab.eos_id);
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    MOESERVE_ASSIGN_OR_RETURN(const int32_t id, OptionalId(file, key));
    add_stop(id);
  }
  for (int64_t id = 0; id < n; ++id) {
    const bool control = static_cast<size_t>(id) < vocab.token_types.size() &&
                         vocab.token_types[id] == static_cast<int32_t>(TokenType::kControl);
    if (!control) continue;
    for (const char* text : kEndOfGenerationTexts) {
      if (vocab.tokens[id] == text) add_stop(static_cast<int32_t>(id));
    }
  }
  return vocab;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadGgufTokenizer(const gguf::GgufFile& file) {
  MOESERVE_ASSIGN_OR_RETURN(const std::string model, file.GetString("tokenizer.ggml.model"));
  if (model != "gpt2") {
    return absl::UnimplementedError(
        absl::StrCat(file.path(), ": tokenizer.ggml.model '", model,
                     "' is not supported (supported: 'gpt2', byte-level BPE)"));
  }
  MOESERVE_ASSIGN_OR_RETURN(BpeVocab vocab, ReadBpeVocab(file));
  const std::string pre = vocab.pre;
  absl::StatusOr<std::unique_ptr<BpeTokenizer>> tokenizer = BpeTokenizer::Create(std::move(vocab));
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(file.path(), ": tokenizer (tokenizer.ggml.pre '", pre,
                                     "'): ", tokenizer.status().message()));
  }
  return std::unique_ptr<Tokenizer>(std::move(tokenizer).value());
}

}  // namespace moeserve
