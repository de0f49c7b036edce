// Hugging Face tokenizer files from a GGUF file's tokenizer metadata, so a checkpoint
// converted from GGUF tokenizes exactly as the GGUF did, in moeserve and in HF `tokenizers`.
// Byte-level BPE only (tokenizer.ggml.model "gpt2"), with the pre-tokenizer, normalizer
// and decoder that each supported tokenizer.ggml.pre type has in its model's own
// tokenizer.json: gpt2 (ByteLevel), smollm and starcoder (Digits then ByteLevel),
// llama-bpe / llama3 / llama-v3 (Llama 3's Split regex, ignore_merges) and qwen2 (NFC,
// Qwen2's Split regex). Control tokens become special added tokens, user-defined tokens
// plain added tokens.
#ifndef MOESERVE_TOOLS_CONVERT_TOKENIZER_JSON_WRITER_H_
#define MOESERVE_TOOLS_CONVERT_TOKENIZER_JSON_WRITER_H_

#include <string>

#include "absl/status/statusor.h"
#include "engine/loaders/gguf_reader.h"

namespace moeserve::convert {

struct HfTokenizerFiles {
  std::string tokenizer_json;          // model, added tokens, pre-tokenizer, decoder
  std::string tokenizer_config_json;   // bos/eos/pad/unk, add_bos_token, chat_template
  std::string generation_config_json;  // bos_token_id, eos_token_id, pad_token_id
};

// Unimplemented for a tokenizer model or pre type moeserve cannot reproduce;
// InvalidArgument (naming the file and key) for malformed metadata.
absl::StatusOr<HfTokenizerFiles> TokenizerFilesFromGguf(const gguf::GgufFile& file);

}  // namespace moeserve::convert

#endif  // MOESERVE_TOOLS_CONVERT_TOKENIZER_JSON_WRITER_H_
