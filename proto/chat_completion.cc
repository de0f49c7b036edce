#include "proto/chat_completion.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status.h"
#include "proto/error_body.h"
#include "proto/json_util.h"

namespace moeserve::proto {
namespace {

using Json = nlohmann::json;

// The text of a message's content: a string, or an array of {"type": "text", "text": ...}
// parts joined with "\n" (as vLLM joins them).
absl::Status ReadContent(const Json& content, const std::string& field, std::string* out) {
  if (content.is_string()) {
    *out = content.get<std::string>();
    return absl::OkStatus();
  }
  if (!content.is_array()) {
    return FieldError(field, "must be a string or an array of content parts", content);
  }
  std::vector<std::string> texts;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    const std::string part_field = absl::StrCat(field, "[", i, "]");
    if (!part.is_object()) return FieldError(part_field, "must be an object", part);
    const Json* type = FindField(part, "type");
    if (type == nullptr)
      return InvalidFieldError(part_field + ".type",
                               absl::StrCat("'", part_field, ".type' is required"));
    if (!type->is_string()) return FieldError(part_field + ".type", "must be a string", *type);
    if (type->get<std::string>() != "text") {
      return InvalidFieldError(part_field + ".type",
                               absl::StrCat("'", part_field, ".type' ", DescribeJsonValue(*type),
                                            " is not supported; only \"text\" parts are"));
    }
    const Json* text = FindField(part, "text");
    if (text == nullptr) {
      return InvalidFieldError(part_field + ".text",
                               absl::StrCat("'", part_field, ".text' is required"));
    }
    if (!text->is_string()) return FieldError(part_field + ".text", "must be a string", *text);
    texts.push_back(text->get<std::string>());
  }
  *out = absl::StrJoin(texts, "\n");
  return absl::OkStatus();
}

absl::Status ReadMessage(const Json& message, size_t index, ChatMessageParam* out) {
  const std::string field = absl::StrCat("messages[", index, "]");
  if (!message.is_object()) return FieldError(field, "must be an object", message);

  const Json* role = FindField(message, "role");
  if (role == nullptr) {
    return InvalidFieldError(field + ".role", absl::StrCat("'", field, ".role' is required"));
  }
  if (!role->is_string()) return FieldError(field + ".role", "must be a string", *role);
  const std::string role_name = role->get<std::string>();
  if (role_name == "tool" || role_name == "function") {
    return InvalidFieldError(
        field + ".role",
        absl::StrCat("'", field, ".role' ", DescribeJsonValue(*role), " is not supported yet"));
  }
  if (role_name != "system" && role_name != "developer" && role_name != "user" &&
      role_name != "assistant") {
    return FieldError(field + ".role",
                      "must be one of \"system\", \"developer\", \"user\", \"assistant\"", *role);
  }
  // OpenAI introduced "developer" as the new name of "system"; chat templates know only
  // the old one.
  out->role = role_name == "developer" ? "system" : role_name;

  if (const Json* tool_calls = FindField(message, "tool_calls");
      tool_calls != nullptr && !(tool_calls->is_array() && tool_calls->empty())) {
    return NotSupportedError(field + ".tool_calls", *tool_calls);
  }

  const Json* content = FindField(message, "content");
  if (content == nullptr) {
    // An assistant message may omit its content (OpenAI allows it alongside tool calls).
    if (out->role == "assistant") return absl::OkStatus();
    return InvalidFieldError(
        field + ".content",
        absl::StrCat("'", field, ".content' is required for \"", role_name, "\" messages"));
  }
  return ReadContent(*content, field + ".content", &out->content);
}

absl::Status ReadMessages(const Json& body, std::vector<ChatMessageParam>* out) {
  const Json* messages = FindField(body, "messages");
  if (messages == nullptr) return InvalidFieldError("messages", "'messages' is required");
  if (!messages->is_array()) {
    return FieldError("messages", "must be an array of message objects", *messages);
  }
  if (messages->empty()) {
    return InvalidFieldError("messages", "'messages' must contain at least one message");
  }
  out->resize(messages->size());
  for (size_t i = 0; i < messages->size(); ++i) {
    MOESERVE_RETURN_IF_ERROR(ReadMessage((*messages)[i], i, &(*out)[i]));
  }
  return absl::OkStatus();
}

// "logprobs" and "top_logprobs" (0..20); top_logprobs > 0 needs logprobs true (OpenAI).
absl::Status ReadLogprobs(const Json& body, bool* logprobs, int32_t* top_logprobs) {
  MOESERVE_RETURN_IF_ERROR(ReadBool(body, "logprobs", logprobs));
  const Json* top = FindField(body, "top_logprobs");
  if (top == nullptr) return absl::OkStatus();
  const std::optional<int64_t> n = AsInteger(*top);
  if (!n.has_value() || *n < 0 || *n > kMaxTopLogprobs) {
    return FieldError("top_logprobs",
                      absl::StrCat("must be an integer between 0 and ", kMaxTopLogprobs), *top);
  }
  if (*n > 0 && !*logprobs) {
    return InvalidFieldError("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
  }
  *top_logprobs = static_cast<int32_t>(*n);
  return absl::OkStatus();
}

// Known OpenAI (and vLLM) fields that change the output and that we cannot honour yet.
const std::vector<UnsupportedField>& UnsupportedChatFields() {
  static const auto* const fields = new std::vector<UnsupportedField>{
      {"min_tokens", [](const Json& v) { return IsIntegerValue(v, 0); }},  // vLLM
      {"best_of", [](const Json& v) { return IsIntegerValue(v, 1); }},     // vLLM
      {"use_beam_search", IsFalse},                                        // vLLM
      {"echo", IsFalse},                                                   // vLLM
      {"continue_final_message", IsFalse},                                 // vLLM
      {"tools", IsEmptyContainer},
      {"functions", IsEmptyContainer},
      {"tool_choice", [](const Json& v) { return v == "none" || v == "auto"; }},
      {"function_call", [](const Json& v) { return v == "none" || v == "auto"; }},
      {"response_format",
       [](const Json& v) { return v.is_object() && v.value("type", Json()) == "text"; }},
  };
  return *fields;
}

// Fields read by ParseChatCompletionRequest, or deliberately ignored.
const absl::flat_hash_set<absl::string_view>& KnownFields() {
  static const auto* const fields = [] {
    auto* set = new absl::flat_hash_set<absl::string_view>{"model",
                                                           "messages",
                                                           "max_tokens",
                                                           "max_completion_tokens",
                                                           "temperature",
                                                           "top_p",
                                                           "top_k",
                                                           "seed",
                                                           "ignore_eos",
                                                           "stream",
                                                           "stream_options",
                                                           "n",
                                                           "stop",
                                                           "user",
                                                           "min_p",
                                                           "presence_penalty",
                                                           "frequency_penalty",
                                                           "repetition_penalty",
                                                           "logit_bias",
                                                           "logprobs",
                                                           "top_logprobs",
                                                           "stop_token_ids"};
    for (const UnsupportedField& field : UnsupportedChatFields()) set->insert(field.name);
    return set;
  }();
  return *fields;
}

}  // namespace

absl::Status ReadChatMessages(const Json& body, std::vector<ChatMessageParam>* out) {
  return ReadMessages(body, out);
}

absl::StatusOr<ChatCompletionRequest> ParseChatCompletionRequest(const Json& body) {
  if (!body.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("The request body must be a JSON object, got ", DescribeJsonValue(body)));
  }
  ChatCompletionRequest request;

