#include "server/completion_routes.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "engine/request.h"
#include "engine/request_handle.h"
#include "proto/completion.h"
#include "proto/error_body.h"
#include "proto/json_util.h"
#include "server/errors.h"
#include "server/request_common.h"

namespace moeserve {
namespace {

// One prompt, ready for the engine.
struct PreparedPrompt {
  std::vector<int32_t> token_ids;  // [prompt_len]
  std::string text;                // what echo prepends
  int32_t max_tokens = 0;
};

absl::StatusOr<PreparedPrompt> PreparePrompt(const Tokenizer& tokenizer,
                                             const proto::CompletionPrompt& prompt,
                                             int32_t max_tokens, int32_t max_model_len) {
  PreparedPrompt out;
  if (prompt.text.has_value()) {
    out.text = *prompt.text;
    out.token_ids = EncodeText(tokenizer, *prompt.text, /*add_special_tokens=*/true);
  } else {
    out.token_ids = prompt.token_ids;
    out.text = tokenizer.Decode(out.token_ids, /*skip_special=*/false);
  }
  if (out.token_ids.empty()) {
    return proto::InvalidFieldError("prompt", "'prompt' must not be empty");
  }
  absl::StatusOr<int32_t> resolved = ResolveMaxTokens(
      max_tokens, static_cast<int64_t>(out.token_ids.size()), max_model_len, "prompt");
  if (!resolved.ok()) return resolved.status();
  out.max_tokens = *resolved;
  return out;
}

// The completions "logprobs" object for the tokens of one output, continuing at
// `text_offset`; null when none were asked for.
nlohmann::json LogprobsOf(const Tokenizer& tokenizer, const std::vector<TokenLogprob>& logprobs,
                          int64_t* text_offset) {
  if (logprobs.empty()) return nullptr;
  std::vector<proto::CompletionTokenLogprob> tokens(logprobs.size());
  std::string bytes;
  for (size_t i = 0; i < logprobs.size(); ++i) {
    DescribeToken(tokenizer, logprobs[i].token, &tokens[i].token, &bytes);
    tokens[i].logprob = logprobs[i].logprob;
    for (const TopLogprob& alt : logprobs[i].top) {
      std::string text;
      DescribeToken(tokenizer, alt.token, &text, &bytes);
      tokens[i].top.emplace_back(std::move(text), alt.logprob);
    }
  }
  return proto::CompletionLogprobsJson(tokens, text_offset);
}

// The submitted requests of one completion: one per prompt, n choices each.
struct Submitted {
  std::vector<std::unique_ptr<AbortUnlessFinished>> requests;  // [num_prompts]
  std::vector<std::string> echo_texts;                         // [num_prompts]; empty without echo
  int32_t n = 1;
  int32_t prompt_tokens = 0;  // summed over the prompts
  bool logprobs = false;
};

// Pulls outputs until the last one of every choice of every prompt and answers with one
// text_completion body. An engine error answers with the error (the rest are aborted).
HttpResponse Complete(const HttpRequest& http, const Tokenizer& tokenizer, Submitted submitted,
                      const proto::CompletionMeta& meta, absl::Duration poll_interval) {
  const int32_t n = submitted.n;
  const auto num_prompts = static_cast<int32_t>(submitted.requests.size());
  std::vector<proto::CompletionChoice> choices(static_cast<size_t>(num_prompts) * n);
  proto::Usage usage{submitted.prompt_tokens, 0};
  for (int32_t p = 0; p < num_prompts; ++p) {
    std::vector<std::vector<TokenLogprob>> token_logprobs(n);
    for (int32_t i = 0; i < n; ++i) choices[p * n + i].text = submitted.echo_texts[p];
    std::optional<HttpResponse> failed =
        CollectOutputs(http, *submitted.requests[p], poll_interval, [&](RequestOutput& output) {
          const int32_t i = output.index;
          proto::CompletionChoice& choice = choices[p * n + i];
          choice.text += output.text_delta;
          for (TokenLogprob& lp : output.logprobs) token_logprobs[i].push_back(std::move(lp));
          if (!output.finished()) return;
          usage.completion_tokens += output.completion_tokens;
          choice.finish_reason = FinishReasonName(output.finish_reason);
          if (submitted.logprobs) {
            int64_t text_offset = proto::CountCodePoints(submitted.echo_texts[p]);
            choice.logprobs = token_logprobs[i].empty()
                                  ? proto::CompletionLogprobsJson({}, &text_offset)
                                  : LogprobsOf(tokenizer, token_logprobs[i], &text_offset);
          }
        });
    if (failed.has_value()) return *std::move(failed);
  }
  HttpResponse response;
  response.body = proto::DumpJson(proto::CompletionJson(meta, choices, usage));
  return response;
}

// One streamed completion: the echoed prompt of every choice first (with echo), then each
// choice's text chunks as its outputs arrive, its last one carrying its finish_reason,
// then the usage chunk (if asked for) once every choice finished, then [DONE]. An engine
// error ends the stream with an error event and aborts the rest.
class CompletionStream {
 public:
  CompletionStream(const Tokenizer* tokenizer, Submitted submitted,
                   proto::CompletionChunkBuilder chunks, bool include_usage,
                   absl::Duration poll_interval)
      : tokenizer_(tokenizer),
        submitted_(std::move(submitted)),
        num_prompts_(static_cast<int32_t>(submitted_.requests.size())),
        chunks_(std::move(chunks)),
        usage_{submitted_.prompt_tokens, 0},
        include_usage_(include_usage),
        // With several prompts each is polled in turn, briefly, so none waits on another.
        wait_(num_prompts_ == 1 ? poll_interval : std::min(poll_interval, absl::Milliseconds(5))),
        finished_(num_prompts_, 0),
        text_offsets_(static_cast<size_t>(num_prompts_) * submitted_.n, 0) {
    for (int32_t p = 0; p < num_prompts_; ++p) {
      for (int32_t i = 0; i < submitted_.n; ++i) {
        text_offsets_[p * submitted_.n + i] = proto::CountCodePoints(submitted_.echo_texts[p]);
      }
    }
  }

