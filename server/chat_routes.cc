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

namespace moeserve {
namespace {

constexpr char kSystemFingerprint[] = "fp_moeserve_0.1.0";

std::string NewCompletionId() {
  thread_local absl::BitGen bitgen;
  return absl::StrFormat("chatcmpl-%016x%016x", absl::Uniform<uint64_t>(bitgen),
                         absl::Uniform<uint64_t>(bitgen));
}

// The prompt's token ids: the rendered conversation, special tokens parsed, BOS in front
// when the model wants one and the template did not already write it (Llama 3 templates
// start with {{ bos_token }}; a second BOS would change the output).
absl::StatusOr<std::vector<int32_t>> BuildPrompt(const Engine& engine,
                                                 const proto::ChatCompletionRequest& request) {
  std::vector<ChatMessage> messages;
  messages.reserve(request.messages.size());
  for (const proto::ChatMessageParam& message : request.messages) {
    messages.push_back(ChatMessage{message.role, message.content});
  }
  absl::StatusOr<std::string> prompt =
      engine.chat_template().Render(messages, /*add_generation_prompt=*/true);
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

// The tokens to generate: as asked, or until the context is full (as vLLM does), with
// OpenAI's message when the context cannot hold them.
absl::StatusOr<int32_t> ResolveMaxTokens(std::optional<int32_t> requested, int64_t prompt_len,
                                         int64_t max_model_len) {
  if (requested.has_value()) {
    if (prompt_len + *requested > max_model_len) {
      return proto::InvalidFieldError(
          "messages",
          absl::StrFormat("This model's maximum context length is %d tokens. However, you "
                          "requested %d tokens (%d in the messages, %d in the completion). "
                          "Please reduce the length of the messages or completion.",
                          max_model_len, prompt_len + *requested, prompt_len, *requested));
    }
    return *requested;
  }
  if (prompt_len >= max_model_len) {
    return proto::InvalidFieldError(
        "messages",
        absl::StrFormat("This model's maximum context length is %d tokens. However, your "
                        "messages resulted in %d tokens, which leaves no room for the "
                        "completion. Please reduce the length of the messages.",
                        max_model_len, prompt_len));
  }
  return static_cast<int32_t>(max_model_len - prompt_len);
}

// A token as OpenAI's logprobs show it: its text (U+FFFD for bytes that are only part of a
// UTF-8 character; control tokens by their literal text) and its raw bytes.
void DescribeToken(const Tokenizer& tokenizer, int32_t id, std::string* text, std::string* bytes) {
  *bytes = tokenizer.TokenBytes(id);
  text->clear();
  const size_t taken = TakeCompleteUtf8(*bytes, text);
  if (taken < bytes->size()) *text += "\xEF\xBF\xBD";
}

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

// Aborts the request when it goes out of scope before its final output was taken: the
// client is gone or the server stops, and nobody will read the rest.
class AbortUnlessFinished {
 public:
  explicit AbortUnlessFinished(std::shared_ptr<RequestHandle> handle)
      : handle_(std::move(handle)) {}
  ~AbortUnlessFinished() {
    if (!finished_) handle_->Abort();
  }
  AbortUnlessFinished(const AbortUnlessFinished&) = delete;
  AbortUnlessFinished& operator=(const AbortUnlessFinished&) = delete;

  RequestHandle& handle() { return *handle_; }
  void set_finished() { finished_ = true; }

 private:
  std::shared_ptr<RequestHandle> handle_;
  bool finished_ = false;
};

HttpResponse ClientGoneResponse() {
  return ErrorResponse(absl::UnavailableError(
      "The request was aborted: the client disconnected or the server is shutting down."));
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
  int32_t num_finished = 0;
  proto::Usage usage{prompt_tokens, 0};
  // The client is checked every poll_interval whether or not outputs keep coming: tokens
  // may arrive faster than that, and a client that left must not keep its generation.
  absl::Time next_check = absl::Now() + poll_interval;
  while (num_finished < n) {
    std::optional<RequestOutput> output = request.handle().Next(poll_interval);
    if (!output.has_value() || absl::Now() >= next_check) {
      if (!http.client_connected()) return ClientGoneResponse();
      next_check = absl::Now() + poll_interval;
    }
    if (!output.has_value()) continue;
    const int32_t i = output->index;
    CHECK(i >= 0 && i < n);
    choices[i].content += output->text_delta;
    for (TokenLogprob& lp : output->logprobs) token_logprobs[i].push_back(std::move(lp));
    if (!output->finished()) continue;
    if (!output->error.ok()) return ErrorResponse(output->error);
    ++num_finished;
    usage.completion_tokens += output->completion_tokens;
    choices[i].finish_reason = FinishReasonName(output->finish_reason);
    // Asked-for logprobs of a completion with no tokens (aborted) are an empty list.
    if (!token_logprobs[i].empty()) {
      choices[i].logprobs = LogprobsOf(tokenizer, token_logprobs[i]);
    } else if (logprobs) {
      choices[i].logprobs = proto::ChatLogprobsJson({});
    }
  }
  request.set_finished();
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

HttpResponse ChatCompletionHandler::Handle(const HttpRequest& http) const {
  absl::StatusOr<nlohmann::json> body = proto::ParseJson(http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  absl::StatusOr<proto::ChatCompletionRequest> request = proto::ParseChatCompletionRequest(*body);
  if (!request.ok()) return ErrorResponse(request.status());

  if (request->model.has_value() && *request->model != model_.name) {
    return ErrorResponse(proto::WithErrorCode(
        proto::WithParam(
            absl::NotFoundError(absl::StrCat("The model `", *request->model, "` does not exist.")),
            "model"),
        "model_not_found"));
  }

  if (absl::Status vocab =
          proto::CheckTokenIdsInVocabulary(*request, engine_->model_info().vocab_size);
      !vocab.ok()) {
    return ErrorResponse(vocab);
  }
  absl::StatusOr<std::vector<int32_t>> prompt = BuildPrompt(*engine_, *request);
  if (!prompt.ok()) return ErrorResponse(prompt.status());
  const auto prompt_tokens = static_cast<int32_t>(prompt->size());
  absl::StatusOr<int32_t> max_tokens =
      ResolveMaxTokens(request->max_tokens, prompt_tokens, model_.max_model_len);
  if (!max_tokens.ok()) return ErrorResponse(max_tokens.status());

  proto::CompletionMeta meta;
  meta.id = NewCompletionId();
  meta.created = absl::ToUnixSeconds(absl::Now());
  meta.model = model_.name;
  meta.system_fingerprint = kSystemFingerprint;

  Request engine_request;
  engine_request.id = meta.id;
  engine_request.prompt_token_ids = *std::move(prompt);
  engine_request.sampling.temperature = request->temperature;
  engine_request.sampling.top_p = request->top_p;
  engine_request.sampling.top_k = request->top_k;
  engine_request.sampling.seed = request->seed;
  engine_request.sampling.n = request->n;
  engine_request.sampling.max_tokens = *max_tokens;
  engine_request.sampling.ignore_eos = request->ignore_eos;
  engine_request.sampling.min_p = request->min_p;
  engine_request.sampling.presence_penalty = request->presence_penalty;
  engine_request.sampling.frequency_penalty = request->frequency_penalty;
  engine_request.sampling.repetition_penalty = request->repetition_penalty;
  engine_request.sampling.logit_bias = request->logit_bias;
  engine_request.sampling.stop = request->stop;
  engine_request.sampling.stop_token_ids = request->stop_token_ids;
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
  HttpResponse response;
  response.content_type = "text/event-stream";
  response.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
  response.stream = std::make_shared<HttpStream>();
  response.stream->next = [stream](std::string* out) { return stream->Next(out); };
  response.stream->on_client_gone = [stream] { stream->Abort(); };
  return response;
}

void RegisterChatRoutes(Engine* engine, const ServedModel& model, HttpServer* server) {
  auto handler = std::make_shared<const ChatCompletionHandler>(engine, model);
  server->Route("POST", "/v1/chat/completions",
                [handler](const HttpRequest& request) { return handler->Handle(request); });
}

}  // namespace moeserve
