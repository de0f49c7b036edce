#include "server/chat_routes.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/detokenizer.h"
#include "engine/request.h"
#include "engine/request_handle.h"
#include "proto/chat_completion.h"
#include "proto/error_body.h"
#include "proto/json_util.h"
#include "server/errors.h"
#include "server/request_common.h"

namespace moeserve {
namespace {

// The chat "logprobs" object for the tokens of one output; null when none were asked for.
nlohmann::json LogprobsOf(const Tokenizer& tokenizer, const std::vector<TokenLogprob>& logprobs) {
  if (logprobs.empty()) return nullptr;
  std::vector<proto::ChatTokenLogprob> content(logprobs.size());
  for (size_t i = 0; i < logprobs.size(); ++i) {
    proto::ChatTokenLogprob& entry = content[i];
    DescribeToken(tokenizer, logprobs[i].token, &entry.token, &entry.bytes);
    entry.logprob = logprobs[i].logprob;
    entry.top_logprobs.resize(logprobs[i].top.size());
    for (size_t j = 0; j < logprobs[i].top.size(); ++j) {
      proto::ChatTopLogprob& alt = entry.top_logprobs[j];
      DescribeToken(tokenizer, logprobs[i].top[j].token, &alt.token, &alt.bytes);
      alt.logprob = logprobs[i].top[j].logprob;
    }
  }
  return proto::ChatLogprobsJson(content);
}

// Pulls outputs until the last one of every choice and answers with one chat.completion
// body. An engine error in any choice answers with the error (the others are aborted).
HttpResponse Complete(const HttpRequest& http, const Tokenizer& tokenizer,
                      std::shared_ptr<RequestHandle> handle, const proto::CompletionMeta& meta,
                      int32_t prompt_tokens, bool logprobs, absl::Duration poll_interval) {
  AbortUnlessFinished request(std::move(handle));
  const int32_t n = request.handle().num_choices();
  std::vector<proto::ChatChoice> choices(n);
  std::vector<std::vector<TokenLogprob>> token_logprobs(n);
  proto::Usage usage{prompt_tokens, 0};
  std::optional<HttpResponse> failed =
      CollectOutputs(http, request, poll_interval, [&](RequestOutput& output) {
        const int32_t i = output.index;
        choices[i].content += output.text_delta;
        for (TokenLogprob& lp : output.logprobs) token_logprobs[i].push_back(std::move(lp));
        if (!output.finished()) return;
        usage.completion_tokens += output.completion_tokens;
        choices[i].finish_reason = FinishReasonName(output.finish_reason);
        // Asked-for logprobs of a completion with no tokens (aborted) are an empty list.
        if (!token_logprobs[i].empty()) {
          choices[i].logprobs = LogprobsOf(tokenizer, token_logprobs[i]);
        } else if (logprobs) {
          choices[i].logprobs = proto::ChatLogprobsJson({});
        }
      });
  if (failed.has_value()) return *std::move(failed);
  HttpResponse response;
  response.body = proto::DumpJson(proto::ChatCompletionJson(meta, choices, usage));
  return response;
}

// One streamed completion: a role chunk for every choice, then each choice's content
// chunks as its outputs arrive and its finish chunk, then the usage chunk (if asked for)
// once every choice finished, then [DONE]. An engine error ends the stream with an error
// event and aborts the other choices.
class ChatStream {
 public:
  ChatStream(const Tokenizer* tokenizer, std::shared_ptr<RequestHandle> handle,
             proto::ChatCompletionChunkBuilder chunks, int32_t prompt_tokens, bool include_usage,
             absl::Duration poll_interval)
      : tokenizer_(tokenizer),
        request_(std::move(handle)),
        num_choices_(request_.handle().num_choices()),
        chunks_(std::move(chunks)),
        usage_{prompt_tokens, 0},
        include_usage_(include_usage),
        poll_interval_(poll_interval) {}

  void Abort() { request_.handle().Abort(); }

  bool Next(std::string* out) {
    if (!roles_sent_) {
      roles_sent_ = true;
      for (int32_t i = 0; i < num_choices_; ++i) *out += proto::SseEvent(chunks_.RoleChunk(i));
      return true;
    }
    std::optional<RequestOutput> output = request_.handle().Next(poll_interval_);
    if (!output.has_value()) return true;
    const int32_t index = output->index;
    CHECK(index >= 0 && index < num_choices_);
    // A token whose text is still held back (part of a character, or perhaps of a stop
    // string) still sends its logprobs, with empty content.
    if (!output->text_delta.empty() || !output->logprobs.empty()) {
      *out += proto::SseEvent(chunks_.ContentChunk(index, output->text_delta,
                                                   LogprobsOf(*tokenizer_, output->logprobs)));
    }
    if (!output->finished()) return true;
    if (!output->error.ok()) {
      absl::StrAppend(out, "data: ", ErrorBody(output->error), "\n\n");
      Abort();  // the other choices, if any are still running
      return false;
    }
    *out += proto::SseEvent(chunks_.FinishChunk(index, FinishReasonName(output->finish_reason)));
    usage_.completion_tokens += output->completion_tokens;
    if (++num_finished_ < num_choices_) return true;
    request_.set_finished();
    if (include_usage_) *out += proto::SseEvent(chunks_.UsageChunk(usage_));
    *out += proto::kSseDone;
    return false;
  }

