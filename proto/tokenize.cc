#include "proto/tokenize.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "proto/error_body.h"
#include "proto/json_util.h"
#include "proto/request_fields.h"

namespace moeserve::proto {
namespace {

using Json = nlohmann::json;

absl::Status CheckObject(const Json& body) {
  if (body.is_object()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("The request body must be a JSON object, got ", DescribeJsonValue(body)));
}

}  // namespace

absl::StatusOr<TokenizeRequest> ParseTokenizeRequest(const Json& body) {
  MOESERVE_RETURN_IF_ERROR(CheckObject(body));
  TokenizeRequest request;
  MOESERVE_RETURN_IF_ERROR(ReadModel(body, &request.model));
  const Json* prompt = FindField(body, "prompt");
  const Json* messages = FindField(body, "messages");
  if ((prompt == nullptr) == (messages == nullptr)) {
    return InvalidFieldError("prompt", "Exactly one of 'prompt' and 'messages' is required");
  }
  if (prompt != nullptr) {
    if (!prompt->is_string()) return FieldError("prompt", "must be a string", *prompt);
    request.prompt = prompt->get<std::string>();
  } else {
    MOESERVE_RETURN_IF_ERROR(ReadChatMessages(body, &request.messages));
    request.add_special_tokens = false;  // the chat template writes the special tokens
    MOESERVE_RETURN_IF_ERROR(
        ReadBool(body, "add_generation_prompt", &request.add_generation_prompt));
  }
  MOESERVE_RETURN_IF_ERROR(ReadBool(body, "add_special_tokens", &request.add_special_tokens));
  return request;
}

Json TokenizeResponseJson(const std::vector<int32_t>& tokens, int32_t max_model_len) {
  return {{"count", tokens.size()}, {"max_model_len", max_model_len}, {"tokens", tokens}};
}

absl::StatusOr<DetokenizeRequest> ParseDetokenizeRequest(const Json& body) {
  MOESERVE_RETURN_IF_ERROR(CheckObject(body));
  DetokenizeRequest request;
  MOESERVE_RETURN_IF_ERROR(ReadModel(body, &request.model));
  const Json* tokens = FindField(body, "tokens");
  if (tokens == nullptr) return InvalidFieldError("tokens", "'tokens' is required");
  MOESERVE_RETURN_IF_ERROR(ReadTokenIds(*tokens, "tokens", &request.tokens));
  return request;
}

Json DetokenizeResponseJson(std::string_view prompt) { return {{"prompt", prompt}}; }

}  // namespace moeserve::proto
