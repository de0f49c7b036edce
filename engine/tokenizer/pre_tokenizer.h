// Pre-tokenizers of the byte-level BPE families: they cut text into the words that BPE
// then merges within. Each is a hand-written matcher equivalent to the regex (and, for
// kDigitsGpt2, the Digits splitter) that Hugging Face `tokenizers` runs for that family,
// with the same leftmost-first alternation, greedy runs and look-ahead; no regex engine.
//
// Character classes follow Oniguruma's: \p{L}, \p{N}, and \s as the White_Space property
// (see unicode.h). Ill-formed UTF-8 bytes count as one "other" character each.
#ifndef MOESERVE_ENGINE_TOKENIZER_PRE_TOKENIZER_H_
#define MOESERVE_ENGINE_TOKENIZER_PRE_TOKENIZER_H_

#include <string_view>
#include <vector>

namespace moeserve {

enum class PreTokenizerKind {
  // GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // Digits(individual_digits=true) then the GPT-2 regex on the text between the digits
  // (StarCoder, SmolLM): every \p{N} character is a word of its own.
  kDigitsGpt2,
  // Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // Qwen2: as Llama 3 but \p{N} (one number character per word) instead of \p{N}{1,3}.
  kQwen2,
};

// Appends the words of `text` to *words as views into `text`. The words are non-empty and,
// concatenated in order, give back `text` exactly.
void PreTokenize(PreTokenizerKind kind, std::string_view text,
                 std::vector<std::string_view>* words);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_PRE_TOKENIZER_H_
