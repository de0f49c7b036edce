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
  float temperature = 1.0f;      // [0, 2]; 0 is greedy
  float top_p = 1.0f;            // (0, 1]
  int32_t top_k = 0;             // 0 disables; -1 on the wire means the same (vLLM extension)
  std::optional<uint64_t> seed;  // negative seeds keep their two's-complement bits
  bool ignore_eos = false;       // vLLM extension
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// Validates a parsed request body. Unknown fields are ignored (logged at debug). Known
// OpenAI fields whose effect we cannot honour yet (n > 1, stop, logprobs, penalties,
// logit_bias, tools, response_format other than text, ...) are rejected when set to
// anything but their default rather than silently ignored.
absl::StatusOr<ChatCompletionRequest> ParseChatCompletionRequest(const nlohmann::json& body);

// What a response and every chunk of a stream share.
struct CompletionMeta {
  std::string id;       // "chatcmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::string system_fingerprint;
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

// The non-streamed response: object "chat.completion" with one choice.
nlohmann::json ChatCompletionJson(const CompletionMeta& meta, std::string_view content,
                                  std::string_view finish_reason, const Usage& usage);

// The chunks of a streamed response (object "chat.completion.chunk"), in order:
// RoleChunk(), ContentChunk(text)..., FinishChunk(reason), then UsageChunk(usage) when
// include_usage was asked for. With include_usage every chunk but the last carries "usage": null,
// as OpenAI does.
class ChatCompletionChunkBuilder {
 public:
  ChatCompletionChunkBuilder(CompletionMeta meta, bool include_usage)
      : meta_(std::move(meta)), include_usage_(include_usage) {}

  nlohmann::json RoleChunk() const;  // delta {"role": "assistant", "content": ""}
  nlohmann::json ContentChunk(std::string_view text) const;
  nlohmann::json FinishChunk(std::string_view finish_reason) const;  // empty delta
  nlohmann::json UsageChunk(const Usage& usage) const;               // "choices": []

 private:
  nlohmann::json Chunk(nlohmann::json delta, std::string_view finish_reason) const;

  CompletionMeta meta_;
  bool include_usage_;
};

// Server-sent events framing: "data: <json>\n\n", and the stream's terminator.
std::string SseEvent(const nlohmann::json& data);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace moeserve::proto

#endif  // MOESERVE_PROTO_CHAT_COMPLETION_H_
