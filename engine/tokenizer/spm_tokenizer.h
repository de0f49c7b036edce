// SentencePiece-style BPE (Llama 2, Mistral): text is spelled with "▁" for spaces (plus a
// dummy "▁" prefix), cut into characters, merged pairwise, and characters without a piece
// fall back to "<0xAB>" byte tokens. Decoding turns "▁" back into spaces, reassembles
// byte tokens into UTF-8 and drops the dummy prefix's space.
//
// One class serves every source, which differ only in details that change ids:
//   - tokenizer.json (model BPE, byte_fallback, Metaspace or Prepend/Replace normalizer):
//     merges as listed, added tokens split out first as Hugging Face `tokenizers` does.
//   - tokenizer.model as transformers converts it (merges ordered by merged-piece id), or
//     as the sentencepiece library runs it (merges by piece score, one dummy prefix for the
//     whole text).
//   - GGUF tokenizer.ggml.model "llama" as transformers converts it (merges by score).
// Loaders (hf_tokenizer.h, sentencepiece_model.h, gguf_tokenizer.h) fill an SpmVocab.
// Immutable after Create(); Encode/Decode are safe from any thread.
#ifndef MOESERVE_ENGINE_TOKENIZER_SPM_TOKENIZER_H_
#define MOESERVE_ENGINE_TOKENIZER_SPM_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/added_tokens.h"
#include "engine/tokenizer/pair_merges.h"
#include "engine/tokenizer/token_table.h"
#include "engine/tokenizer/tokenizer.h"

namespace moeserve {

// Which pair merges first.
enum class SpmMergeOrder {
  kListed,         // SpmVocab::merges, first listed first (tokenizer.json)
  kPieceId,        // every split of every piece, by the merged piece's id, then shorter left
                   // part (transformers' generate_merges(vocab), its .model conversion)
  kScore,          // by merged-piece score, higher first; ties: longer left part, then
                   // longer right part (transformers' GGUF conversion)
  kSentencePiece,  // by merged-piece score, equal scores leftmost first; only normal,
                   // user-defined and unused pieces form (the sentencepiece library)
};

// Where the "▁" dummy prefix goes. Text between added tokens is a segment of its own.
enum class SpmPrefix {
  kNever,
  kFirst,        // Metaspace prepend_scheme "first": the segment at offset 0, unless it
                 // already starts with "▁"/" "
  kAlways,       // Metaspace prepend_scheme "always": every segment, same exception
  kPrependEach,  // normalizer Prepend("▁") (the "legacy" Llama 2 files): every non-empty
                 // segment, unconditionally
  kWholeText,    // sentencepiece add_dummy_prefix: once, at the start of non-empty text
};

struct SpmVocab {
  // [vocab_size] pieces as spelled ("▁the", "<0x0A>", "<s>").
  std::vector<std::string> tokens;
  // [vocab_size] piece scores; needed by kScore and kSentencePiece only.
  std::vector<float> scores;
  // [vocab_size] TokenType values, or empty for "all normal". Control and unknown tokens
  // are matched in text only with parse_special; user-defined ones always.
  std::vector<int32_t> token_types;
  // [num_merges] (left, right) pieces, for kListed.
  std::vector<std::pair<std::string, std::string>> merges;
  SpmMergeOrder merge_order = SpmMergeOrder::kListed;
  SpmPrefix prefix = SpmPrefix::kFirst;
  bool split_on_metaspace = false;   // Metaspace(split=true): each "▁" starts a new word
  bool byte_fallback = true;         // else characters without a piece become unk
  bool decode_byte_fallback = true;  // the decoder reassembles "<0xAB>" runs
  bool decode_strip_space = true;    // the decoder drops one leading space of the text
  int32_t bos_id = -1;               // -1: none
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  bool add_bos = false;
  bool add_eos = false;
  std::vector<int32_t> stop_ids;  // eos alone when empty
};

class SpmTokenizer final : public Tokenizer {
 public:
  // Validates `vocab` (array lengths, token types, merges naming known pieces, ids in
  // range, scores present when the merge order needs them). InvalidArgument otherwise.
  static absl::StatusOr<std::unique_ptr<SpmTokenizer>> Create(SpmVocab vocab);

  SpmTokenizer(const SpmTokenizer&) = delete;
  SpmTokenizer& operator=(const SpmTokenizer&) = delete;

  std::vector<int32_t> Encode(std::string_view text, bool parse_special) const override;
  // "▁" as a space, byte tokens as their byte, added tokens as their text.
  std::string TokenBytes(int32_t id) const override;
  // As the Hugging Face decoder Sequence[Replace("▁", " "), ByteFallback, Fuse,
  // Strip(" ", 1, 0)]: a run of byte tokens that is not valid UTF-8 gives one U+FFFD per
  // byte token; one leading space of the whole text is dropped.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special) const override;

  int32_t vocab_size() const override { return vocab_size_; }
  bool IsSpecial(int32_t id) const override;  // control and unknown tokens
  // `token_text` as the vocabulary spells it: "<s>", or "▁the" for " the".
  std::optional<int32_t> FindToken(std::string_view token_text) const override;
  bool StripsLeadingSpace() const override { return decode_strip_space_; }

  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  bool add_bos_token() const override { return add_bos_; }
  bool add_eos_token() const override { return add_eos_; }
  const std::vector<int32_t>& stop_ids() const override { return stop_ids_; }

  TokenType token_type(int32_t id) const { return table_.type(id); }

 private:
  SpmTokenizer() = default;

  absl::Status InitTokens(const SpmVocab& vocab);
  absl::Status InitMerges(const SpmVocab& vocab);
  // Ids of the text between two added tokens, which starts at byte `offset` of the input.
  void EncodeSegment(std::string_view text, size_t offset, std::vector<int32_t>* ids) const;
  // Ids of one word already spelled with "▁".
  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;

  int32_t vocab_size_ = 0;
  std::vector<std::string> tokens_;     // [vocab_size] pieces as spelled
  TokenTable table_;                    // types and piece -> id
  std::vector<int16_t> byte_of_token_;  // [vocab_size] byte of a "<0xAB>" token, or -1
  PairMerges merges_;
  bool resegment_unused_ = false;  // kSentencePiece with unused pieces among merge results
  int32_t byte_to_id_[256] = {};   // id of each "<0xAB>" token, or -1
  AddedTokens added_;
  SpmPrefix prefix_ = SpmPrefix::kFirst;
  bool split_on_metaspace_ = false;
  bool byte_fallback_ = true;
  bool decode_byte_fallback_ = true;
  bool decode_strip_space_ = true;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t unk_id_ = -1;
  bool add_bos_ = false;
  bool add_eos_ = false;
  std::vector<int32_t> stop_ids_;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_SPM_TOKENIZER_H_
