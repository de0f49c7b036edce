#include "proto/request_fields.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "proto/error_body.h"
#include "proto/json_util.h"

namespace moeserve::proto {

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

const Json* FindField(const Json& object, absl::string_view name) {
  const auto it = object.find(std::string(name));
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// The integer a JSON number stands for; integral floats such as 5.0 count, as they do for
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
  const Json* value = FindField(body, field);
  if (value == nullptr) return absl::OkStatus();
  if (!value->is_boolean()) return FieldError(field, "must be a boolean", *value);
  *out = value->get<bool>();
  return absl::OkStatus();
}

// An integer in [lo, int32 max].
absl::Status ReadInt32AtLeast(const Json& body, absl::string_view field, int32_t lo,
                              std::optional<int32_t>* out) {
  const Json* value = FindField(body, field);
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

namespace {

// A number in [lo, hi], or (lo, hi] when lo_open.
absl::Status ReadBoundedFloat(const Json& body, absl::string_view field, double lo, bool lo_open,
                              double hi, float* out) {
  const Json* value = FindField(body, field);
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

absl::Status ReadSeed(const Json& body, std::optional<uint64_t>* out) {
  const Json* value = FindField(body, "seed");
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
// "n": the number of choices, an integer in [1, kMaxChoices].
absl::Status ReadN(const Json& body, int32_t* out) {
  const Json* n = FindField(body, "n");
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
  const Json* stop = FindField(body, "stop");
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
  const Json* ids = FindField(body, "stop_token_ids");
  if (ids == nullptr) return absl::OkStatus();
  return ReadTokenIds(*ids, "stop_token_ids", out);
}

// "repetition_penalty" (vLLM): any finite number > 0.
absl::Status ReadRepetitionPenalty(const Json& body, float* out) {
  const Json* value = FindField(body, "repetition_penalty");
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
  const Json* bias = FindField(body, "logit_bias");
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

absl::Status CheckStreamOptions(const Json& body, bool stream, bool* include_usage) {
  const Json* options = FindField(body, "stream_options");
  if (options == nullptr) return absl::OkStatus();
  if (!stream) {
    return InvalidFieldError("stream_options",
                             "'stream_options' is only allowed when 'stream' is true");
  }
  if (!options->is_object()) return FieldError("stream_options", "must be an object", *options);
  const Json* usage = FindField(*options, "include_usage");
  if (usage == nullptr) return absl::OkStatus();
  if (!usage->is_boolean()) {
    return FieldError("stream_options.include_usage", "must be a boolean", *usage);
  }
  *include_usage = usage->get<bool>();
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadSamplingFields(const Json& body, SamplingFields* out) {
  MOESERVE_RETURN_IF_ERROR(
      ReadBoundedFloat(body, "temperature", 0.0, /*lo_open=*/false, 2.0, &out->temperature));
  MOESERVE_RETURN_IF_ERROR(
      ReadBoundedFloat(body, "top_p", 0.0, /*lo_open=*/true, 1.0, &out->top_p));
  std::optional<int32_t> top_k;
  MOESERVE_RETURN_IF_ERROR(ReadInt32AtLeast(body, "top_k", -1, &top_k));
  out->top_k = top_k.value_or(0) < 0 ? 0 : top_k.value_or(0);
  MOESERVE_RETURN_IF_ERROR(ReadSeed(body, &out->seed));
  MOESERVE_RETURN_IF_ERROR(ReadBool(body, "ignore_eos", &out->ignore_eos));
  MOESERVE_RETURN_IF_ERROR(ReadBool(body, "stream", &out->stream));
  MOESERVE_RETURN_IF_ERROR(CheckStreamOptions(body, out->stream, &out->include_usage));
  MOESERVE_RETURN_IF_ERROR(ReadN(body, &out->n));
  MOESERVE_RETURN_IF_ERROR(ReadStop(body, &out->stop));
  MOESERVE_RETURN_IF_ERROR(ReadStopTokenIds(body, &out->stop_token_ids));
  MOESERVE_RETURN_IF_ERROR(
      ReadBoundedFloat(body, "min_p", 0.0, /*lo_open=*/false, 1.0, &out->min_p));
  MOESERVE_RETURN_IF_ERROR(ReadBoundedFloat(body, "presence_penalty", -2.0, /*lo_open=*/false, 2.0,
                                            &out->presence_penalty));
  MOESERVE_RETURN_IF_ERROR(ReadBoundedFloat(body, "frequency_penalty", -2.0, /*lo_open=*/false, 2.0,
                                            &out->frequency_penalty));
  MOESERVE_RETURN_IF_ERROR(ReadRepetitionPenalty(body, &out->repetition_penalty));
  return ReadLogitBias(body, &out->logit_bias);
}

absl::Status CheckTokenIdsInVocabulary(const SamplingFields& fields, int32_t vocab_size) {
  for (const auto& [id, bias] : fields.logit_bias) {
    if (id >= vocab_size) {
      return InvalidFieldError(
          "logit_bias", absl::StrCat("'logit_bias' has token id ", id,
                                     ", outside the model's vocabulary [0, ", vocab_size, ")"));
    }
  }
  return CheckTokenIdsInRange(fields.stop_token_ids, "stop_token_ids", vocab_size);
}

absl::Status ReadTokenIds(const Json& value, absl::string_view field, std::vector<int32_t>* out) {
  if (!value.is_array()) return FieldError(field, "must be an array of token ids", value);
  out->reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const std::optional<int64_t> id = AsInteger(value[i]);
    if (!id.has_value() || *id < 0 || *id > std::numeric_limits<int32_t>::max()) {
      return InvalidFieldError(field, absl::StrCat("'", field, "[", i,
                                                   "]' must be a token id (a non-negative "
                                                   "integer), got ",
                                                   DescribeJsonValue(value[i])));
    }
    out->push_back(static_cast<int32_t>(*id));
  }
  return absl::OkStatus();
}

absl::Status CheckTokenIdsInRange(absl::Span<const int32_t> ids, absl::string_view field,
                                  int32_t vocab_size) {
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size) {
      return InvalidFieldError(
          field, absl::StrCat("'", field, "' has token id ", id,
                              ", outside the model's vocabulary [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadModel(const Json& body, std::optional<std::string>* out) {
  const Json* model = FindField(body, "model");
  if (model == nullptr) return absl::OkStatus();
  if (!model->is_string()) return FieldError("model", "must be a string", *model);
  *out = model->get<std::string>();
  return absl::OkStatus();
}

absl::Status CheckUnsupportedFields(const Json& body, const std::vector<UnsupportedField>& fields) {
  for (const UnsupportedField& field : fields) {
    const Json* value = FindField(body, field.name);
    if (value != nullptr && !field.is_default(*value)) return NotSupportedError(field.name, *value);
  }
  return absl::OkStatus();
}

}  // namespace moeserve::proto
