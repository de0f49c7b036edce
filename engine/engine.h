// The engine facade: loads the model, owns the engine thread that runs every forward pass,
// and hands each submitted request a RequestHandle through which its outputs arrive.
// Other threads talk to the engine only through Submit(), RequestHandle and Shutdown().
#ifndef MOESERVE_ENGINE_ENGINE_H_
#define MOESERVE_ENGINE_ENGINE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/request.h"
#include "engine/request_handle.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"

namespace moeserve {

struct EngineConfig {
  std::string model_path;                 // a .gguf file
  std::string chat_template_override;     // template source; empty = the model's own
  int32_t max_model_len = 0;              // 0 = the model's context length
  int32_t num_threads = 0;                // 0 = every core this process may use
  uint64_t seed = 0;                      // seeds requests that give none (each differently)
  int32_t max_num_seqs = 16;              // sequences running at once
  int32_t max_num_batched_tokens = 2048;  // tokens per engine step (prefill chunks + decodes)
  int32_t block_size = 16;                // tokens per KV-cache block
  int64_t kv_cache_memory_bytes = int64_t{1} << 30;  // KV pool size
  bool enable_prefix_caching = true;                 // reuse KV blocks of equal prompt prefixes
  // Where the model runs: "auto" (CUDA when this build has it and a device is visible, else
  // the CPU), "cpu" or "cuda".
  std::string device = "auto";
  // Weight dtype: "auto" (bfloat16 when the checkpoint is bfloat16 and, on the GPU, always;
  // else float32), "float32" or "bfloat16". The CPU computes in f32 either way; bf16
  // weights halve the bytes each decode step reads.
  std::string dtype = "auto";

  absl::Status Validate() const;
};

struct ModelInfo {
  std::string name;           // general.name, or the file's stem
  std::string architecture;   // "llama"
  std::string device;         // "cpu" or "cuda"
  std::string dtype;          // weights: "float32" or "bfloat16"
  int32_t max_model_len = 0;  // prompt + generated tokens, at most
  int32_t vocab_size = 0;
};

// A snapshot of the engine thread's state, refreshed after every step.
struct EngineStats {
  int32_t num_running = 0;
  int32_t num_waiting = 0;  // queued, including requests not yet seen by the loop
  int32_t num_blocks = 0;
  int32_t num_free_blocks = 0;
  int64_t num_preemptions = 0;       // since start
  int64_t prefix_cache_queries = 0;  // prompt tokens looked up in the prefix cache, since start
  int64_t prefix_cache_hits = 0;     // of which found
};

class Engine {
 public:
  // Loads the model and starts the engine thread. Errors name the file and the problem.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineConfig& config);
  virtual ~Engine() = default;

  // Queues a request: sampling.n sequences sharing the one returned handle. InvalidArgument
  // for an empty prompt, a bad token id, invalid sampling parameters or prompt_len +
  // max_tokens > max_model_len (the message gives the counts); Unavailable after Shutdown().
  virtual absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(Request request) = 0;

  virtual const Tokenizer& tokenizer() const = 0;
  virtual const ChatTemplate& chat_template() const = 0;
  virtual const ModelInfo& model_info() const = 0;
  virtual EngineStats stats() const = 0;

  // Stops accepting requests, aborts those in flight and joins the engine thread.
  virtual void Shutdown() = 0;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_ENGINE_H_