 private:
  const Tokenizer* const tokenizer_;
  AbortUnlessFinished request_;
  const int32_t num_choices_;
  const proto::ChatCompletionChunkBuilder chunks_;
  proto::Usage usage_;  // prompt tokens once, completion tokens of the finished choices
  const bool include_usage_;
  const absl::Duration poll_interval_;
  bool roles_sent_ = false;
  int32_t num_finished_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<int32_t>> BuildChatPrompt(
    const Engine& engine, const std::vector<proto::ChatMessageParam>& chat_messages,
    bool add_generation_prompt) {
  std::vector<ChatMessage> messages;
  messages.reserve(chat_messages.size());
  for (const proto::ChatMessageParam& message : chat_messages) {
    messages.push_back(ChatMessage{message.role, message.content});
  }
  absl::StatusOr<std::string> prompt =
      engine.chat_template().Render(messages, add_generation_prompt);
  if (!prompt.ok()) {
    // The template rejects conversations it cannot render (e.g. roles that do not
    // alternate): that is the client's messages, not the server.
    if (absl::IsInvalidArgument(prompt.status())) {
      return proto::WithParam(prompt.status(), "messages");
    }
    return prompt.status();
  }
  const Tokenizer& tokenizer = engine.tokenizer();
  std::vector<int32_t> ids = tokenizer.Encode(*prompt, /*parse_special=*/true);
  const int32_t bos = tokenizer.bos_id();
  if (tokenizer.add_bos_token() && bos >= 0 && (ids.empty() || ids.front() != bos)) {
    ids.insert(ids.begin(), bos);
  }
  return ids;
}

HttpResponse ChatCompletionHandler::Handle(const HttpRequest& http) const {
  absl::StatusOr<nlohmann::json> body = proto::ParseJson(http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  absl::StatusOr<proto::ChatCompletionRequest> request = proto::ParseChatCompletionRequest(*body);
  if (!request.ok()) return ErrorResponse(request.status());

  if (absl::Status model = CheckModel(request->model, model_); !model.ok()) {
    return ErrorResponse(model);
  }

  if (absl::Status vocab =
          proto::CheckTokenIdsInVocabulary(*request, engine_->model_info().vocab_size);
      !vocab.ok()) {
    return ErrorResponse(vocab);
  }
  absl::StatusOr<std::vector<int32_t>> prompt =
      BuildChatPrompt(*engine_, request->messages, /*add_generation_prompt=*/true);
  if (!prompt.ok()) return ErrorResponse(prompt.status());
  const auto prompt_tokens = static_cast<int32_t>(prompt->size());
  absl::StatusOr<int32_t> max_tokens =
      ResolveMaxTokens(request->max_tokens, prompt_tokens, model_.max_model_len, "messages");
  if (!max_tokens.ok()) return ErrorResponse(max_tokens.status());

  proto::CompletionMeta meta;
  meta.id = NewCompletionId("chatcmpl");
  meta.created = absl::ToUnixSeconds(absl::Now());
  meta.model = model_.name;
  meta.system_fingerprint = kSystemFingerprint;

  Request engine_request;
  engine_request.id = meta.id;
  engine_request.prompt_token_ids = *std::move(prompt);
  engine_request.sampling = ToSamplingParams(*request);
  engine_request.sampling.max_tokens = *max_tokens;
  engine_request.sampling.logprobs = request->logprobs;
  engine_request.sampling.top_logprobs = request->top_logprobs;
  absl::StatusOr<std::shared_ptr<RequestHandle>> handle =
      engine_->Submit(std::move(engine_request));
  if (!handle.ok()) return ErrorResponse(handle.status());

  if (!request->stream) {
    return Complete(http, engine_->tokenizer(), *std::move(handle), meta, prompt_tokens,
                    request->logprobs, poll_interval_);
  }
  auto stream =
      std::make_shared<ChatStream>(&engine_->tokenizer(), *std::move(handle),
                                   proto::ChatCompletionChunkBuilder(meta, request->include_usage),
                                   prompt_tokens, request->include_usage, poll_interval_);
  return SseResponse(std::move(stream));
}

void RegisterChatRoutes(Engine* engine, const ServedModel& model, HttpServer* server) {
  auto handler = std::make_shared<const ChatCompletionHandler>(engine, model);
  server->Route("POST", "/v1/chat/completions",
                [handler](const HttpRequest& request) { return handler->Handle(request); });
}

}  // namespace moeserve
