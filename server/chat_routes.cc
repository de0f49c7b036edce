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
#include "common/status.h"
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

// Pulls outputs until the last one and answers with one chat.completion body.
HttpResponse Complete(const HttpRequest& http, std::shared_ptr<RequestHandle> handle,
                      const proto::CompletionMeta& meta, int32_t prompt_tokens,
                      absl::Duration poll_interval) {
  AbortUnlessFinished request(std::move(handle));
  std::string text;
  // The client is checked every poll_interval whether or not outputs keep coming: tokens
  // may arrive faster than that, and a client that left must not keep its generation.
  absl::Time next_check = absl::Now() + poll_interval;
  while (true) {
    std::optional<RequestOutput> output = request.handle().Next(poll_interval);
    if (!output.has_value() || absl::Now() >= next_check) {
      if (!http.client_connected()) return ClientGoneResponse();
      next_check = absl::Now() + poll_interval;
    }
    if (!output.has_value()) continue;
    text += output->text_delta;
    if (!output->finished()) continue;
    request.set_finished();
    if (!output->error.ok()) return ErrorResponse(output->error);
    HttpResponse response;
    response.body = proto::DumpJson(
        proto::ChatCompletionJson(meta, text, FinishReasonName(output->finish_reason),
                                  proto::Usage{prompt_tokens, output->completion_tokens}));
    return response;
  }
}

// One streamed completion: role chunk, content chunks as outputs arrive, finish chunk,
// optional usage chunk, [DONE]. An engine error ends the stream with an error event.
class ChatStream {
 public:
  ChatStream(std::shared_ptr<RequestHandle> handle, proto::ChatCompletionChunkBuilder chunks,
             int32_t prompt_tokens, bool include_usage, absl::Duration poll_interval)
      : request_(std::move(handle)),
        chunks_(std::move(chunks)),
        prompt_tokens_(prompt_tokens),
        include_usage_(include_usage),
        poll_interval_(poll_interval) {}

  void Abort() { request_.handle().Abort(); }

  bool Next(std::string* out) {
    if (!role_sent_) {
      role_sent_ = true;
      *out += proto::SseEvent(chunks_.RoleChunk());
      return true;
    }
    std::optional<RequestOutput> output = request_.handle().Next(poll_interval_);
    if (!output.has_value()) return true;
    if (!output->text_delta.empty()) {
      *out += proto::SseEvent(chunks_.ContentChunk(output->text_delta));
    }
    if (!output->finished()) return true;
    request_.set_finished();
    if (!output->error.ok()) {
      absl::StrAppend(out, "data: ", ErrorBody(output->error), "\n\n");
      return false;
    }
    *out += proto::SseEvent(chunks_.FinishChunk(FinishReasonName(output->finish_reason)));
    if (include_usage_) {
      *out += proto::SseEvent(
          chunks_.UsageChunk(proto::Usage{prompt_tokens_, output->completion_tokens}));
    }
    *out += proto::kSseDone;
    return false;
  }

 private:
  AbortUnlessFinished request_;
  const proto::ChatCompletionChunkBuilder chunks_;
  const int32_t prompt_tokens_;
  const bool include_usage_;
  const absl::Duration poll_interval_;
  bool role_sent_ = false;
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
  engine_request.sampling.max_tokens = *max_tokens;
  engine_request.sampling.ignore_eos = request->ignore_eos;
  absl::StatusOr<std::shared_ptr<RequestHandle>> handle =
      engine_->Submit(std::move(engine_request));
  if (!handle.ok()) return ErrorResponse(handle.status());

  if (!request->stream) {
    return Complete(http, *std::move(handle), meta, prompt_tokens, poll_interval_);
  }
  auto stream = std::make_shared<ChatStream>(
      *std::move(handle), proto::ChatCompletionChunkBuilder(meta, request->include_usage),
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