  MOESERVE_RETURN_IF_ERROR(ReadModel(body, &request.model));
  MOESERVE_RETURN_IF_ERROR(ReadMessages(body, &request.messages));

  std::optional<int32_t> max_tokens;
  std::optional<int32_t> max_completion_tokens;
  MOESERVE_RETURN_IF_ERROR(ReadInt32AtLeast(body, "max_tokens", 1, &max_tokens));
  MOESERVE_RETURN_IF_ERROR(
      ReadInt32AtLeast(body, "max_completion_tokens", 1, &max_completion_tokens));
  // max_completion_tokens is OpenAI's newer name; it wins when both are given, as in vLLM.
  request.max_tokens = max_completion_tokens.has_value() ? max_completion_tokens : max_tokens;

  MOESERVE_RETURN_IF_ERROR(ReadSamplingFields(body, &request));
  MOESERVE_RETURN_IF_ERROR(ReadLogprobs(body, &request.logprobs, &request.top_logprobs));

  MOESERVE_RETURN_IF_ERROR(CheckUnsupportedFields(body, UnsupportedChatFields()));
  for (const auto& [key, value] : body.items()) {
    if (!KnownFields().contains(key)) {
      MOESERVE_LOG_DEBUG("chat completion request: ignoring unknown field '{}'", key);
    }
  }
  return request;
}

