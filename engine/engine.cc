#include "engine/engine.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/cpu_backend.h"
#include "engine/detokenizer.h"
#include "engine/kv_cache.h"
#include "engine/kv_cache_manager.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/model_loader.h"
#include "engine/model_weights.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/sequence.h"
#ifdef MOESERVE_WITH_CUDA
#include "engine/cuda_backend.h"
#include "kernels/cuda/device_info.h"
#endif

namespace moeserve {

absl::Status EngineConfig::Validate() const {
  if (model_path.empty()) return absl::InvalidArgumentError("no model path given");
  if (max_model_len < 0) return absl::InvalidArgumentError("max_model_len must be >= 0");
  if (max_num_seqs < 1) return absl::InvalidArgumentError("max_num_seqs must be >= 1");
  if (max_num_batched_tokens < 1) {
    return absl::InvalidArgumentError("max_num_batched_tokens must be >= 1");
  }
  if (block_size < 1 || block_size > 1024) {
    return absl::InvalidArgumentError("block_size must be in [1, 1024]");
  }
  if (kv_cache_memory_bytes <= 0) {
    return absl::InvalidArgumentError("kv_cache_memory_bytes must be positive");
  }
  if (device != "auto" && device != "cpu" && device != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("device must be auto, cpu or cuda, got \"", device, "\""));
  }
  if (dtype != "auto" && dtype != "float32" && dtype != "bfloat16") {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype must be auto, float32 or bfloat16, got \"", dtype, "\""));
  }
  return absl::OkStatus();
}

namespace {

class EngineImpl : public Engine {
 public:
  EngineImpl(const EngineConfig& config, std::unique_ptr<Tokenizer> tokenizer,
             std::unique_ptr<ChatTemplate> chat_template, ModelInfo info,
             std::unique_ptr<Backend> backend, std::unique_ptr<Model> model,
             std::unique_ptr<KvCache> kv_cache)
      : config_(config),
        tokenizer_(std::move(tokenizer)),
        chat_template_(std::move(chat_template)),
        info_(std::move(info)),
        backend_(std::move(backend)),
        model_(std::move(model)),
        kv_cache_(std::move(kv_cache)),
        kv_manager_(kv_cache_->num_blocks(), kv_cache_->block_size(), config.enable_prefix_caching),
        scheduler_(SchedulerConfig{config.max_num_seqs, config.max_num_batched_tokens},
                   &kv_manager_),
        seed_sequence_(config.seed) {
    logits_.resize(int64_t{config.max_num_seqs} * info_.vocab_size);
    PublishStats();
    thread_ = std::thread([this] { Loop(); });
  }

  ~EngineImpl() override { Shutdown(); }

  absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(Request request) override {
    MOESERVE_RETURN_IF_ERROR(request.sampling.Validate());
    const int64_t prompt_len = static_cast<int64_t>(request.prompt_token_ids.size());
    if (prompt_len == 0) return absl::InvalidArgumentError("the prompt is empty");
    for (int32_t id : request.prompt_token_ids) {
      if (id < 0 || id >= info_.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token id ", id, " is outside the vocabulary [0, ", info_.vocab_size, ")"));
      }
    }
    for (const auto& [id, bias] : request.sampling.logit_bias) {
      if (id < 0 || id >= info_.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "logit_bias token id ", id, " is outside the vocabulary [0, ", info_.vocab_size, ")"));
      }
    }
    for (int32_t id : request.sampling.stop_token_ids) {
      if (id < 0 || id >= info_.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "stop_token_ids id ", id, " is outside the vocabulary [0, ", info_.vocab_size, ")"));
      }
    }
    const int64_t total = prompt_len + request.sampling.max_tokens;
    if (total > info_.max_model_len) {
      return absl::InvalidArgumentError(absl::StrCat(
          "This model's maximum context length is ", info_.max_model_len,
          " tokens. However, you requested ", total, " tokens (", prompt_len, " in the messages, ",
          request.sampling.max_tokens,
          " in the completion). Please reduce the length of the messages or completion."));
    }
    // n choices are n sequences with one handle. Siblings admitted in the same step share
    // the prompt's full KV blocks through the prefix cache (see kv_cache_manager.h).
    const int32_t n = request.sampling.n;
    auto handle = std::make_shared<RequestHandle>(request.id, n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return absl::UnavailableError("the engine is shutting down");
      for (int32_t i = 0; i < n; ++i) {
        // Choice i of a seeded request uses seed + i (as vLLM's child requests do).
        const uint64_t seed = request.sampling.seed.has_value()
                                  ? *request.sampling.seed + static_cast<uint64_t>(i)
                                  : seed_sequence_();
        Request choice = i + 1 < n ? Request(request) : std::move(request);
        inbox_.push_back(
            std::make_unique<Sequence>(std::move(choice), handle, tokenizer_.get(), seed, i));
      }
    }
    wake_.notify_one();
    return handle;
  }

  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  const ChatTemplate& chat_template() const override { return *chat_template_; }
  const ModelInfo& model_info() const override { return info_; }

  EngineStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    EngineStats stats = stats_;
    stats.num_waiting += static_cast<int32_t>(inbox_.size());
    return stats;
  }

  // Safe to call from several threads at once: exactly one joins the loop thread.
  void Shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    std::call_once(joined_, [this] { thread_.join(); });
  }

 private:
  void Loop() {
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !inbox_.empty() || scheduler_.has_work(); });
        for (auto& seq : inbox_) scheduler_.Add(std::move(seq));
        inbox_.clear();
        if (stopping_) break;
      }
      Step();
      PublishStats();
    }
    // Shutdown: everything still queued or running ends as aborted.
    for (auto& seq : scheduler_.RemoveIf([](const Sequence&) { return true; })) {
      SendFinal(*seq, FinishReason::kAbort);
    }
    PublishStats();
  }

  // One engine step: drop aborted requests, let the scheduler pick this step's tokens,
  // run the model, sample where a sequence's known tokens are all computed, emit.
  void Step() {
    for (auto& seq : scheduler_.RemoveIf([](const Sequence& s) { return s.handle->aborted(); })) {
      SendFinal(*seq, FinishReason::kAbort);
    }
    const SchedulerOutput scheduled = scheduler_.Schedule();
    num_preemptions_ += static_cast<int64_t>(scheduled.preempted.size());
    if (scheduled.chunks.empty()) return;

    batch_.Clear();
    for (const ScheduledChunk& chunk : scheduled.chunks) AddToBatch(*chunk.seq, chunk.num_tokens);
    model_->Forward(batch_, kv_cache_.get(), logits_.data());
    scheduler_.Update(scheduled);

    for (size_t i = 0; i < scheduled.chunks.size(); ++i) {
      Sequence& seq = *scheduled.chunks[i].seq;
      if (seq.num_uncomputed() > 0) continue;  // mid-prefill
      const absl::Span<const float> logits(logits_.data() + i * info_.vocab_size, info_.vocab_size);
      const SamplingParams& params = seq.request.sampling;
      TokenLogprob logprob;
      const int32_t token = sampler_.Sample(logits, params, &seq.rng, &seq.penalties,
                                            params.logprobs ? &logprob : nullptr);
      seq.tokens.push_back(token);
      seq.penalties.AddGenerated(token);
      EmitToken(seq, token, params.logprobs ? &logprob : nullptr);
    }
    scheduler_.RemoveIf([](const Sequence& s) { return s.finished; });
  }

  void AddToBatch(Sequence& seq, int32_t n) {
    const int32_t block_size = kv_cache_->block_size();
    BatchSequence entry;
    entry.token_begin = static_cast<int32_t>(batch_.token_ids.size());
    entry.num_tokens = n;
    entry.context_len = seq.num_computed + n;
    entry.block_table = seq.blocks.data();
    for (int32_t p = seq.num_computed; p < seq.num_computed + n; ++p) {
      batch_.token_ids.push_back(seq.tokens[p]);
      batch_.positions.push_back(p);
      batch_.slots.push_back(seq.blocks[p / block_size] * block_size + p % block_size);
    }
    batch_.sequences.push_back(entry);
  }

  // Sends the token's text to the client; a finished sequence leaves the scheduler (and
  // gives back its blocks) at the end of the step.
  // `logprob`: the token's logprobs when the request asked for them, else nullptr.
  void EmitToken(Sequence& seq, int32_t token, TokenLogprob* logprob) {
    RequestOutput out;
    out.index = seq.index;
    out.token_ids.push_back(token);
    if (logprob != nullptr) out.logprobs.push_back(std::move(*logprob));
    out.text_delta = seq.detokenizer.Push(token);
    out.prompt_tokens = seq.prompt_len;
    out.completion_tokens = seq.num_generated();
    const std::vector<int32_t>& stops = tokenizer_->stop_ids();
    const std::vector<int32_t>& stop_tokens = seq.request.sampling.stop_token_ids;
    if (seq.detokenizer.stopped()) {
      out.finish_reason = FinishReason::kStop;  // a stop string; the text ends before it
    } else if (!seq.request.sampling.ignore_eos &&
               std::find(stops.begin(), stops.end(), token) != stops.end()) {
      out.finish_reason = FinishReason::kStop;
    } else if (std::find(stop_tokens.begin(), stop_tokens.end(), token) != stop_tokens.end()) {
      out.finish_reason = FinishReason::kStop;
    } else if (seq.num_generated() >= seq.request.sampling.max_tokens ||
               static_cast<int32_t>(seq.tokens.size()) >= info_.max_model_len) {
      out.finish_reason = FinishReason::kLength;
    }
    seq.finished = out.finished();
    if (seq.finished) out.text_delta += seq.detokenizer.Flush();
    seq.handle->Push(std::move(out));
  }

  void PublishStats() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.num_running = scheduler_.num_running();
    stats_.num_waiting = scheduler_.num_waiting();
    stats_.num_blocks = kv_manager_.num_blocks();
    stats_.num_free_blocks = kv_manager_.num_free_blocks();
    stats_.num_preemptions = num_preemptions_;
    stats_.prefix_cache_queries = kv_manager_.prefix_cache_queries();
    stats_.prefix_cache_hits = kv_manager_.prefix_cache_hits();
  }

  // The last output of a sequence that ends without a new token (abort, shutdown).
  void SendFinal(Sequence& seq, FinishReason reason) {
    RequestOutput out;
    out.index = seq.index;
    out.finish_reason = reason;
    out.text_delta = seq.detokenizer.Flush();
    out.prompt_tokens = seq.prompt_len;
    out.completion_tokens = seq.num_generated();
    seq.handle->Push(std::move(out));
  }

  const EngineConfig config_;
  const std::unique_ptr<Tokenizer> tokenizer_;
  const std::unique_ptr<ChatTemplate> chat_template_;
  const ModelInfo info_;
  const std::unique_ptr<Backend> backend_;
  const std::unique_ptr<Model> model_;
  const std::unique_ptr<KvCache> kv_cache_;

  // Engine-thread state.
  KvCacheManager kv_manager_;
  Scheduler scheduler_;
  int64_t num_preemptions_ = 0;
  ForwardBatch batch_;
  std::vector<float> logits_;  // [max_num_seqs, vocab]
  Sampler sampler_;

  // Shared with submitting threads.
  mutable std::mutex mutex_;
  EngineStats stats_;  // guarded by mutex_
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Sequence>> inbox_;  // guarded by mutex_
  bool stopping_ = false;                         // guarded by mutex_
  std::mt19937_64 seed_sequence_;                 // guarded by mutex_
  std::once_flag joined_;
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineConfig& config) {
  MOESERVE_RETURN_IF_ERROR(config.Validate());
  MOESERVE_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(config.model_path));
  const ModelConfig& model_config = loaded.config;
  std::unique_ptr<Tokenizer> tokenizer = std::move(loaded.tokenizer);

  std::string template_source = config.chat_template_override;
  if (template_source.empty()) {
    if (!loaded.chat_template.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          loaded.path, ": the model has no chat template; ", "pass one with --chat-template FILE"));
    }
    template_source = *std::move(loaded.chat_template);
  }
  ChatTemplate::Options template_options;
  if (tokenizer->bos_id() >= 0) {
    template_options.bos_token = tokenizer->TokenBytes(tokenizer->bos_id());
  }
  if (tokenizer->eos_id() >= 0) {
    template_options.eos_token = tokenizer->TokenBytes(tokenizer->eos_id());
  }
  absl::StatusOr<std::unique_ptr<ChatTemplate>> chat_template =
      ChatTemplate::Create(template_source, template_options);
  if (!chat_template.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.chat_template_override.empty() ? loaded.path : "--chat-template",
                     ": the chat template cannot be used: ", chat_template.status().message()));
  }

  ModelInfo info;
  info.name = model_config.name;
  info.architecture = model_config.architecture;
  info.vocab_size = model_config.vocab_size;
  if (config.max_model_len > model_config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-model-len ", config.max_model_len, " is larger than the model's context length ",
        model_config.max_position_embeddings, " (", loaded.path, ")"));
  }
  info.max_model_len =
      config.max_model_len > 0 ? config.max_model_len : model_config.max_position_embeddings;

  // The backend: CUDA when asked for (or, with "auto", when a device is visible).
  std::unique_ptr<Backend> backend;