  void Abort() {
    for (auto& request : submitted_.requests) request->handle().Abort();
  }

  bool Next(std::string* out) {
    const int32_t n = submitted_.n;
    if (!echo_sent_) {
      echo_sent_ = true;
      for (int32_t p = 0; p < num_prompts_; ++p) {
        if (submitted_.echo_texts[p].empty()) continue;
        for (int32_t i = 0; i < n; ++i) {
          *out += proto::SseEvent(chunks_.TextChunk(p * n + i, submitted_.echo_texts[p]));
        }
      }
      if (!out->empty()) return true;
    }
    // The next prompt with choices still running, from the cursor on.
    while (finished_[cursor_] == n) cursor_ = (cursor_ + 1) % num_prompts_;
    const int32_t p = cursor_;
    cursor_ = (cursor_ + 1) % num_prompts_;
    AbortUnlessFinished& request = *submitted_.requests[p];
    std::optional<RequestOutput> output = request.handle().Next(wait_);
    if (!output.has_value()) return true;
    CHECK(output->index >= 0 && output->index < n);
    const int32_t index = p * n + output->index;
    const nlohmann::json logprobs =
        LogprobsOf(*tokenizer_, output->logprobs, &text_offsets_[index]);
    const std::string finish_reason =
        output->finished() && output->error.ok() ? FinishReasonName(output->finish_reason) : "";
    // A token whose text is still held back (part of a character, or perhaps of a stop
    // string) still sends its logprobs, with empty text.
    if (!output->text_delta.empty() || !logprobs.is_null() || !finish_reason.empty()) {
      *out +=
          proto::SseEvent(chunks_.TextChunk(index, output->text_delta, logprobs, finish_reason));
    }
    if (!output->finished()) return true;
    if (!output->error.ok()) {
      absl::StrAppend(out, "data: ", ErrorBody(output->error), "\n\n");
      Abort();  // the other choices and prompts, if any are still running
      return false;
    }
    usage_.completion_tokens += output->completion_tokens;
    if (++finished_[p] == n) request.set_finished();
    if (++num_finished_ < num_prompts_ * n) return true;
    if (include_usage_) *out += proto::SseEvent(chunks_.UsageChunk(usage_));
    *out += proto::kSseDone;
    return false;
  }

