#include "proto/completion.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "proto/error_body.h"
#include "proto/json_util.h"

namespace moeserve::proto {
namespace {

using Json = nlohmann::json;

constexpr char kPromptRequirement[] =
    "must be a string, an array of strings, an array of token ids or an array of arrays of "
    "token ids";

absl::Status ReadPrompts(const Json& body, std::vector<CompletionPrompt>* out) {
  const Json* prompt = FindField(body, "prompt");
  if (prompt == nullptr) return InvalidFieldError("prompt", "'prompt' is required");
  if (prompt->is_string()) {
    out->push_back(CompletionPrompt{prompt->get<std::string>(), {}});
    return absl::OkStatus();
  }
  if (!prompt->is_array()) return FieldError("prompt", kPromptRequirement, *prompt);
  if (prompt->empty()) return InvalidFieldError("prompt", "'prompt' must not be empty");
  const Json& first = prompt->front();
  if (first.is_number()) {  // one prompt of token ids
    CompletionPrompt tokens;
    MOESERVE_RETURN_IF_ERROR(ReadTokenIds(*prompt, "prompt", &tokens.token_ids));
    out->push_back(std::move(tokens));
    return absl::OkStatus();
  }
  for (size_t i = 0; i < prompt->size(); ++i) {
    const Json& item = (*prompt)[i];
    const std::string field = absl::StrCat("prompt[", i, "]");
    if (first.is_string()) {
      if (!item.is_string()) return FieldError("prompt", kPromptRequirement, *prompt);
      out->push_back(CompletionPrompt{item.get<std::string>(), {}});
    } else if (first.is_array()) {
      if (!item.is_array()) return FieldError("prompt", kPromptRequirement, *prompt);
      if (item.empty()) {
        return InvalidFieldError("prompt", absl::StrCat("'", field, "' must not be empty"));
      }
      CompletionPrompt tokens;
      MOESERVE_RETURN_IF_ERROR(ReadTokenIds(item, field, &tokens.token_ids));
      out->push_back(std::move(tokens));
    } else {
      return FieldError("prompt", kPromptRequirement, *prompt);
    }
  }
  return absl::OkStatus();
}

absl::Status ReadCompletionLogprobs(const Json& body, std::optional<int32_t>* out) {
  const Json* logprobs = FindField(body, "logprobs");
  if (logprobs == nullptr) return absl::OkStatus();
  const std::optional<int64_t> n = logprobs->is_boolean() ? std::nullopt : AsInteger(*logprobs);
  if (!n.has_value() || *n < 0 || *n > kMaxCompletionLogprobs) {
    return FieldError("logprobs",
                      absl::StrCat("must be an integer between 0 and ", kMaxCompletionLogprobs),
                      *logprobs);
  }
  *out = static_cast<int32_t>(*n);
  return absl::OkStatus();
}

// Known OpenAI (and vLLM) fields that change the output and that we cannot honour yet.
const std::vector<UnsupportedField>& UnsupportedCompletionFields() {
  static const auto* const fields = new std::vector<UnsupportedField>{
      {"best_of", [](const Json& v) { return IsIntegerValue(v, 1); }},
      {"min_tokens", [](const Json& v) { return IsIntegerValue(v, 0); }},       // vLLM
      {"use_beam_search", IsFalse},                                             // vLLM
      {"prompt_logprobs", [](const Json& v) { return IsIntegerValue(v, 0); }},  // vLLM
      {"response_format",
       [](const Json& v) { return v.is_object() && v.value("type", Json()) == "text"; }},
  };
  return *fields;
}

// Fields read by ParseCompletionRequest, or deliberately ignored.
const absl::flat_hash_set<absl::string_view>& KnownFields() {
  static const auto* const fields = [] {
    auto* set = new absl::flat_hash_set<absl::string_view>{
        "model", "prompt", "max_tokens", "echo", "logprobs", "user", "suffix"};
    for (const absl::string_view name : kSamplingFieldNames) set->insert(name);
    for (const UnsupportedField& field : UnsupportedCompletionFields()) set->insert(field.name);
    return set;
  }();
  return *fields;
}

}  // namespace

absl::StatusOr<CompletionRequest> ParseCompletionRequest(const Json& body) {
  if (!body.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("The request body must be a JSON object, got ", DescribeJsonValue(body)));
  }
  CompletionRequest request;
  MOESERVE_RETURN_IF_ERROR(ReadModel(body, &request.model));
  MOESERVE_RETURN_IF_ERROR(ReadPrompts(body, &request.prompts));
  std::optional<int32_t> max_tokens;
  MOESERVE_RETURN_IF_ERROR(ReadInt32AtLeast(body, "max_tokens", 1, &max_tokens));
  request.max_tokens = max_tokens.value_or(kDefaultCompletionMaxTokens);
  MOESERVE_RETURN_IF_ERROR(ReadSamplingFields(body, &request));
  if (static_cast<int64_t>(request.prompts.size()) * request.n > kMaxCompletionChoices) {
    return InvalidFieldError(
        "prompt", absl::StrCat("At most ", kMaxCompletionChoices,
                               " choices (prompts times n) per "
                               "request, got ",
                               request.prompts.size(), " prompts times n = ", request.n));
  }
  MOESERVE_RETURN_IF_ERROR(ReadBool(body, "echo", &request.echo));
  MOESERVE_RETURN_IF_ERROR(ReadCompletionLogprobs(body, &request.logprobs));
  // "suffix" is rejected whatever its value but "" (OpenAI: only some models support it).
  if (const Json* suffix = FindField(body, "suffix");
      suffix != nullptr && !(suffix->is_string() && suffix->get<std::string>().empty())) {
    return InvalidFieldError(
        "suffix", absl::StrCat("'suffix' is not supported, got ", DescribeJsonValue(*suffix)));
  }
  MOESERVE_RETURN_IF_ERROR(CheckUnsupportedFields(body, UnsupportedCompletionFields()));
  // The prompt's own logprobs, which echo with logprobs reports, are not computed yet.
  if (request.echo && request.logprobs.has_value()) {
    return InvalidFieldError("echo",
                             "'echo' together with 'logprobs' is not supported yet (the prompt's "
                             "logprobs are not computed)");
  }
  for (const auto& [key, value] : body.items()) {
    if (!KnownFields().contains(key)) {
      MOESERVE_LOG_DEBUG("completion request: ignoring unknown field '{}'", key);
    }
  }
  return request;
}

