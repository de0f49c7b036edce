// The vocabulary bookkeeping that BpeTokenizer and SpmTokenizer share: token types as GGUF
// numbers them, the text -> id map, the validation of a vocabulary's array lengths and
// special ids, and "<0xAB>" byte-token spelling. A TokenTable is filled once by its owning
// tokenizer's Create() and read-only afterwards.
#ifndef MOESERVE_ENGINE_TOKENIZER_TOKEN_TABLE_H_
#define MOESERVE_ENGINE_TOKENIZER_TOKEN_TABLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace moeserve {

// Token types, numbered as GGUF's tokenizer.ggml.token_type (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // special tokens: <|im_start|>, <|eot_id|>, ...
  kUserDefined = 4,  // added tokens that are not special; always matched literally
  kUnused = 5,
  kByte = 6,  // "<0xAB>" byte-fallback tokens
};

// The byte of a "<0xAB>" token (either case of hex digits), or -1.
int ParseByteToken(std::string_view token);

// InvalidArgument unless `tokens` is non-empty, at most 2^30 long, and `token_types` is
// empty or as long. `kind` names the vocabulary in messages ("BPE", "SentencePiece").
absl::Status CheckVocabSize(const std::vector<std::string>& tokens,
                            const std::vector<int32_t>& token_types, std::string_view kind);

// InvalidArgument unless bos/eos/unk are -1 (none) or ids below `vocab_size`, and every
// stop id is below it.
absl::Status CheckSpecialIds(int32_t vocab_size, int32_t bos_id, int32_t eos_id, int32_t unk_id,
                             const std::vector<int32_t>& stop_ids);

class TokenTable {
 public:
  // Takes each token's type (all kNormal when `token_types` is empty) and maps each text
  // to its id; later duplicates win, as in HF's vocabulary map and llama.cpp's token_to_id.
  // InvalidArgument for a type outside TokenType.
  // REQUIRES: CheckVocabSize(tokens, token_types, ...) is ok; called once.
  absl::Status Init(const std::vector<std::string>& tokens,
                    const std::vector<int32_t>& token_types);

  int32_t size() const { return static_cast<int32_t>(types_.size()); }
  // kUnused for an id outside the vocabulary.
  TokenType type(int32_t id) const {
    return id < 0 || id >= size() ? TokenType::kUnused : types_[id];
  }
  // The id spelled `text` (the last one when several are), or nullopt.
  std::optional<int32_t> Find(std::string_view text) const;

 private:
  std::vector<TokenType> types_;  // [vocab_size]
  absl::flat_hash_map<std::string, int32_t> token_to_id_;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_TOKEN_TABLE_H_
