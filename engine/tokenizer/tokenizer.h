// The tokenizer interface the engine and server use, whatever the model's tokenizer kind.
// Implementations are immutable after construction and safe to use from many threads.
#ifndef MOESERVE_ENGINE_TOKENIZER_TOKENIZER_H_
#define MOESERVE_ENGINE_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"

namespace moeserve {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`. With parse_special, special/control tokens written literally in
  // the text (e.g. "<|im_start|>") map to their ids; without it they are plain text.
  // Never adds BOS: callers that need it use add_bos_token() and bos_id().
  virtual std::vector<int32_t> Encode(std::string_view text, bool parse_special) const = 0;

  // The bytes token `id` stands for (byte-level tokens mapped back to raw bytes; may be a
  // partial UTF-8 sequence). Control tokens give their literal text. Empty for a bad id.
  virtual std::string TokenBytes(int32_t id) const = 0;

  // Text of `ids`; control tokens are dropped when skip_special is set. Invalid UTF-8
  // sequences are replaced with U+FFFD.
  virtual std::string Decode(absl::Span<const int32_t> ids, bool skip_special) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual bool IsSpecial(int32_t id) const = 0;  // control and user-defined special tokens
  virtual std::optional<int32_t> FindToken(std::string_view token_text) const = 0;

  virtual int32_t bos_id() const = 0;  // -1 when the model has none
  virtual int32_t eos_id() const = 0;
  virtual bool add_bos_token() const = 0;
  // Whether the model's config asks for EOS after an encoded text (tokenizer_config.json
  // add_eos_token); informational, Encode never adds it.
  virtual bool add_eos_token() const { return false; }
  // Whether Decode drops one space at the start of the text (SentencePiece's dummy prefix);
  // IncrementalDetokenizer then does the same to the first text of a request.
  virtual bool StripsLeadingSpace() const { return false; }
  // Every id that ends generation (eos and e.g. <|eot_id|> / <|im_end|>).
  virtual const std::vector<int32_t>& stop_ids() const = 0;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_TOKENIZER_H_