absl::Status CheckPromptTokenIds(const CompletionRequest& request, int32_t vocab_size) {
  for (const CompletionPrompt& prompt : request.prompts) {
    MOESERVE_RETURN_IF_ERROR(CheckTokenIdsInRange(prompt.token_ids, "prompt", vocab_size));
  }
  return absl::OkStatus();
}

int64_t CountCodePoints(std::string_view text) {
  int64_t n = 0;
  for (const char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

Json CompletionLogprobsJson(const std::vector<CompletionTokenLogprob>& tokens,
                            int64_t* text_offset) {
  Json token_texts = Json::array();
  Json token_logprobs = Json::array();
  Json top_logprobs = Json::array();
  Json text_offsets = Json::array();
  for (const CompletionTokenLogprob& token : tokens) {
    token_texts.push_back(token.token);
    token_logprobs.push_back(LogprobJsonValue(token.logprob));
    Json top = Json::object();
    for (const auto& [text, logprob] : token.top) {
      if (!top.contains(text)) top[text] = LogprobJsonValue(logprob);
    }
    if (!top.contains(token.token)) top[token.token] = LogprobJsonValue(token.logprob);
    top_logprobs.push_back(std::move(top));
    text_offsets.push_back(*text_offset);
    *text_offset += CountCodePoints(token.token);
  }
  return {{"tokens", std::move(token_texts)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top_logprobs)},
          {"text_offset", std::move(text_offsets)}};
}

Json CompletionJson(const CompletionMeta& meta, const std::vector<CompletionChoice>& choices,
                    const Usage& usage) {
  Json choices_json = Json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    choices_json.push_back({{"index", i},
                            {"text", choices[i].text},
                            {"logprobs", choices[i].logprobs},
                            {"finish_reason", choices[i].finish_reason}});
  }
  Json out = EnvelopeJson(meta, "text_completion");
  out["choices"] = std::move(choices_json);
  out["usage"] = UsageJson(usage);
  return out;
}

Json CompletionChunkBuilder::TextChunk(int32_t index, std::string_view text, const Json& logprobs,
                                       std::string_view finish_reason) const {
  Json choice = {{"index", index},
                 {"text", text},
                 {"logprobs", logprobs},
                 {"finish_reason", finish_reason.empty() ? Json(nullptr) : Json(finish_reason)}};
  Json chunk = EnvelopeJson(meta_, "text_completion");
  chunk["choices"] = Json::array({std::move(choice)});
  if (include_usage_) chunk["usage"] = nullptr;
  return chunk;
}

Json CompletionChunkBuilder::UsageChunk(const Usage& usage) const {
  Json out = EnvelopeJson(meta_, "text_completion");
  out["choices"] = Json::array();
  out["usage"] = UsageJson(usage);
  return out;
}

}  // namespace moeserve::proto
