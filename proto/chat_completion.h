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
#include "proto/request_fields.h"

namespace moeserve::proto {

struct ChatMessageParam {
  std::string role;     // "system", "user" or "assistant"; "developer" is read as "system"
  std::string content;  // a string, or the text parts of an array joined with "\n"
};

// The sampling fields (temperature, n, stop, stream, ...) come from SamplingFields.
struct ChatCompletionRequest : SamplingFields {
  std::optional<std::string> model;        // absent: the served model
  std::vector<ChatMessageParam> messages;  // at least one
  // max_completion_tokens, else max_tokens; absent: until the context is full.
  std::optional<int32_t> max_tokens;
  bool logprobs = false;
  int32_t top_logprobs = 0;  // [0, 20]; > 0 requires logprobs
};

// Validates a parsed request body. Unknown fields are ignored (logged at debug). Known
// OpenAI fields whose effect we cannot honour yet (tools, response_format other
// than text, ...) are rejected when set to anything but their default rather than
// silently ignored.
absl::StatusOr<ChatCompletionRequest> ParseChatCompletionRequest(const nlohmann::json& body);

// Reads "messages" (required, at least one) as ParseChatCompletionRequest does; /tokenize
// takes the same messages.
absl::Status ReadChatMessages(const nlohmann::json& body, std::vector<ChatMessageParam>* out);

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

// {"id", "object": `object`, "created", "model", "system_fingerprint"}: what every
// response and chunk of both generation endpoints starts with.
nlohmann::json EnvelopeJson(const CompletionMeta& meta, std::string_view object);

// "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}.
nlohmann::json UsageJson(const Usage& usage);

// A logprob as sent: JSON has no -inf, so -inf, NaN and anything below -9999 are -9999.0,
// as vLLM does.
double LogprobJsonValue(float logprob);

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
