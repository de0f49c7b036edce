// Turns a request's generated tokens into text deltas as they arrive. Tokens carry bytes,
// not characters, so a character may span tokens: bytes are held back until they form
// complete UTF-8, and a sequence that can never become valid is replaced with U+FFFD.
// Special tokens (EOS and other control tokens) produce no text. For SentencePiece models
// (Tokenizer::StripsLeadingSpace) the first space of the request's text is dropped, so the
// streamed text equals Decode(ids, skip_special=true), as Hugging Face decodes it.
//
// Stop strings: text that might be the start of a stop string is held back until the
// following tokens settle it, so a stream never sends text that a later token turns into
// part of a stop string. When one appears (it may span tokens and characters; the
// earliest occurrence among all stop strings wins), the text before it is the last text
// of the request and stopped() turns true (OpenAI's semantics: the stop string itself is
// not returned; vLLM's include_stop_str_in_output=false).
#ifndef MOESERVE_ENGINE_DETOKENIZER_H_
#define MOESERVE_ENGINE_DETOKENIZER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace moeserve {

class IncrementalDetokenizer {
 public:
  // `stop`: non-empty stop strings; none by default.
  explicit IncrementalDetokenizer(const Tokenizer* tokenizer, std::vector<std::string> stop = {});

  // Text made complete (and settled against the stop strings) by `token`; may be empty.
  // Nothing after a stop string was found.
  std::string Push(int32_t token);

  // Whatever is still held back, with incomplete sequences replaced by U+FFFD, cut before a
  // stop string should the replacement complete one. Call once when the request finishes.
  std::string Flush();

  // Whether a stop string was found: the request is done.
  bool stopped() const { return stopped_; }

 private:
  // Appends complete text to held_ and returns what can be sent: up to a stop string, or
  // all but a suffix that may still begin one (everything when `final`).
  std::string Release(const std::string& text, bool final);

  const Tokenizer* tokenizer_;
  std::vector<std::string> stop_;
  size_t max_stop_len_ = 0;
  bool stopped_ = false;
  std::string pending_;   // bytes not yet emitted: an incomplete UTF-8 sequence
  bool at_start_ = true;  // no bytes seen yet (the leading space is still to strip)
  std::string held_;      // complete text that may be the start of a stop string
};

// Length of the longest prefix of `bytes` that is complete UTF-8 text once invalid bytes
// are replaced; `*valid` receives that prefix with replacements made. Stops before a
// trailing sequence that may still be completed by more bytes.
size_t TakeCompleteUtf8(const std::string& bytes, std::string* valid);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_DETOKENIZER_H_
