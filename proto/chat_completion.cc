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

// "'<field>' <requirement>, got <value>" as an InvalidArgument naming the field.
absl::Status FieldError(absl::string_view field, absl::string_view requirement, const Json& value) {
  return InvalidFieldError(
      field, absl::StrCat("'", field, "' ", requirement, ", got ", DescribeJsonValue(value)));
}

absl::Status NotSupportedError(absl::string_view field, const Json& value) {
  return InvalidFieldError(
      field, absl::StrCat("'", field, "' is not supported yet, got ", DescribeJsonValue(value)));
}

// The field's value, or nullptr when it is absent or null: OpenAI's SDKs send null for
// "not given", so null always means "use the default".
const Json* Find(const Json& object, absl::string_view name) {
  const auto it = object.find(std::string(name));
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// The integer a JSON number stands for; integral floats such as 5.0 count, as they do for
// vLLM's request models.
std::optional<int64_t> AsInteger(const Json& value) {
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e18) {
      return static_cast<int64_t>(d);
    }
  }
  return std::nullopt;
}

absl::Status ReadBool(const Json& body, absl::string_view field, bool* out) {
  const Json* value = Find(body, field);
  if (value == nullptr) return absl::OkStatus();
  if (!value->is_boolean()) return FieldError(field, "must be a boolean", *value);
  *out = value->get<bool>();
  return absl::OkStatus();
}

// A number in [lo, hi], or (lo, hi] when lo_open.
absl::Status ReadBoundedFloat(const Json& body, absl::string_view field, double lo, bool lo_open,
                              double hi, float* out) {
  const Json* value = Find(body, field);
  if (value == nullptr) return absl::OkStatus();
  const double x = value->is_number() ? value->get<double>() : std::nan("");
  const bool in_range = lo_open ? (x > lo && x <= hi) : (x >= lo && x <= hi);  // false for NaN
  if (!in_range) {
    const std::string requirement =
        lo_open ? absl::StrCat("must be a number greater than ", lo, " and at most ", hi)
                : absl::StrCat("must be a number between ", lo, " and ", hi);
    return FieldError(field, requirement, *value);
  }
  *out = static_cast<float>(x);
  return absl::OkStatus();
}

// An integer in [lo, int32 max].
absl::Status ReadInt32AtLeast(const Json& body, absl::string_view field, int32_t lo,
                              std::optional<int32_t>* out) {
  const Json* value = Find(body, field);
  if (value == nullptr) return absl::OkStatus();
  const std::optional<int64_t> n = AsInteger(*value);
  if (!n.has_value() || *n < lo || *n > std::numeric_limits<int32_t>::max()) {
    return FieldError(field,
                      absl::StrCat("must be an integer between ", lo, " and ",
                                   std::numeric_limits<int32_t>::max()),
                      *value);
  }
  *out = static_cast<int32_t>(*n);
  return absl::OkStatus();
}

absl::Status ReadSeed(const Json& body, std::optional<uint64_t>* out) {
  const Json* value = Find(body, "seed");
  if (value == nullptr) return absl::OkStatus();
  if (value->is_number_unsigned()) {
    *out = value->get<uint64_t>();
    return absl::OkStatus();
  }
  const std::optional<int64_t> n = AsInteger(*value);
  if (!n.has_value()) return FieldError("seed", "must be an integer", *value);
  *out = static_cast<uint64_t>(*n);  // keeps the bits of negative seeds
  return absl::OkStatus();
}

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
    const Json* type = Find(part, "type");
    if (type == nullptr)
      return InvalidFieldError(part_field + ".type",
                               absl::StrCat("'", part_field, ".type' is required"));
    if (!type->is_string()) return FieldError(part_field + ".type", "must be a string", *type);
    if (type->get<std::string>() != "text") {
      return InvalidFieldError(part_field + ".type",
                               absl::StrCat("'", part_field, ".type' ", DescribeJsonValue(*type),
                                            " is not supported; only \"text\" parts are"));
    }
    const Json* text = Find(part, "text");
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

  const Json* role = Find(message, "role");
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

  if (const Json* tool_calls = Find(message, "tool_calls");
      tool_calls != nullptr && !(tool_calls->is_array() && tool_calls->empty())) {
    return NotSupportedError(field + ".tool_calls", *tool_calls);
  }

  const Json* content = Find(message, "content");
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
  const Json* messages = Find(body, "messages");
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

// "n": the number of choices, an integer in [1, kMaxChoices].
absl::Status ReadN(const Json& body, int32_t* out) {
  const Json* n = Find(body, "n");
  if (n == nullptr) return absl::OkStatus();
  const std::optional<int64_t> value = AsInteger(*n);
  if (!value.has_value() || *value < 1 || *value > kMaxChoices) {
    return FieldError("n", absl::StrCat("must be an integer between 1 and ", kMaxChoices), *n);
  }
  *out = static_cast<int32_t>(*value);
  return absl::OkStatus();
}

