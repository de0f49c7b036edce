#include "server/request_common.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "engine/detokenizer.h"
#include "proto/error_body.h"
#include "server/errors.h"

namespace moeserve {

std::string NewCompletionId(absl::string_view prefix) {
  thread_local absl::BitGen bitgen;
  return absl::StrFormat("%s-%016x%016x", prefix, absl::Uniform<uint64_t>(bitgen),
                         absl::Uniform<uint64_t>(bitgen));
}

absl::Status CheckModel(const std::optional<std::string>& requested, const ServedModel& model) {
  if (!requested.has_value() || *requested == model.name) return absl::OkStatus();
  return proto::WithErrorCode(proto::WithParam(absl::NotFoundError(absl::StrCat(
                                                   "The model `", *requested, "` does not exist.")),
                                               "model"),
                              "model_not_found");
}

absl::StatusOr<int32_t> ResolveMaxTokens(std::optional<int32_t> requested, int64_t prompt_len,
                                         int64_t max_model_len, absl::string_view field) {
  if (requested.has_value()) {
    if (prompt_len + *requested > max_model_len) {
      return proto::InvalidFieldError(
          field, absl::StrFormat("This model's maximum context length is %d tokens. However, you "
                                 "requested %d tokens (%d in the %s, %d in the completion). "
                                 "Please reduce the length of the %s or completion.",
                                 max_model_len, prompt_len + *requested, prompt_len, field,
                                 *requested, field));
    }
    return *requested;
  }
  if (prompt_len >= max_model_len) {
    return proto::InvalidFieldError(
        field, absl::StrFormat("This model's maximum context length is %d tokens. However, your "
                               "%s resulted in %d tokens, which leaves no room for the "
                               "completion. Please reduce the length of the %s.",
                               max_model_len, field, prompt_len, field));
  }
  return static_cast<int32_t>(max_model_len - prompt_len);
}

SamplingParams ToSamplingParams(const proto::SamplingFields& fields) {
  SamplingParams sampling;
  sampling.temperature = fields.temperature;
  sampling.top_p = fields.top_p;
  sampling.top_k = fields.top_k;
  sampling.seed = fields.seed;
  sampling.n = fields.n;
  sampling.ignore_eos = fields.ignore_eos;
  sampling.min_p = fields.min_p;
  sampling.presence_penalty = fields.presence_penalty;
  sampling.frequency_penalty = fields.frequency_penalty;
  sampling.repetition_penalty = fields.repetition_penalty;
  sampling.logit_bias = fields.logit_bias;
  sampling.stop = fields.stop;
  sampling.stop_token_ids = fields.stop_token_ids;
  return sampling;
}

std::vector<int32_t> EncodeText(const Tokenizer& tokenizer, std::string_view text,
                                bool add_special_tokens) {
  std::vector<int32_t> ids = tokenizer.Encode(text, /*parse_special=*/true);
  if (add_special_tokens && tokenizer.add_bos_token() && tokenizer.bos_id() >= 0) {
    ids.insert(ids.begin(), tokenizer.bos_id());
  }
  return ids;
}

void DescribeToken(const Tokenizer& tokenizer, int32_t id, std::string* text, std::string* bytes) {
  *bytes = tokenizer.TokenBytes(id);
  text->clear();
  const size_t taken = TakeCompleteUtf8(*bytes, text);
  if (taken < bytes->size()) *text += "\xEF\xBF\xBD";
}

std::optional<HttpResponse> CollectOutputs(const HttpRequest& http, AbortUnlessFinished& request,
                                           absl::Duration poll_interval,
                                           absl::FunctionRef<void(RequestOutput&)> on_output) {
  const int32_t n = request.handle().num_choices();
  int32_t num_finished = 0;
  absl::Time next_check = absl::Now() + poll_interval;
  while (num_finished < n) {
    std::optional<RequestOutput> output = request.handle().Next(poll_interval);
    if (!output.has_value() || absl::Now() >= next_check) {
      if (!http.client_connected()) return ClientGoneResponse();
      next_check = absl::Now() + poll_interval;
    }
    if (!output.has_value()) continue;
    CHECK(output->index >= 0 && output->index < n);
    if (!output->error.ok()) return ErrorResponse(output->error);
    num_finished += output->finished();
    on_output(*output);
  }
  request.set_finished();
  return std::nullopt;
}

HttpResponse ClientGoneResponse() {
  return ErrorResponse(absl::UnavailableError(
      "The request was aborted: the client disconnected or the server is shutting down."));
}

}  // namespace moeserve