 private:
  const Tokenizer* const tokenizer_;
  Submitted submitted_;
  const int32_t num_prompts_;
  const proto::CompletionChunkBuilder chunks_;
  proto::Usage usage_;  // the prompts' tokens, completion tokens of the finished choices
  const bool include_usage_;
  const absl::Duration wait_;
  std::vector<int32_t> finished_;      // [num_prompts]: finished choices
  std::vector<int64_t> text_offsets_;  // [num_prompts * n]: characters sent so far
  bool echo_sent_ = false;
  int32_t cursor_ = 0;
  int32_t num_finished_ = 0;
};

}  // namespace

HttpResponse CompletionHandler::Handle(const HttpRequest& http) const {
  absl::StatusOr<nlohmann::json> body = proto::ParseJson(http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  absl::StatusOr<proto::CompletionRequest> request = proto::ParseCompletionRequest(*body);
  if (!request.ok()) return ErrorResponse(request.status());
  if (absl::Status model = CheckModel(request->model, model_); !model.ok()) {
    return ErrorResponse(model);
  }
  const int32_t vocab_size = engine_->model_info().vocab_size;
  if (absl::Status vocab = proto::CheckTokenIdsInVocabulary(*request, vocab_size); !vocab.ok()) {
    return ErrorResponse(vocab);
  }
  if (absl::Status ids = proto::CheckPromptTokenIds(*request, vocab_size); !ids.ok()) {
    return ErrorResponse(ids);
  }

  const Tokenizer& tokenizer = engine_->tokenizer();
  std::vector<PreparedPrompt> prompts;
  prompts.reserve(request->prompts.size());
  for (const proto::CompletionPrompt& prompt : request->prompts) {
    absl::StatusOr<PreparedPrompt> prepared =
        PreparePrompt(tokenizer, prompt, request->max_tokens, model_.max_model_len);
    if (!prepared.ok()) return ErrorResponse(prepared.status());
    prompts.push_back(*std::move(prepared));
  }

  proto::CompletionMeta meta;
  meta.id = NewCompletionId("cmpl");
  meta.created = absl::ToUnixSeconds(absl::Now());
  meta.model = model_.name;
  meta.system_fingerprint = kSystemFingerprint;

  Submitted submitted;
  submitted.n = request->n;
  submitted.logprobs = request->logprobs.has_value();
  for (size_t p = 0; p < prompts.size(); ++p) {
    Request engine_request;
    // vLLM names the engine requests of a batch of prompts "<id>-<prompt index>".
    engine_request.id = prompts.size() == 1 ? meta.id : absl::StrCat(meta.id, "-", p);
    submitted.prompt_tokens += static_cast<int32_t>(prompts[p].token_ids.size());
    submitted.echo_texts.push_back(request->echo ? prompts[p].text : "");
    engine_request.prompt_token_ids = std::move(prompts[p].token_ids);
    engine_request.sampling = ToSamplingParams(*request);
    engine_request.sampling.max_tokens = prompts[p].max_tokens;
    engine_request.sampling.logprobs = request->logprobs.has_value();
    engine_request.sampling.top_logprobs = request->logprobs.value_or(0);
    // A failure aborts the prompts already submitted (their guards go out of scope).
    absl::StatusOr<std::shared_ptr<RequestHandle>> handle =
        engine_->Submit(std::move(engine_request));
    if (!handle.ok()) return ErrorResponse(handle.status());
    submitted.requests.push_back(std::make_unique<AbortUnlessFinished>(*std::move(handle)));
  }

  if (!request->stream) {
    return Complete(http, tokenizer, std::move(submitted), meta, poll_interval_);
  }
  auto stream = std::make_shared<CompletionStream>(
      &tokenizer, std::move(submitted), proto::CompletionChunkBuilder(meta, request->include_usage),
      request->include_usage, poll_interval_);
  return SseResponse(std::move(stream));
}

void RegisterCompletionRoutes(Engine* engine, const ServedModel& model, HttpServer* server) {
  auto handler = std::make_shared<const CompletionHandler>(engine, model);
  server->Route("POST", "/v1/completions",
                [handler](const HttpRequest& request) { return handler->Handle(request); });
}

}  // namespace moeserve
