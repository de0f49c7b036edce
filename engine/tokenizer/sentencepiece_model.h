// SentencePiece tokenizer.model files (a ModelProto protobuf), read with a small
// bounds-checked wire-format reader, and turned into an SpmTokenizer for the BPE models
// Llama 2 and Mistral ship. Only what those models use is implemented; the rest (Unigram,
// normalization rules, whitespace as suffix, ...) is refused with an Unimplemented error
// that names the file.
#ifndef MOESERVE_ENGINE_TOKENIZER_SENTENCEPIECE_MODEL_H_
#define MOESERVE_ENGINE_TOKENIZER_SENTENCEPIECE_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/spm_tokenizer.h"

namespace moeserve {

// The fields of sentencepiece_model.proto that tokenization depends on, with the proto's
// defaults.
struct SentencePieceModel {
  struct Piece {
    std::string piece;
    float score = 0.0f;
    int32_t type = 1;  // NORMAL=1 UNKNOWN=2 CONTROL=3 USER_DEFINED=4 UNUSED=5 BYTE=6
  };
  std::vector<Piece> pieces;
  // trainer_spec
  int32_t model_type = 1;  // UNIGRAM=1 BPE=2 WORD=3 CHAR=4
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  int32_t unk_id = 0;
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  int32_t pad_id = -1;
  // normalizer_spec
  std::string normalizer_name;
  bool has_precompiled_charsmap = false;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
  bool has_normalization_rules = false;
  // denormalizer_spec
  bool has_denormalizer = false;
};

// Parses a ModelProto. `path` only names the file in errors (InvalidArgument for a
// truncated or malformed message).
absl::StatusOr<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes,
                                                           std::string_view path);

// Whose behaviour to reproduce where transformers and sentencepiece disagree.
enum class SpmSemantics {
  // What transformers' LlamaTokenizer converts the file to: merges ordered by piece id,
  // Metaspace prepend_scheme "first", control and unknown pieces as special added tokens
  // matched in text (with parse_special).
  kTransformers,
  // The sentencepiece library: merges by score, one dummy prefix for the whole text.
  kSentencePiece,
};

// The vocabulary and options of a BPE model. Unimplemented (naming `path`) for anything
// the tokenizer cannot reproduce exactly.
absl::StatusOr<SpmVocab> SpmVocabFromModel(const SentencePieceModel& model, std::string_view path,
                                           SpmSemantics semantics);

// Reads, parses and builds the tokenizer of the tokenizer.model at `path`. add_bos is set
// when the model has a BOS piece (as Llama and Mistral want).
absl::StatusOr<std::unique_ptr<SpmTokenizer>> LoadSentencePieceTokenizer(const std::string& path,
                                                                         SpmSemantics semantics);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_SENTENCEPIECE_MODEL_H_
