// What a client asks of the engine and what the engine sends back, as plain data.
// Requests are built by the server, handed to Engine::Submit and owned by the engine
// thread from then on; outputs travel back through the request's RequestHandle.
#ifndef MOESERVE_ENGINE_REQUEST_H_
#define MOESERVE_ENGINE_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace moeserve {

struct SamplingParams {
  float temperature = 1.0f;  // 0 means greedy
  float top_p = 1.0f;        // (0, 1]
  int32_t top_k = 0;         // 0 disables
  std::optional<uint64_t> seed;
  int32_t max_tokens = 16;  // generated tokens, >= 1
  bool ignore_eos = false;

  absl::Status Validate() const;
};

struct Request {
  std::string id;
  std::vector<int32_t> prompt_token_ids;  // [prompt_len], BOS included when the model wants it
  SamplingParams sampling;
};

enum class FinishReason {
  kNone,    // still running
  kStop,    // an end-of-sequence token
  kLength,  // max_tokens or the model's context length
  kAbort,   // aborted by the client or by shutdown
};

// "stop", "length", "abort"; "" for kNone.
const char* FinishReasonName(FinishReason reason);

// One step's worth of output for one request. The last output of a request has
// finish_reason != kNone (or a non-OK error) and nothing follows it.
struct RequestOutput {
  std::string text_delta;          // new text; never ends inside a UTF-8 character
  std::vector<int32_t> token_ids;  // new tokens
  FinishReason finish_reason = FinishReason::kNone;
  absl::Status error;              // an engine failure for this request
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;   // generated so far, in total

  bool finished() const { return finish_reason != FinishReason::kNone || !error.ok(); }
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_REQUEST_H_