namespace {

Json BytesJson(const std::string& bytes) {
  Json out = Json::array();
  for (const char c : bytes) out.push_back(static_cast<unsigned char>(c));
  return out;
}

}  // namespace

double LogprobJsonValue(float logprob) {
  return std::isnan(logprob) ? -9999.0 : std::max(static_cast<double>(logprob), -9999.0);
}

Json EnvelopeJson(const CompletionMeta& meta, std::string_view object) {
  return {{"id", meta.id},
          {"object", object},
          {"created", meta.created},
          {"model", meta.model},
          {"system_fingerprint", meta.system_fingerprint}};
}

Json UsageJson(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

Json ChatLogprobsJson(const std::vector<ChatTokenLogprob>& content) {
  Json entries = Json::array();
  for (const ChatTokenLogprob& token : content) {
    Json top = Json::array();
    for (const ChatTopLogprob& alt : token.top_logprobs) {
      top.push_back({{"token", alt.token},
                     {"logprob", LogprobJsonValue(alt.logprob)},
                     {"bytes", BytesJson(alt.bytes)}});
    }
    entries.push_back({{"token", token.token},
                       {"logprob", LogprobJsonValue(token.logprob)},
                       {"bytes", BytesJson(token.bytes)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(entries)}};
}

Json ChatCompletionJson(const CompletionMeta& meta, const std::vector<ChatChoice>& choices,
                        const Usage& usage) {
  Json choices_json = Json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    choices_json.push_back({{"index", i},
                            {"message", {{"role", "assistant"}, {"content", choices[i].content}}},
                            {"logprobs", choices[i].logprobs},
                            {"finish_reason", choices[i].finish_reason}});
  }
  Json out = EnvelopeJson(meta, "chat.completion");
  out["choices"] = std::move(choices_json);
  out["usage"] = UsageJson(usage);
  return out;
}

Json ChatCompletionChunkBuilder::Chunk(int32_t index, Json delta, std::string_view finish_reason,
                                       const Json& logprobs) const {
  Json choice = {{"index", index},
                 {"delta", std::move(delta)},
                 {"logprobs", logprobs},
                 {"finish_reason", finish_reason.empty() ? Json(nullptr) : Json(finish_reason)}};
  Json chunk = EnvelopeJson(meta_, "chat.completion.chunk");
  chunk["choices"] = Json::array({std::move(choice)});
  if (include_usage_) chunk["usage"] = nullptr;
  return chunk;
}

Json ChatCompletionChunkBuilder::RoleChunk(int32_t index) const {
  return Chunk(index, {{"role", "assistant"}, {"content", ""}}, "");
}

Json ChatCompletionChunkBuilder::ContentChunk(int32_t index, std::string_view text,
                                              const Json& logprobs) const {
  return Chunk(index, {{"content", text}}, "", logprobs);
}

Json ChatCompletionChunkBuilder::FinishChunk(int32_t index, std::string_view finish_reason) const {
  return Chunk(index, Json::object(), finish_reason);
}

Json ChatCompletionChunkBuilder::UsageChunk(const Usage& usage) const {
  Json out = EnvelopeJson(meta_, "chat.completion.chunk");
  out["choices"] = Json::array();
  out["usage"] = UsageJson(usage);
  return out;
}

std::string SseEvent(const Json& data) { return absl::StrCat("data: ", DumpJson(data), "\n\n"); }

}  // namespace moeserve::proto
