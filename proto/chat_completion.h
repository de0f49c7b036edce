// POST /v1/chat/completions on the wire: the request as C++ values after validation, and
// builders for the response, the streamed chunks and their SSE framing. Field names and
// shapes follow OpenAI's API (proto/openapi.yaml is the contract); vLLM's extensions we
// accept are marked. Validation errors are InvalidArgument naming the field, in the message
// and as the error body's "param" (see proto/error_body.h).
#ifndef MOESERVE_PROTO_CHAT_COMPLETION_H_
#define MOESERVE_PROTO_CHAT_COMPLETION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace moeserve::proto {

struct ChatMessageParam {
  std::string role;     // "system", "user" or "assistant"; "developer" is read as "system"
  std::string content;  // a string, or the text parts of an array joined with "\n"
};

struct ChatCompletionRequest {
  std::optional<std::string> model;        // absent: the served model
  std::vector<ChatMessageParam> messages;  // at least one
  // max_completion_tokens, else max_tokens; absent: until the context is full.
  std::optional<int32_t> max_tokens;
  float temperature = 1.0f;         // [0, 2]; 0 is greedy
  float top_p = 1.0f;               // (0, 1]
  int32_t top_k = 0;                // 0 disables; -1 on the wire means the same (vLLM extension)
  std::optional<uint64_t> seed;     // negative seeds keep their two's-complement bits
  float min_p = 0.0f;               // [0, 1]; vLLM extension
  float presence_penalty = 0.0f;    // [-2, 2]
  float frequency_penalty = 0.0f;   // [-2, 2]
  float repetition_penalty = 1.0f;  // > 0; vLLM extension
  // Token id -> bias in [-100, 100]; ids come as decimal strings on the wire. The caller
  // checks them against the vocabulary (CheckTokenIdsInVocabulary).
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::vector<std::string> stop;        // at most kMaxStopStrings, each non-empty
  std::vector<int32_t> stop_token_ids;  // vLLM extension; checked like logit_bias
  bool logprobs = false;
  int32_t top_logprobs = 0;  // [0, 20]; > 0 requires logprobs
  bool ignore_eos = false;   // vLLM extension
  int32_t n = 1;             // choices to generate, [1, kMaxChoices]
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

inline constexpr int kMaxStopStrings = 4;   // OpenAI's limit
inline constexpr int kMaxTopLogprobs = 20;  // OpenAI's limit
inline constexpr int kMaxChoices = 128;     // OpenAI's limit on n

// Validates a parsed request body. Unknown fields are ignored (logged at debug). Known
// OpenAI fields whose effect we cannot honour yet (tools, response_format other
// than text, ...) are rejected when set to anything but their default rather than
// silently ignored.
absl::StatusOr<ChatCompletionRequest> ParseChatCompletionRequest(const nlohmann::json& body);

// The 400 for a logit_bias key or a stop_token_ids entry outside [0, vocab_size); OK when
// every id is inside.
absl::Status CheckTokenIdsInVocabulary(const ChatCompletionRequest& request, int32_t vocab_size);

// One generated token's logprobs in OpenAI's chat shape; `bytes` are the token's raw
// bytes (a token may hold part of a UTF-8 character; `token` then shows U+FFFD).
struct ChatTopLogprob {
  std::string token;
  std::string bytes;
  float logprob = 0.0f;
};
struct ChatTokenLogprob {
  std::string token;
  std::string bytes;
  float logprob = 0.0f;
  std::vector<ChatTopLogprob> top_logprobs;
};

// choices[].logprobs: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
// Logprobs of -inf (and below -9999) are sent as -9999.0, as vLLM does: JSON has no -inf.
nlohmann::json ChatLogprobsJson(const std::vector<ChatTokenLogprob>& content);

// What a response and every chunk of a stream share.
struct CompletionMeta {
  std::string id;       // "chatcmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::string system_fingerprint;
};

// Token counts of a whole request: the prompt once, the completion tokens of all its
// choices summed (as OpenAI counts them for n > 1).
struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

// One choice of a non-streamed response.
struct ChatChoice {
  std::string content;
  std::string finish_reason;
  nlohmann::json logprobs = nullptr;  // null unless asked for; see ChatLogprobsJson
};

// The non-streamed response: object "chat.completion" whose choices[i] is choices[i],
// with "index": i.
nlohmann::json ChatCompletionJson(const CompletionMeta& meta,
                                  const std::vector<ChatChoice>& choices, const Usage& usage);

// The chunks of a streamed response (object "chat.completion.chunk"); each carries one
// choice, named by its index. In order: RoleChunk(i) for every choice, then each choice's
// ContentChunk(i, text)... and FinishChunk(i, reason) (the choices' chunks interleaved),
// then UsageChunk(usage) once when include_usage was asked for. With include_usage every
// chunk but the last carries "usage": null, as OpenAI does.
class ChatCompletionChunkBuilder {
 public:
  ChatCompletionChunkBuilder(CompletionMeta meta, bool include_usage)
      : meta_(std::move(meta)), include_usage_(include_usage) {}

  nlohmann::json RoleChunk(int32_t index) const;  // delta {"role": "assistant", "content": ""}
  // `logprobs`: the choice's "logprobs" for the chunk's tokens (null unless asked for).
  nlohmann::json ContentChunk(int32_t index, std::string_view text,
                              const nlohmann::json& logprobs = nullptr) const;
  // Empty delta, finish_reason set.
  nlohmann::json FinishChunk(int32_t index, std::string_view finish_reason) const;
  // "choices": [], the usage of the whole request.
  nlohmann::json UsageChunk(const Usage& usage) const;

 private:
  nlohmann::json Chunk(int32_t index, nlohmann::json delta, std::string_view finish_reason,
                       const nlohmann::json& logprobs = nullptr) const;

  CompletionMeta meta_;
  bool include_usage_;
};

// Server-sent events framing: "data: <json>\n\n", and the stream's terminator.
std::string SseEvent(const nlohmann::json& data);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace moeserve::proto

#endif  // MOESERVE_PROTO_CHAT_COMPLETION_H_