// "stop": a string or an array of at most kMaxStopStrings non-empty strings. "" and []
// mean no stop strings (OpenAI's SDKs may send either for "not given").
absl::Status ReadStop(const Json& body, std::vector<std::string>* out) {
  const Json* stop = Find(body, "stop");
  if (stop == nullptr) return absl::OkStatus();
  bool well_typed = stop->is_string() || stop->is_array();
  if (stop->is_array()) {
    for (const Json& s : *stop) well_typed = well_typed && s.is_string();
  }
  if (!well_typed) return FieldError("stop", "must be a string or an array of strings", *stop);
  if (stop->is_string()) {
    if (!stop->get<std::string>().empty()) out->push_back(stop->get<std::string>());
    return absl::OkStatus();
  }
  if (stop->size() > kMaxStopStrings) {
    return InvalidFieldError("stop", absl::StrCat("'stop' must have at most ", kMaxStopStrings,
                                                  " strings, got ", stop->size()));
  }
  for (size_t i = 0; i < stop->size(); ++i) {
    std::string s = (*stop)[i].get<std::string>();
    if (s.empty()) {
      return InvalidFieldError("stop", absl::StrCat("'stop[", i, "]' must not be empty"));
    }
    out->push_back(std::move(s));
  }
  return absl::OkStatus();
}

// "stop_token_ids" (vLLM): an array of token ids.
absl::Status ReadStopTokenIds(const Json& body, std::vector<int32_t>* out) {
  const Json* ids = Find(body, "stop_token_ids");
  if (ids == nullptr) return absl::OkStatus();
  if (!ids->is_array()) return FieldError("stop_token_ids", "must be an array of token ids", *ids);
  for (size_t i = 0; i < ids->size(); ++i) {
    const std::optional<int64_t> id = AsInteger((*ids)[i]);
    if (!id.has_value() || *id < 0 || *id > std::numeric_limits<int32_t>::max()) {
      return InvalidFieldError("stop_token_ids", absl::StrCat("'stop_token_ids[", i,
                                                              "]' must be a token id (a "
                                                              "non-negative integer), got ",
                                                              DescribeJsonValue((*ids)[i])));
    }
    out->push_back(static_cast<int32_t>(*id));
  }
  return absl::OkStatus();
}

// "repetition_penalty" (vLLM): any finite number > 0.
absl::Status ReadRepetitionPenalty(const Json& body, float* out) {
  const Json* value = Find(body, "repetition_penalty");
  if (value == nullptr) return absl::OkStatus();
  const double x = value->is_number() ? value->get<double>() : std::nan("");
  if (!(x > 0.0 && x <= std::numeric_limits<float>::max())) {
    return FieldError("repetition_penalty", "must be a number greater than 0", *value);
  }
  *out = static_cast<float>(x);
  return absl::OkStatus();
}

// "logit_bias": an object mapping token ids, as decimal strings, to numbers in
// [-100, 100] (OpenAI). The ids are checked against the vocabulary by the caller.
absl::Status ReadLogitBias(const Json& body, std::vector<std::pair<int32_t, float>>* out) {
  const Json* bias = Find(body, "logit_bias");
  if (bias == nullptr) return absl::OkStatus();
  if (!bias->is_object()) {
    return FieldError("logit_bias", "must be an object mapping token ids to numbers", *bias);
  }
  for (const auto& [key, value] : bias->items()) {
    int64_t id = -1;
    const bool digits = !key.empty() && key.size() <= 10 &&
                        key.find_first_not_of("0123456789") == std::string::npos;
    if (digits) id = std::stoll(key);
    if (!digits || id > std::numeric_limits<int32_t>::max()) {
      return InvalidFieldError("logit_bias",
                               absl::StrCat("'logit_bias' keys must be token ids (non-negative "
                                            "integers), got ",
                                            DescribeJsonValue(Json(key))));
    }
    const double x = value.is_number() ? value.get<double>() : std::nan("");
    if (!(x >= -100.0 && x <= 100.0)) {
      return InvalidFieldError("logit_bias",
                               absl::StrCat("'logit_bias' values must be numbers between -100 and "
                                            "100, got ",
                                            DescribeJsonValue(value), " for token ", key));
    }
    out->emplace_back(static_cast<int32_t>(id), static_cast<float>(x));
  }
  return absl::OkStatus();
}

