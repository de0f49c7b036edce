// Turns a request's generated tokens into text deltas as they arrive. Tokens carry bytes,
// not characters, so a character may span tokens: bytes are held back until they form
// complete UTF-8, and a sequence that can never become valid is replaced with U+FFFD.
// Special tokens (EOS and other control tokens) produce no text.
#ifndef MOESERVE_ENGINE_DETOKENIZER_H_
#define MOESERVE_ENGINE_DETOKENIZER_H_

#include <cstdint>
#include <string>

#include "engine/tokenizer/tokenizer.h"

namespace moeserve {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer* tokenizer) : tokenizer_(tokenizer) {}

  // Text made complete by `token`; may be empty.
  std::string Push(int32_t token);

  // Whatever is still held back, with incomplete sequences replaced by U+FFFD. Call once
  // when the request finishes.
  std::string Flush();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;  // bytes not yet emitted: an incomplete UTF-8 sequence
};

// Length of the longest prefix of `bytes` that is complete UTF-8 text once invalid bytes
// are replaced; `*valid` receives that prefix with replacements made. Stops before a
// trailing sequence that may still be completed by more bytes.
size_t TakeCompleteUtf8(const std::string& bytes, std::string* valid);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_DETOKENIZER_H_
