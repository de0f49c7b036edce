// What a client asks of the engine and what the engine sends back, as plain data.
// Requests are built by the server, handed to Engine::Submit and owned by the engine
// thread from then on; outputs travel back through the request's RequestHandle.
#ifndef MOESERVE_ENGINE_REQUEST_H_
#define MOESERVE_ENGINE_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace moeserve {

// Which distribution logprobs are reported from. vLLM v1's default (--logprobs-mode
// raw_logprobs) is the model's own: the log-softmax of the logits before logit_bias,
// penalties, temperature and filtering. kPenalized reports the log-softmax after
// logit_bias and the penalties but before temperature and top-k/top-p/min-p.
enum class LogprobsMode { kRaw, kPenalized };

// The sampling knobs of one request, with vLLM's semantics (vllm/sampling_params.py and
// vllm/v1/sample/sampler.py). Processing order: logit_bias is added to the logits, then
// the repetition penalty, then the frequency and presence penalties; greedy takes the
// argmax of the result, otherwise temperature, then min-p, top-k and top-p filter it.
struct SamplingParams {
  float temperature = 1.0f;  // 0 means greedy
  float top_p = 1.0f;        // (0, 1]
  int32_t top_k = 0;         // 0 disables
  // [0, 1]: drops tokens whose probability (after temperature) is below min_p times the
  // most likely token's; 0 disables.
  float min_p = 0.0f;
  // [-2, 2], OpenAI's penalties over the generated tokens only:
  // logit -= presence_penalty * (count > 0) + frequency_penalty * count.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // > 0, the CTRL / Hugging Face penalty over prompt and generated tokens alike:
  // logit > 0 ? logit / repetition_penalty : logit * repetition_penalty. 1 disables.
  float repetition_penalty = 1.0f;
  // (token id, bias in [-100, 100]) added to the logits before anything else. The ids
  // are checked against the vocabulary by Engine::Submit.
  std::vector<std::pair<int32_t, float>> logit_bias;
  // Non-empty strings that end generation when they appear in the text; the output stops
  // right before the earliest one (OpenAI's semantics: the stop string is not returned).
  std::vector<std::string> stop;
  // (vLLM extension) Token ids that end generation with finish reason "stop", whatever
  // ignore_eos says; the token's text is kept unless it is a special token (as vLLM).
  std::vector<int32_t> stop_token_ids;
  // With n > 1, choice i samples with seed + i; without a seed each choice draws its own.
  std::optional<uint64_t> seed;
  // Choices (independent completions of the same prompt), 1..kMaxChoices. Each is its own
  // sequence; siblings share the prompt's KV blocks through the prefix cache.
  int32_t n = 1;
  int32_t max_tokens = 16;  // generated tokens, >= 1
  bool ignore_eos = false;
  // Report the chosen token's logprob and the top_logprobs (0..20) most likely tokens.
  bool logprobs = false;
  int32_t top_logprobs = 0;
  LogprobsMode logprobs_mode = LogprobsMode::kRaw;

  absl::Status Validate() const;
  // Whether the logits need any processing before temperature (bias or penalties).
  bool HasLogitProcessing() const {
    return !logit_bias.empty() || presence_penalty != 0.0f || frequency_penalty != 0.0f ||
           repetition_penalty != 1.0f;
  }
};

// Most tokens a request may ask logprobs alternatives for (OpenAI's limit).
inline constexpr int32_t kMaxTopLogprobs = 20;
// Most choices one request may ask for (SamplingParams::n).
inline constexpr int32_t kMaxChoices = 128;

struct Request {
  std::string id;
  std::vector<int32_t> prompt_token_ids;  // [prompt_len], BOS included when the model wants it
  SamplingParams sampling;
};

enum class FinishReason {
  kNone,    // still running
  kStop,    // an end-of-sequence token or a stop string
  kLength,  // max_tokens or the model's context length
  kAbort,   // aborted by the client or by shutdown
};

// "stop", "length", "abort"; "" for kNone.
const char* FinishReasonName(FinishReason reason);

struct TopLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

// The logprob of one generated token and the most likely alternatives at its position.
struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
  std::vector<TopLogprob> top;  // [top_logprobs], most likely first, ties by lower id
};

// One step's worth of output for one choice of a request. The last output of a choice
// has finish_reason != kNone (or a non-OK error) and nothing of that choice follows it.
struct RequestOutput {
  int32_t index = 0;                   // the choice, [0, n)
  std::string text_delta;              // new text; never ends inside a UTF-8 character
  std::vector<int32_t> token_ids;      // new tokens
  std::vector<TokenLogprob> logprobs;  // [token_ids.size()] when sampling.logprobs, else empty
  FinishReason finish_reason = FinishReason::kNone;
  absl::Status error;  // an engine failure for this request
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;  // generated so far by this choice, in total

  bool finished() const { return finish_reason != FinishReason::kNone || !error.ok(); }
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_REQUEST_H_
