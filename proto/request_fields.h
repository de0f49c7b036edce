// Field readers shared by the generation endpoints (/v1/chat/completions, /v1/completions):
// each reads one field of a request body, leaves the default when the field is absent or
// null (OpenAI's SDKs send null for "not given"), and answers a wrong type or an
// out-of-range value with InvalidArgument naming the field (see proto/error_body.h).
#ifndef MOESERVE_PROTO_REQUEST_FIELDS_H_
#define MOESERVE_PROTO_REQUEST_FIELDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"

namespace moeserve::proto {

inline constexpr int kMaxStopStrings = 4;   // OpenAI's limit
inline constexpr int kMaxTopLogprobs = 20;  // OpenAI's limit
inline constexpr int kMaxChoices = 128;     // OpenAI's limit on n

// The sampling and streaming fields both generation endpoints take, with OpenAI's
// defaults; vLLM's extensions are marked.
struct SamplingFields {
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
  bool ignore_eos = false;              // vLLM extension
  int32_t n = 1;                        // choices to generate, [1, kMaxChoices]
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// The names ReadSamplingFields reads.
inline constexpr absl::string_view kSamplingFieldNames[] = {"temperature",
                                                            "top_p",
                                                            "top_k",
                                                            "seed",
                                                            "min_p",
                                                            "presence_penalty",
                                                            "frequency_penalty",
                                                            "repetition_penalty",
                                                            "logit_bias",
                                                            "stop",
                                                            "stop_token_ids",
                                                            "ignore_eos",
                                                            "n",
                                                            "stream",
                                                            "stream_options"};

// Reads every SamplingFields field of `body` (a JSON object).
absl::Status ReadSamplingFields(const nlohmann::json& body, SamplingFields* out);

// The 400 for a logit_bias key or a stop_token_ids entry outside [0, vocab_size); OK when
// every id is inside.
absl::Status CheckTokenIdsInVocabulary(const SamplingFields& fields, int32_t vocab_size);

// The field's value, or nullptr when it is absent or null.
const nlohmann::json* FindField(const nlohmann::json& object, absl::string_view name);

// The integer a JSON number stands for; integral floats such as 5.0 count, as they do for
// vLLM's request models.
std::optional<int64_t> AsInteger(const nlohmann::json& value);

// "'<field>' <requirement>, got <value>" as an InvalidArgument naming the field.
absl::Status FieldError(absl::string_view field, absl::string_view requirement,
                        const nlohmann::json& value);
// "'<field>' is not supported yet, got <value>".
absl::Status NotSupportedError(absl::string_view field, const nlohmann::json& value);

absl::Status ReadBool(const nlohmann::json& body, absl::string_view field, bool* out);
// An integer in [lo, int32 max].
absl::Status ReadInt32AtLeast(const nlohmann::json& body, absl::string_view field, int32_t lo,
                              std::optional<int32_t>* out);
// A list of token ids (non-negative integers) at `value`, named `field` in errors; the
// caller checks them against the vocabulary (CheckTokenIdsInVocabulary for the fields
// above, CheckPromptTokenIds for prompts).
absl::Status ReadTokenIds(const nlohmann::json& value, absl::string_view field,
                          std::vector<int32_t>* out);
// The 400 for an id outside [0, vocab_size) in `ids`, named `field`.
absl::Status CheckTokenIdsInRange(absl::Span<const int32_t> ids, absl::string_view field,
                                  int32_t vocab_size);

// "model": a string, when given.
absl::Status ReadModel(const nlohmann::json& body, std::optional<std::string>* out);

// Default-value tests for UnsupportedField.
inline bool IsIntegerValue(const nlohmann::json& v, int64_t x) { return AsInteger(v) == x; }
inline bool IsFalse(const nlohmann::json& v) { return v.is_boolean() && !v.get<bool>(); }
inline bool IsEmptyContainer(const nlohmann::json& v) {
  return (v.is_object() || v.is_array()) && v.empty();
}

// A known field whose effect we cannot honour yet: accepted only at its default value.
struct UnsupportedField {
  absl::string_view name;
  bool (*is_default)(const nlohmann::json&);
};
// The 400 for the first of `fields` set to anything but its default.
absl::Status CheckUnsupportedFields(const nlohmann::json& body,
                                    const std::vector<UnsupportedField>& fields);

}  // namespace moeserve::proto

#endif  // MOESERVE_PROTO_REQUEST_FIELDS_H_
