// Byte-level BPE (the GPT-2 family: GPT-2, StarCoder, SmolLM, Llama 3, Qwen2), exact with
// Hugging Face `tokenizers`: added tokens are split out first, the family's pre-tokenizer
// cuts the rest into words, each word's bytes are mapped to the byte-level alphabet
// ("Ġ" for ' ', "Ċ" for '\n', ...) and merged by merge rank.
//
// Built from a plain BpeVocab (what GGUF's tokenizer.ggml.* keys hold; gguf_tokenizer.h
// fills one from a file). Immutable after Create(); Encode/Decode are safe from any thread.
#ifndef MOESERVE_ENGINE_TOKENIZER_BPE_TOKENIZER_H_
#define MOESERVE_ENGINE_TOKENIZER_BPE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/added_tokens.h"
#include "engine/tokenizer/pair_merges.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/token_table.h"
#include "engine/tokenizer/tokenizer.h"

namespace moeserve {

struct BpeVocab {
  // [vocab_size] token strings; normal tokens in the byte-level alphabet ("Ġthe"), added
  // tokens (control, user-defined) as their literal text.
  std::vector<std::string> tokens;
  // [vocab_size] TokenType values, or empty for "all normal".
  std::vector<int32_t> token_types;
  // [num_merges] "left right" in the byte-level alphabet; the index is the merge rank.
  std::vector<std::string> merges;
  // The pre-tokenizer recipe, named as GGUF's tokenizer.ggml.pre: "gpt2"/"gpt-2",
  // "smollm"/"starcoder", "llama-bpe"/"llama3"/"llama-v3", "qwen2".
  std::string pre = "gpt2";
  int32_t bos_id = -1;  // -1: none
  int32_t eos_id = -1;
  int32_t unk_id = -1;  // checked only: bytes without a token are dropped, as HF does
  bool add_bos = false;
  // Ids that end generation; eos alone when empty.
  std::vector<int32_t> stop_ids;
};

class BpeTokenizer final : public Tokenizer {
 public:
  // Validates `vocab`: token_types empty or one per token with known values; every merge
  // "a b" splits at a space into two tokens of the vocabulary whose concatenation is one
  // too; special ids in range. InvalidArgument otherwise; Unimplemented for a `pre` this
  // class cannot reproduce exactly.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Create(BpeVocab vocab);

  BpeTokenizer(const BpeTokenizer&) = delete;
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  // Control and unknown-type tokens are split out of the text only with parse_special;
  // user-defined tokens always (as llama.cpp and HF do for non-special added tokens).
  std::vector<int32_t> Encode(std::string_view text, bool parse_special) const override;
  std::string TokenBytes(int32_t id) const override;
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special) const override;

  int32_t vocab_size() const override { return vocab_size_; }
  bool IsSpecial(int32_t id) const override;
  // `token_text` as the vocabulary spells it: "<|im_end|>", or "Ġthe" for " the".
  std::optional<int32_t> FindToken(std::string_view token_text) const override;

  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  bool add_bos_token() const override { return add_bos_; }
  const std::vector<int32_t>& stop_ids() const override { return stop_ids_; }

  TokenType token_type(int32_t id) const { return table_.type(id); }

 private:
  BpeTokenizer() = default;

  // Create()'s steps; each needs the ones before it.
  absl::Status InitTokens(const BpeVocab& vocab);
  absl::Status InitMerges(const std::vector<std::string>& merges);

  // Ids of one pre-tokenized word (raw bytes), appended to *ids.
  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;
  // Ids of a stretch of text with no added tokens in it, appended to *ids.
  void EncodeOrdinary(std::string_view text, std::vector<int32_t>* ids) const;

  int32_t vocab_size_ = 0;
  TokenTable table_;                      // types and text -> id, in the byte-level alphabet
  std::vector<std::string> token_bytes_;  // [vocab_size] what each token decodes to
  PairMerges merges_;
  int32_t byte_to_id_[256] = {};  // id of each byte's one-char token, or -1
  AddedTokens added_;
  PreTokenizerKind pre_kind_ = PreTokenizerKind::kGpt2;
  bool ignore_merges_ = false;  // a word that is itself a token is not merged (Llama 3)
  bool normalize_nfc_ = false;  // the NFC normalizer runs before pre-tokenization (Qwen2)
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  bool add_bos_ = false;
  std::vector<int32_t> stop_ids_;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_BPE_TOKENIZER_H_
