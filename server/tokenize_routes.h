// POST /tokenize and POST /detokenize (vLLM's extensions): the served model's tokenizer
// over HTTP. /tokenize takes a prompt (BOS added as the tokenizer wants unless
// "add_special_tokens" is false) or chat messages (rendered and tokenized exactly as
// /v1/chat/completions does, so "count" is the prompt_tokens a chat request would use).
#ifndef MOESERVE_SERVER_TOKENIZE_ROUTES_H_
#define MOESERVE_SERVER_TOKENIZE_ROUTES_H_

#include <utility>

#include "engine/engine.h"
#include "server/http_server.h"
#include "server/model_routes.h"

namespace moeserve {

class TokenizeHandler {
 public:
  // `engine` must outlive the handler.
  TokenizeHandler(const Engine* engine, ServedModel model)
      : engine_(engine), model_(std::move(model)) {}

  // Thread-safe.
  HttpResponse Tokenize(const HttpRequest& request) const;
  HttpResponse Detokenize(const HttpRequest& request) const;

 private:
  const Engine* const engine_;
  const ServedModel model_;
};

// Routes POST /tokenize and POST /detokenize to a TokenizeHandler.
void RegisterTokenizeRoutes(const Engine* engine, const ServedModel& model, HttpServer* server);

}  // namespace moeserve

#endif  // MOESERVE_SERVER_TOKENIZE_ROUTES_H_
