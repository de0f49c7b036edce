#include "server/tokenize_routes.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/json_util.h"
#include "proto/request_fields.h"
#include "proto/tokenize.h"
#include "server/chat_routes.h"
#include "server/errors.h"
#include "server/request_common.h"

namespace moeserve {

HttpResponse TokenizeHandler::Tokenize(const HttpRequest& http) const {
  absl::StatusOr<nlohmann::json> body = proto::ParseJson(http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  absl::StatusOr<proto::TokenizeRequest> request = proto::ParseTokenizeRequest(*body);
  if (!request.ok()) return ErrorResponse(request.status());
  if (absl::Status model = CheckModel(request->model, model_); !model.ok()) {
    return ErrorResponse(model);
  }
  std::vector<int32_t> tokens;
  if (request->prompt.has_value()) {
    tokens = EncodeText(engine_->tokenizer(), *request->prompt, request->add_special_tokens);
  } else {
    absl::StatusOr<std::vector<int32_t>> chat =
        BuildChatPrompt(*engine_, request->messages, request->add_generation_prompt);
    if (!chat.ok()) return ErrorResponse(chat.status());
    tokens = *std::move(chat);
  }
  HttpResponse response;
  response.body = proto::DumpJson(proto::TokenizeResponseJson(tokens, model_.max_model_len));
  return response;
}

HttpResponse TokenizeHandler::Detokenize(const HttpRequest& http) const {
  absl::StatusOr<nlohmann::json> body = proto::ParseJson(http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  absl::StatusOr<proto::DetokenizeRequest> request = proto::ParseDetokenizeRequest(*body);
  if (!request.ok()) return ErrorResponse(request.status());
  if (absl::Status model = CheckModel(request->model, model_); !model.ok()) {
    return ErrorResponse(model);
  }
  if (absl::Status ids =
          proto::CheckTokenIdsInRange(request->tokens, "tokens", engine_->model_info().vocab_size);
      !ids.ok()) {
    return ErrorResponse(ids);
  }
  HttpResponse response;
  response.body = proto::DumpJson(proto::DetokenizeResponseJson(
      engine_->tokenizer().Decode(request->tokens, /*skip_special=*/false)));
  return response;
}

void RegisterTokenizeRoutes(const Engine* engine, const ServedModel& model, HttpServer* server) {
  auto handler = std::make_shared<const TokenizeHandler>(engine, model);
  server->Route("POST", "/tokenize",
                [handler](const HttpRequest& request) { return handler->Tokenize(request); });
  server->Route("POST", "/detokenize",
                [handler](const HttpRequest& request) { return handler->Detokenize(request); });
}

}  // namespace moeserve