#ifdef MOESERVE_WITH_CUDA
  if (config.device != "cpu") {
    std::string cuda_error;
    const std::vector<cuda::DeviceInfo> devices = cuda::ListDevices(&cuda_error);
    if (!devices.empty()) {
      MOESERVE_LOG_INFO("running on CUDA device 0: {} (sm_{})", devices[0].name,
                        devices[0].compute_capability);
      backend = std::make_unique<CudaBackend>(0);
    } else if (config.device == "cuda") {
      return absl::FailedPreconditionError(
          absl::StrCat("--device cuda: no usable CUDA device (",
                       cuda_error.empty() ? "none visible" : cuda_error, ")"));
    }
  }
#else
  if (config.device == "cuda") {
    return absl::FailedPreconditionError(
        "--device cuda: this build of moeserve has no CUDA backend (nvcc was not found when "
        "it was built)");
  }
#endif
  if (backend == nullptr) backend = std::make_unique<CpuBackend>(config.num_threads);
  const bool on_cpu = backend->device() == Device::kCpu;
  info.device = on_cpu ? "cpu" : "cuda";
  // Weights: bf16 on the GPU; on the CPU bf16 when the checkpoint is (exact), else f32
  // (exact for quantized GGUF files; --dtype bfloat16 halves what decode reads).
  const bool bf16 = config.dtype == "bfloat16" ||
                    (config.dtype == "auto" && (!on_cpu || model_config.torch_dtype == "bfloat16"));
  if (!on_cpu && !bf16) {
    return absl::InvalidArgumentError(
        "--dtype float32 is not supported on CUDA (the grouped GEMM runs on bf16 tensor cores)");
  }
  info.dtype = bf16 ? "bfloat16" : "float32";
  const DType kv_dtype = on_cpu ? DType::kF32 : DType::kBF16;

  const int64_t block_bytes = KvCache::BytesPerBlock(model_config, config.block_size, kv_dtype);
  const int64_t num_blocks = config.kv_cache_memory_bytes / block_bytes;
  if (num_blocks < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the KV cache budget of ", config.kv_cache_memory_bytes,
                     " bytes is smaller than one block (", block_bytes, " bytes)"));
  }
  if (num_blocks > std::numeric_limits<int32_t>::max() / config.block_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the KV cache budget of ", config.kv_cache_memory_bytes, " bytes is too large"));
  }
  // A request must fit the cache alone: an explicit --max-model-len that cannot is an
  // error (as in vLLM); the model's own context length is lowered to what fits.
  const int64_t cache_tokens = num_blocks * config.block_size;
  if (info.max_model_len > cache_tokens) {
    if (config.max_model_len > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--max-model-len ", info.max_model_len, " is larger than the ", cache_tokens,
          " tokens the KV cache holds; raise --kv-cache-memory or lower --max-model-len"));
    }
    MOESERVE_LOG_WARN(
        "the KV cache holds {} tokens, less than the model's context of {}; "
        "serving with max_model_len {} (raise --kv-cache-memory for more)",
        cache_tokens, info.max_model_len, cache_tokens);
    info.max_model_len = static_cast<int32_t>(cache_tokens);
  }

  MOESERVE_LOG_INFO("loading {} ({}): {} layers, hidden {}, {} heads ({} kv), vocab {}",
                    loaded.path, ModelFamilyName(model_config.family), model_config.num_layers,
                    model_config.hidden_size, model_config.num_heads, model_config.num_kv_heads,
                    model_config.vocab_size);
  MOESERVE_ASSIGN_OR_RETURN(ModelWeights host_weights, loaded.load_weights());
  const int64_t parameters = host_weights.num_parameters;
  ModelWeights weights = on_cpu && !bf16 ? std::move(host_weights)
                                         : UploadWeights(host_weights, backend.get(),
                                                         bf16 ? DType::kBF16 : DType::kF32);
  host_weights = ModelWeights();  // the f32 copy is no longer needed
  MOESERVE_LOG_INFO(
      "{} parameters as {} on the {} ({:.1f} MiB); KV cache: {} blocks of {} tokens "
      "({:.1f} MiB); max_model_len {}",
      parameters, info.dtype, info.device, parameters * (bf16 ? 2.0 : 4.0) / (1 << 20), num_blocks,
      config.block_size, num_blocks * block_bytes / double(1 << 20), info.max_model_len);
  auto model = std::make_unique<Model>(model_config, std::move(weights), backend.get(),
                                       config.max_num_batched_tokens, config.max_num_seqs);
  auto kv_cache = std::make_unique<KvCache>(model_config, static_cast<int32_t>(num_blocks),
                                            config.block_size, backend.get(), kv_dtype);
  return std::unique_ptr<Engine>(
      new EngineImpl(config, std::move(tokenizer), *std::move(chat_template), std::move(info),
                     std::move(backend), std::move(model), std::move(kv_cache)));
}

}  // namespace moeserve
