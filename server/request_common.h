// What the generation routes (/v1/chat/completions, /v1/completions) share: ids, the model
// check, the max_tokens resolution, the sampling parameters, token text for logprobs, and
// the guard that aborts a request nobody will read.
#ifndef MOESERVE_SERVER_REQUEST_COMMON_H_
#define MOESERVE_SERVER_REQUEST_COMMON_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/request.h"
#include "engine/request_handle.h"
#include "engine/tokenizer/tokenizer.h"
#include "proto/request_fields.h"
#include "server/http_server.h"
#include "server/model_routes.h"

namespace moeserve {

inline constexpr char kSystemFingerprint[] = "fp_moeserve_0.1.0";

// "<prefix>-" and 32 random hex digits, e.g. "chatcmpl-..." or "cmpl-...".
std::string NewCompletionId(absl::string_view prefix);

// The 404 (code model_not_found) when the request names a model we do not serve.
absl::Status CheckModel(const std::optional<std::string>& requested, const ServedModel& model);

// The tokens to generate: as asked, or until the context is full (as vLLM does), with
// OpenAI's message when the context cannot hold them. `field` ("messages", "prompt") names
// what the prompt came from, in the message and as the error's param.
absl::StatusOr<int32_t> ResolveMaxTokens(std::optional<int32_t> requested, int64_t prompt_len,
                                         int64_t max_model_len, absl::string_view field);

// The engine's sampling parameters for the request's fields (everything but max_tokens and
// logprobs, which the routes set).
SamplingParams ToSamplingParams(const proto::SamplingFields& fields);

// Token ids of `text` with special tokens written in it parsed (as Hugging Face tokenizers
// do), and BOS in front when add_special_tokens is set and the tokenizer adds one.
std::vector<int32_t> EncodeText(const Tokenizer& tokenizer, std::string_view text,
                                bool add_special_tokens);

// A token as OpenAI's logprobs show it: its text (U+FFFD for bytes that are only part of a
// UTF-8 character; control tokens by their literal text) and its raw bytes.
void DescribeToken(const Tokenizer& tokenizer, int32_t id, std::string* text, std::string* bytes);

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

// Pulls the outputs of `request` until the last one of every choice and hands each output
// without an error to `on_output`. The client is checked every poll_interval whether or
// not outputs keep coming (tokens may arrive faster than that, and a client that left
// must not keep its generation). nullopt once every choice finished (the request is then
// marked finished); otherwise the response to send instead: the client is gone, or an
// engine error.
std::optional<HttpResponse> CollectOutputs(const HttpRequest& http, AbortUnlessFinished& request,
                                           absl::Duration poll_interval,
                                           absl::FunctionRef<void(RequestOutput&)> on_output);

// A text/event-stream response that pulls its events from `stream` (a class with
// `bool Next(std::string* out)`, as HttpStream::next, and `void Abort()`, called when the
// client goes away).
template <typename Stream>
HttpResponse SseResponse(std::shared_ptr<Stream> stream) {
  HttpResponse response;
  response.content_type = "text/event-stream";
  response.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
  response.stream = std::make_shared<HttpStream>();
  response.stream->next = [stream](std::string* out) { return stream->Next(out); };
  response.stream->on_client_gone = [stream] { stream->Abort(); };
  return response;
}

// The answer for a request whose client went away (nobody reads it; logged as 503).
HttpResponse ClientGoneResponse();

}  // namespace moeserve

#endif  // MOESERVE_SERVER_REQUEST_COMMON_H_
