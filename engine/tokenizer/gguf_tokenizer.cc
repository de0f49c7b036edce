#include "engine/tokenizer/gguf_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/absl_strings.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/spm_tokenizer.h"

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

// Stop ids: eos, eot, eom, then the known end-of-generation control tokens.
template <typename Vocab>  // BpeVocab or SpmVocab
absl::Status ReadStopIds(const gguf::GgufFile& file, Vocab* vocab) {
  const auto n = static_cast<int64_t>(vocab->tokens.size());
  const auto add_stop = [&](int32_t id) {
    if (id >= 0 && id < n &&
        std::find(vocab->stop_ids.begin(), vocab->stop_ids.end(), id) == vocab->stop_ids.end()) {
      vocab->stop_ids.push_back(id);
    }
  };
  add_stop(vocab->eos_id);
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    MOESERVE_ASSIGN_OR_RETURN(const int32_t id, OptionalId(file, key));
    add_stop(id);
  }
  for (int64_t id = 0; id < n; ++id) {
    const bool control = static_cast<size_t>(id) < vocab->token_types.size() &&
                         vocab->token_types[id] == static_cast<int32_t>(TokenType::kControl);
    if (!control) continue;
    for (const char* text : kEndOfGenerationTexts) {
      if (vocab->tokens[id] == text) add_stop(static_cast<int32_t>(id));
    }
  }
  return absl::OkStatus();
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

  MOESERVE_RETURN_IF_ERROR(ReadStopIds(file, &vocab));
  return vocab;
}

// A SentencePiece vocabulary as transformers converts it from a GGUF file: merges from
// tokenizer.ggml.merges when present, else every split of every piece ordered by score;
// Metaspace prepend_scheme "first" (none without tokenizer.ggml.add_space_prefix).
absl::StatusOr<SpmVocab> ReadSpmVocab(const gguf::GgufFile& file) {
  SpmVocab vocab;
  MOESERVE_ASSIGN_OR_RETURN(vocab.tokens, file.GetStringArray("tokenizer.ggml.tokens"));
  const size_t n = vocab.tokens.size();
  const auto check_length = [&](std::string_view key, size_t length) -> absl::Status {
    if (length == n) return absl::OkStatus();
    return absl::InvalidArgumentError(
        Cat(file.path(), ": ", key, " has ", length, " entries but tokenizer.ggml.tokens has ", n));
  };
  if (file.Find("tokenizer.ggml.merges") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(const std::vector<std::string> merges,
                              file.GetStringArray("tokenizer.ggml.merges"));
    vocab.merge_order = SpmMergeOrder::kListed;
    for (size_t i = 0; i < merges.size(); ++i) {
      const size_t space = merges[i].find(' ', 1);
      if (space == std::string::npos || space + 1 >= merges[i].size()) {
        return absl::InvalidArgumentError(Cat(file.path(), ": tokenizer.ggml.merges[", i, "] '",
                                              merges[i], "' is not two tokens and a space"));
      }
      vocab.merges.emplace_back(merges[i].substr(0, space), merges[i].substr(space + 1));
    }
  } else {
    MOESERVE_ASSIGN_OR_RETURN(const std::vector<double> scores,
                              file.GetFloatArray("tokenizer.ggml.scores"));
    MOESERVE_RETURN_IF_ERROR(check_length("tokenizer.ggml.scores", scores.size()));
    vocab.scores.assign(scores.begin(), scores.end());
    vocab.merge_order = SpmMergeOrder::kScore;
  }
  if (file.Find("tokenizer.ggml.token_type") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(const std::vector<int64_t> types,
                              file.GetIntArray("tokenizer.ggml.token_type"));
    MOESERVE_RETURN_IF_ERROR(check_length("tokenizer.ggml.token_type", types.size()));
    vocab.token_types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t type = types[i];
      if (type < 1 || type > 6) {
        return absl::InvalidArgumentError(Cat(file.path(), ": tokenizer.ggml.token_type[", i,
                                              "] = ", type, " is not a token type"));
      }
      // transformers makes control and user-defined tokens added tokens, and <unk> a
      // special one; byte and unused tokens stay ordinary vocabulary.
      const bool added = type == static_cast<int64_t>(TokenType::kControl) ||
                         type == static_cast<int64_t>(TokenType::kUserDefined) ||
                         type == static_cast<int64_t>(TokenType::kUnknown);
      vocab.token_types.push_back(added ? static_cast<int32_t>(type)
                                        : static_cast<int32_t>(TokenType::kNormal));
    }
  }
  MOESERVE_ASSIGN_OR_RETURN(vocab.bos_id, OptionalId(file, "tokenizer.ggml.bos_token_id"));
  MOESERVE_ASSIGN_OR_RETURN(vocab.eos_id, OptionalId(file, "tokenizer.ggml.eos_token_id"));
  MOESERVE_ASSIGN_OR_RETURN(vocab.unk_id, OptionalId(file, "tokenizer.ggml.unknown_token_id"));
  vocab.add_bos = true;  // llama.cpp and transformers: BOS unless the file says otherwise
  if (file.Find("tokenizer.ggml.add_bos_token") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(vocab.add_bos, file.GetBool("tokenizer.ggml.add_bos_token"));
  }
  if (file.Find("tokenizer.ggml.add_eos_token") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(vocab.add_eos, file.GetBool("tokenizer.ggml.add_eos_token"));
  }
  bool add_space_prefix = true;
  if (file.Find("tokenizer.ggml.add_space_prefix") != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(add_space_prefix, file.GetBool("tokenizer.ggml.add_space_prefix"));
  }
  vocab.prefix = add_space_prefix ? SpmPrefix::kFirst : SpmPrefix::kNever;
  vocab.decode_strip_space = add_space_prefix;
  vocab.byte_fallback = true;
  vocab.decode_byte_fallback = true;
  MOESERVE_RETURN_IF_ERROR(ReadStopIds(file, &vocab));
  return vocab;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadGgufTokenizer(const gguf::GgufFile& file) {
  MOESERVE_ASSIGN_OR_RETURN(const std::string model, file.GetString("tokenizer.ggml.model"));
  if (model == "llama") {
    MOESERVE_ASSIGN_OR_RETURN(SpmVocab vocab, ReadSpmVocab(file));
    absl::StatusOr<std::unique_ptr<SpmTokenizer>> tokenizer =
        SpmTokenizer::Create(std::move(vocab));
    if (!tokenizer.ok()) {
      return absl::Status(tokenizer.status().code(),
                          Cat(file.path(), ": tokenizer (tokenizer.ggml.model 'llama'): ",
                              tokenizer.status().message()));
    }
    return std::unique_ptr<Tokenizer>(std::move(tokenizer).value());
  }
  if (model != "gpt2") {
    return absl::UnimplementedError(
        absl::StrCat(file.path(), ": tokenizer.ggml.model '", model,
                     "' is not supported (supported: 'gpt2', byte-level BPE; 'llama', "
                     "SentencePiece-style BPE)"));
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