// "logprobs" and "top_logprobs" (0..20); top_logprobs > 0 needs logprobs true (OpenAI).
absl::Status ReadLogprobs(const Json& body, bool* logprobs, int32_t* top_logprobs) {
  MOESERVE_RETURN_IF_ERROR(ReadBool(body, "logprobs", logprobs));
  const Json* top = Find(body, "top_logprobs");
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

absl::Status CheckStreamOptions(const Json& body, bool stream, bool* include_usage) {
  const Json* options = Find(body, "stream_options");
  if (options == nullptr) return absl::OkStatus();
  if (!stream) {
    return InvalidFieldError("stream_options",
                             "'stream_options' is only allowed when 'stream' is true");
  }
  if (!options->is_object()) return FieldError("stream_options", "must be an object", *options);
  const Json* usage = Find(*options, "include_usage");
  if (usage == nullptr) return absl::OkStatus();
  if (!usage->is_boolean()) {
    return FieldError("stream_options.include_usage", "must be a boolean", *usage);
  }
  *include_usage = usage->get<bool>();
  return absl::OkStatus();
}

bool IsInteger(const Json& v, int64_t x) { return AsInteger(v) == x; }
bool IsFalse(const Json& v) { return v.is_boolean() && !v.get<bool>(); }
bool IsEmptyContainer(const Json& v) { return (v.is_object() || v.is_array()) && v.empty(); }

// Known OpenAI (and vLLM) fields that change the output and that we cannot honour yet:
// accepted only at their default value.
struct UnsupportedField {
  absl::string_view name;
  bool (*is_default)(const Json&);
};
constexpr UnsupportedField kUnsupportedFields[] = {
    {"min_tokens", [](const Json& v) { return IsInteger(v, 0); }},  // vLLM
    {"best_of", [](const Json& v) { return IsInteger(v, 1); }},     // vLLM
    {"use_beam_search", IsFalse},                                   // vLLM
    {"echo", IsFalse},                                              // vLLM
    {"continue_final_message", IsFalse},                            // vLLM
    {"tools", IsEmptyContainer},
    {"functions", IsEmptyContainer},
    {"tool_choice", [](const Json& v) { return v == "none" || v == "auto"; }},
    {"function_call", [](const Json& v) { return v == "none" || v == "auto"; }},
    {"response_format",
     [](const Json& v) { return v.is_object() && v.value("type", Json()) == "text"; }},
};

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
    for (const UnsupportedField& field : kUnsupportedFields) set->insert(field.name);
    return set;
  }();
  return *fields;
}

}  // namespace

absl::StatusOr<ChatCompletionRequest> ParseChatCompletionRequest(const Json& body) {
  if (!body.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("The request body must be a JSON object, got ", DescribeJsonValue(body)));
  }
  ChatCompletionRequest request;

  if (const Json* model = Find(body, "model"); model != nullptr) {
    if (!model->is_string()) return FieldError("model", "must be a string", *model);
    request.model = model->get<std::string>();
  }
  MOESERVE_RETURN_IF_ERROR(ReadMessages(body, &request.messages));

  std::optional<int32_t> max_tokens;
  std::optional<int32_t> max_completion_tokens;
  MOESERVE_RETURN_IF_ERROR(ReadInt32AtLeast(body, "max_tokens", 1, &max_tokens));
  MOESERVE_RETURN_IF_ERROR(
      ReadInt32AtLeast(body, "max_completion_tokens", 1, &max_completion_tokens));
  // max_completion_tokens is OpenAI's newer name; it wins when both are given, as in vLLM.
  request.max_tokens = max_completion_tokens.has_value() ? max_completion_tokens : max_tokens;

  MOESERVE_RETURN_IF_ERROR(
      ReadBoundedFloat(body, "temperature", 0.0, /*lo_open=*/false, 2.0, &request.temperature));
  MOESERVE_RETURN_IF_ERROR(
      ReadBoundedFloat(body, "top_p", 0.0, /*lo_open=*/true, 1.0, &request.top_p));
  std::optional<int32_t> top_k;
  MOESERVE_RETURN_IF_ERROR(ReadInt32AtLeast(body, "top_k", -1, &top_k));
  request.top_k = top_k.value_or(0) < 0 ? 0 : top_k.value_or(0);
  MOESERVE_RETURN_IF_ERROR(ReadSeed(body, &request.seed));
  MOESERVE_RETURN_IF_ERROR(ReadBool(body, "ignore_eos", &request.ignore_eos));
  MOESERVE_RETURN_IF_ERROR(ReadBool(body, "stream", &request.stream));
  MOESERVE_RETURN_IF_ERROR(CheckStreamOptions(body, request.stream, &request.include_usage));
  MOESERVE_RETURN_IF_ERROR(ReadN(body, &request.n));
  MOESERVE_RETURN_IF_ERROR(ReadStop(body, &request.stop));
  MOESERVE_RETURN_IF_ERROR(ReadStopTokenIds(body, &request.stop_token_ids));
  MOESERVE_RETURN_IF_ERROR(
      ReadBoundedFloat(body, "min_p", 0.0, /*lo_open=*/false, 1.0, &request.min_p));
  MOESERVE_RETURN_IF_ERROR(ReadBoundedFloat(body, "presence_penalty", -2.0, /*lo_open=*/false, 2.0,
                                            &request.presence_penalty));
  MOESERVE_RETURN_IF_ERROR(ReadBoundedFloat(body, "frequency_penalty", -2.0, /*lo_open=*/false, 2.0,
                                            &request.frequency_penalty));
  MOESERVE_RETURN_IF_ERROR(ReadRepetitionPenalty(body, &request.repetition_penalty));
  MOESERVE_RETURN_IF_ERROR(ReadLogitBias(body, &request.logit_bias));
  MOESERVE_RETURN_IF_ERROR(ReadLogprobs(body, &request.logprobs, &request.top_logprobs));

  for (const UnsupportedField& field : kUnsupportedFields) {
    const Json* value = Find(body, field.name);
    if (value != nullptr && !field.is_default(*value)) {
      return NotSupportedError(field.name, *value);
    }
  }
  for (const auto& [key, value] : body.items()) {
    if (!KnownFields().contains(key)) {
      MOESERVE_LOG_DEBUG("chat completion request: ignoring unknown field '{}'", key);
    }
  }
  return request;
}

