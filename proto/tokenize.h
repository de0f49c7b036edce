// POST /tokenize and POST /detokenize (vLLM's extensions to the OpenAI API): the requests
// after validation and the response bodies, in vLLM's shapes.
#ifndef MOESERVE_PROTO_TOKENIZE_H_
#define MOESERVE_PROTO_TOKENIZE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "proto/chat_completion.h"

namespace moeserve::proto {

// Either {"prompt": str, "add_special_tokens": bool = true} or {"messages": [...],
// "add_generation_prompt": bool = true, "add_special_tokens": bool = false} (the messages
// rendered with the chat template, as vLLM does).
struct TokenizeRequest {
  std::optional<std::string> model;
  std::optional<std::string> prompt;       // set for the prompt form
  std::vector<ChatMessageParam> messages;  // non-empty for the messages form
  bool add_special_tokens = true;
  bool add_generation_prompt = true;
};
absl::StatusOr<TokenizeRequest> ParseTokenizeRequest(const nlohmann::json& body);

// {"count": n, "max_model_len": m, "tokens": [...]}.
nlohmann::json TokenizeResponseJson(const std::vector<int32_t>& tokens, int32_t max_model_len);

// {"tokens": [ids...]}; the ids are checked against the vocabulary by the caller.
struct DetokenizeRequest {
  std::optional<std::string> model;
  std::vector<int32_t> tokens;
};
absl::StatusOr<DetokenizeRequest> ParseDetokenizeRequest(const nlohmann::json& body);

// {"prompt": text}.
nlohmann::json DetokenizeResponseJson(std::string_view prompt);

}  // namespace moeserve::proto

#endif  // MOESERVE_PROTO_TOKENIZE_H_
