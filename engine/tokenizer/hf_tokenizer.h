// Tokenizers and chat templates of Hugging Face model directories: tokenizer.json (with
// tokenizer_config.json and generation_config.json for special tokens, BOS/EOS behaviour
// and the chat template). tokenizer.json may hold byte-level BPE (GPT-2, SmolLM2, Llama 3,
// Qwen2) or SentencePiece-style BPE (Llama 2, Mistral: byte fallback and "▁" from a
// Metaspace pre-tokenizer or a Prepend/Replace normalizer). A directory with only
// tokenizer.model gets what transformers' LlamaTokenizer converts it to.
#ifndef MOESERVE_ENGINE_TOKENIZER_HF_TOKENIZER_H_
#define MOESERVE_ENGINE_TOKENIZER_HF_TOKENIZER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace moeserve {

// The tokenizer of model directory `dir`: dir/tokenizer.json, else dir/tokenizer.model.
// Errors name the file and the field.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfTokenizer(const std::string& dir);

// The chat template source from dir/tokenizer_config.json ("chat_template", a string, or
// the entry named "default" of a list of {name, template}), else dir/chat_template.jinja.
// NotFound when the directory has none.
absl::StatusOr<std::string> LoadHfChatTemplate(const std::string& dir);

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_HF_TOKENIZER_H_
