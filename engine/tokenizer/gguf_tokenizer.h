// Builds the Tokenizer a GGUF file describes in its tokenizer.ggml.* metadata. Only the
// byte-level BPE family (tokenizer.ggml.model "gpt2") and SentencePiece-style BPE ("llama",
// as transformers converts it) are supported; every failure
// names the file and the offending key or value.
#ifndef MOESERVE_ENGINE_TOKENIZER_GGUF_TOKENIZER_H_
#define MOESERVE_ENGINE_TOKENIZER_GGUF_TOKENIZER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/tokenizer/tokenizer.h"

namespace moeserve {

// Reads tokenizer.ggml.{model, pre, tokens, token_type, merges, bos_token_id,
// eos_token_id, unknown_token_id, eot_token_id, eom_token_id, add_bos_token}. stop_ids are
// eos, eot, eom and those of <|im_end|>, <|eot_id|>, <|endoftext|>, <|end|> (and the
// other end-of-generation tokens llama.cpp knows) that exist as control tokens.
// InvalidArgument for a missing or malformed key, Unimplemented for a tokenizer model or
// pre-tokenizer that moeserve does not support.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadGgufTokenizer(const gguf::GgufFile& file);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_GGUF_TOKENIZER_H_