absl::Status CheckTokenIdsInVocabulary(const ChatCompletionRequest& request, int32_t vocab_size) {
  for (const auto& [id, bias] : request.logit_bias) {
    if (id >= vocab_size) {
      return InvalidFieldError(
          "logit_bias", absl::StrCat("'logit_bias' has token id ", id,
                                     ", outside the model's vocabulary [0, ", vocab_size, ")"));
    }
  }
  for (int32_t id : request.stop_token_ids) {
    if (id >= vocab_size) {
      return InvalidFieldError(
          "stop_token_ids", absl::StrCat("'stop_token_ids' has token id ", id,
                                         ", outside the model's vocabulary [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

namespace {

// JSON has no -inf; vLLM sends -9999.0 for it and for anything below.
double ClampLogprob(float logprob) {
  return std::isnan(logprob) ? -9999.0 : std::max(static_cast<double>(logprob), -9999.0);
}

Json BytesJson(const std::string& bytes) {
  Json out = Json::array();
  for (const char c : bytes) out.push_back(static_cast<unsigned char>(c));
  return out;
}

}  // namespace

Json ChatLogprobsJson(const std::vector<ChatTokenLogprob>& content) {
  Json entries = Json::array();
  for (const ChatTokenLogprob& token : content) {
    Json top = Json::array();
    for (const ChatTopLogprob& alt : token.top_logprobs) {
      top.push_back({{"token", alt.token},
                     {"logprob", ClampLogprob(alt.logprob)},
                     {"bytes", BytesJson(alt.bytes)}});
    }
    entries.push_back({{"token", token.token},
                       {"logprob", ClampLogprob(token.logprob)},
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
  return {{"id", meta.id},
          {"object", "chat.completion"},
          {"created", meta.created},
          {"model", meta.model},
          {"system_fingerprint", meta.system_fingerprint},
          {"choices", std::move(choices_json)},
          {"usage",
           {{"prompt_tokens", usage.prompt_tokens},
            {"completion_tokens", usage.completion_tokens},
            {"total_tokens", usage.prompt_tokens + usage.completion_tokens}}}};
}

Json ChatCompletionChunkBuilder::Chunk(int32_t index, Json delta, std::string_view finish_reason,
                                       const Json& logprobs) const {
  Json choice = {{"index", index},
                 {"delta", std::move(delta)},
                 {"logprobs", logprobs},
                 {"finish_reason", finish_reason.empty() ? Json(nullptr) : Json(finish_reason)}};
  Json chunk = {{"id", meta_.id},
                {"object", "chat.completion.chunk"},
                {"created", meta_.created},
                {"model", meta_.model},
                {"system_fingerprint", meta_.system_fingerprint},
                {"choices", Json::array({std::move(choice)})}};
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
  return {{"id", meta_.id},
          {"object", "chat.completion.chunk"},
          {"created", meta_.created},
          {"model", meta_.model},
          {"system_fingerprint", meta_.system_fingerprint},
          {"choices", Json::array()},
          {"usage",
           {{"prompt_tokens", usage.prompt_tokens},
            {"completion_tokens", usage.completion_tokens},
            {"total_tokens", usage.prompt_tokens + usage.completion_tokens}}}};
}

std::string SseEvent(const Json& data) { return absl::StrCat("data: ", DumpJson(data), "\n\n"); }

}  // namespace moeserve::proto
