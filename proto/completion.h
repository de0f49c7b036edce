// POST /v1/completions on the wire (OpenAI's legacy completions API, with vLLM's
// semantics where OpenAI is silent): the request after validation, and builders for the
// response and the streamed chunks (SSE framing: SseEvent / kSseDone in
// proto/chat_completion.h). proto/openapi.yaml is the contract.
#ifndef MOESERVE_PROTO_COMPLETION_H_
#define MOESERVE_PROTO_COMPLETION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "proto/chat_completion.h"
#include "proto/request_fields.h"

namespace moeserve::proto {

inline constexpr int kMaxCompletionLogprobs = 5;            // OpenAI's limit on "logprobs"
inline constexpr int32_t kDefaultCompletionMaxTokens = 16;  // OpenAI's default
// Most choices (prompts times n) one request may ask for: each is a sequence in the
// engine, and one request must not crowd out every other client.
inline constexpr int64_t kMaxCompletionChoices = 1024;

// One prompt: text (tokenized by the server, BOS added as the tokenizer wants) or token
// ids (used as given).
struct CompletionPrompt {
  std::optional<std::string> text;
  std::vector<int32_t> token_ids;  // when text is absent; checked by CheckPromptTokenIds
};

// The sampling fields (temperature, n, stop, stream, ...) come from SamplingFields.
struct CompletionRequest : SamplingFields {
  std::optional<std::string> model;  // absent: the served model
  // "prompt": a string, an array of strings, an array of token ids or an array of arrays
  // of token ids; at least one prompt. Each prompt gets n choices; choice
  // prompt_index * n + i is the i-th choice of that prompt (OpenAI's numbering).
  std::vector<CompletionPrompt> prompts;
  int32_t max_tokens = kDefaultCompletionMaxTokens;  // >= 1
  bool echo = false;                                 // prepend the prompt's text
  std::optional<int32_t> logprobs;                   // [0, kMaxCompletionLogprobs]
};

// Validates a parsed request body. Unknown fields are ignored (logged at debug); "suffix"
// and known fields we cannot honour yet (best_of > 1, ...) are rejected with 400.
absl::StatusOr<CompletionRequest> ParseCompletionRequest(const nlohmann::json& body);

// The 400 (param "prompt") for a prompt token id outside [0, vocab_size).
absl::Status CheckPromptTokenIds(const CompletionRequest& request, int32_t vocab_size);

// One generated token for the completions "logprobs" object: its text, its logprob and
// the most likely alternatives (text, logprob), most likely first.
struct CompletionTokenLogprob {
  std::string token;
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;
};

// choices[].logprobs in the completions shape: {"tokens", "token_logprobs",
// "top_logprobs" (one {token text: logprob} object per token: the alternatives and the
// chosen token, as OpenAI and vLLM send up to logprobs + 1 entries), "text_offset"}.
// `text_offset` is where the first token's text starts in the choice's text, in
// characters (Unicode code points, as Python counts); it is advanced past the tokens, so
// the chunks of a stream continue where the previous one ended.
nlohmann::json CompletionLogprobsJson(const std::vector<CompletionTokenLogprob>& tokens,
                                      int64_t* text_offset);

// Unicode code points in UTF-8 `text` (bytes that do not start a character are not
// counted).
int64_t CountCodePoints(std::string_view text);

struct CompletionChoice {
  std::string text;
  std::string finish_reason;
  nlohmann::json logprobs = nullptr;  // null unless asked for
};

// The non-streamed response: object "text_completion" whose choices[i] is choices[i], with
// "index": i.
nlohmann::json CompletionJson(const CompletionMeta& meta,
                              const std::vector<CompletionChoice>& choices, const Usage& usage);

// The chunks of a streamed response (object "text_completion", as OpenAI streams it): each
// carries one choice with its new text, its logprobs (null unless asked for) and, on its
// last chunk, its finish_reason; then UsageChunk once when include_usage was asked for.
// With include_usage every chunk but the last carries "usage": null.
class CompletionChunkBuilder {
 public:
  CompletionChunkBuilder(CompletionMeta meta, bool include_usage)
      : meta_(std::move(meta)), include_usage_(include_usage) {}

  // `finish_reason` empty: not the choice's last chunk.
  nlohmann::json TextChunk(int32_t index, std::string_view text,
                           const nlohmann::json& logprobs = nullptr,
                           std::string_view finish_reason = "") const;
  nlohmann::json UsageChunk(const Usage& usage) const;  // "choices": []

 private:
  CompletionMeta meta_;
  bool include_usage_;
};

}  // namespace moeserve::proto

#endif  // MOESERVE_PROTO_COMPLETION_H_
