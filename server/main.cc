// moeserve: the OpenAI-compatible server process. Turns flags into an EngineConfig, loads
// the engine (before listening: /health answers once the model is loaded), serves the
// routes, and on SIGINT/SIGTERM drains: new requests get 503, running ones may finish for
// up to --shutdown-timeout seconds, then the rest are aborted and the process exits 0.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/byte_size.h"
#include "common/logging.h"
#include "engine/engine.h"
#include "server/admission.h"
#include "server/chat_routes.h"
#include "server/completion_routes.h"
#include "server/http_server.h"
#include "server/model_routes.h"
#include "server/tokenize_routes.h"

// Flag names follow vLLM's; write them with dashes or underscores (--max-model-len).
ABSL_FLAG(std::string, model, "", "Path to the model: a .gguf file. Required.");
ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on.");
ABSL_FLAG(int32_t, port, 8000, "Port to listen on (0 picks a free one).");
ABSL_FLAG(std::string, served_model_name, "",
          "Model name clients use in requests; default: the model file's stem.");
ABSL_FLAG(int32_t, max_model_len, 0,
          "Context length, prompt + generated tokens; 0 = the model's own.");
ABSL_FLAG(uint64_t, seed, 0, "Default sampling seed for requests that give none.");
ABSL_FLAG(int32_t, threads, 0, "CPU threads for the engine; 0 = every core this process may use.");
ABSL_FLAG(std::string, chat_template, "",
          "Path to a Jinja chat template to use instead of the model's own.");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error or off.");
ABSL_FLAG(int32_t, max_num_seqs, 16, "Requests decoded together in one engine step.");
ABSL_FLAG(int32_t, max_num_batched_tokens, 2048,
          "Tokens per engine step; longer prompts are prefilled in chunks.");
ABSL_FLAG(int32_t, block_size, 16, "Tokens per KV-cache block.");
ABSL_FLAG(std::string, kv_cache_memory, "1GiB",
          "Memory for the KV cache: bytes, or with a suffix (512MiB, 2GiB, 800MB).");
ABSL_FLAG(std::string, device, "auto",
          "auto (CUDA when a device is visible and this build has CUDA), cpu or cuda.");
ABSL_FLAG(std::string, dtype, "auto",
          "Weight dtype: auto (bfloat16 for bfloat16 checkpoints and on CUDA, else float32), "
          "float32 or bfloat16.");
ABSL_FLAG(std::string, api_key, "",
          "When set, every route but /health and /metrics needs 'Authorization: Bearer KEY' "
          "(401 otherwise). Default: the MOESERVE_API_KEY environment variable, if set.");
ABSL_FLAG(std::string, max_request_bytes, "32MiB",
          "Largest request body accepted (413 beyond): bytes or with a suffix (16MiB).");
ABSL_FLAG(int32_t, max_queued_requests, 0,
          "Refuse generation requests with 429 while this many sequences wait in the engine "
          "to be scheduled; 0 = no limit.");
ABSL_FLAG(double, shutdown_timeout, 30,
          "Seconds running requests may take to finish after SIGTERM/SIGINT before they are "
          "aborted.");
ABSL_FLAG(bool, enable_prefix_caching, true,
          "Reuse the KV blocks of prompt prefixes computed before (--no-enable-prefix-caching "
          "turns it off).");

namespace moeserve {
namespace {

// absl flags are spelled with underscores; vLLM's users type dashes. Rewrites the names
// (not the values) of "--flag-name[=value]" arguments, up to a bare "--".
std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0) continue;
    const size_t name_end = std::min(arg.find('='), arg.size());
    for (size_t j = 2; j < name_end; ++j) {
      if (arg[j] == '-') arg[j] = '_';
    }
    // vLLM's negative booleans, --no-enable-prefix-caching, are absl's --noenable_...
    if (arg.rfind("--no_", 0) == 0) arg.erase(4, 1);
  }
  return args;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::string DefaultServedModelName(const std::string& model_path) {
  std::filesystem::path path(model_path);
  if (path.filename().empty()) path = path.parent_path();  // "dir/"
  return path.stem().string();
}

absl::StatusOr<EngineConfig> EngineConfigFromFlags() {
  EngineConfig config;
  config.model_path = absl::GetFlag(FLAGS_model);
  if (config.model_path.empty()) return absl::InvalidArgumentError("--model is required");
  const std::string template_path = absl::GetFlag(FLAGS_chat_template);
  if (!template_path.empty()) {
    absl::StatusOr<std::string> source = ReadFile(template_path);
    if (!source.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--chat-template: ", source.status().message()));
    }
    config.chat_template_override = *std::move(source);
  }
  config.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  config.num_threads = absl::GetFlag(FLAGS_threads);
  config.seed = absl::GetFlag(FLAGS_seed);
  config.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  config.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  config.block_size = absl::GetFlag(FLAGS_block_size);
  absl::StatusOr<int64_t> kv_bytes = ParseByteSize(absl::GetFlag(FLAGS_kv_cache_memory));
  if (!kv_bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--kv-cache-memory: ", kv_bytes.status().message()));
  }
  config.kv_cache_memory_bytes = *kv_bytes;
  config.enable_prefix_caching = absl::GetFlag(FLAGS_enable_prefix_caching);
  config.device = absl::GetFlag(FLAGS_device);
  config.dtype = absl::GetFlag(FLAGS_dtype);
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  return config;
}

// SIGINT/SIGTERM reach a handler that only writes the signal number into a pipe; a waiter
// thread reads it and runs the shutdown as ordinary code. (Masking the signals and using
// sigwait would not do: libraries such as OpenBLAS start threads before main(), and a
// thread with the signal unblocked would take the default action and kill the process.)
// A second signal while shutting down exits at once.
int signal_pipe[2] = {-1, -1};
std::atomic<int> signals_received{0};

void OnSignal(int signal_number) {
  if (signals_received.fetch_add(1) > 0) std::_Exit(1);
  const int saved_errno = errno;
  const auto byte = static_cast<unsigned char>(signal_number);
  (void)!write(signal_pipe[1], &byte, 1);
  errno = saved_errno;
}

class SignalWaiter {
 public:
  SignalWaiter() {
    CHECK(pipe2(signal_pipe, O_CLOEXEC) == 0);
    struct sigaction action {};
    action.sa_handler = OnSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    // Also when the parent left them ignored (background jobs of a non-interactive shell).
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    thread_ = std::thread([this] { Run(); });
  }
  ~SignalWaiter() { Finish(); }
  SignalWaiter(const SignalWaiter&) = delete;
  SignalWaiter& operator=(const SignalWaiter&) = delete;

  // From now on a signal runs `shutdown` on the waiter's thread; before, it ends the
  // process at once (nothing to clean up while the model loads).
  void set_shutdown(std::function<void()> shutdown) {
    std::lock_guard<std::mutex> lock(mutex_);
    shutdown_ = std::move(shutdown);
  }

  // Stops waiting; returns once a shutdown the waiter began is done.
  void Finish() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finishing_ = true;
    }
    const unsigned char wake = 0;
    (void)!write(signal_pipe[1], &wake, 1);
    thread_.join();
  }

 private:
  void Run() {
    unsigned char byte = 0;
    while (read(signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    std::function<void()> shutdown;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (finishing_ || byte == 0) return;
      if (!shutdown_) {
        MOESERVE_LOG_INFO("received {} while starting; exiting", strsignal(byte));
        std::_Exit(0);
      }
      shutdown = shutdown_;
    }
    MOESERVE_LOG_INFO("received {}; shutting down", strsignal(byte));
    shutdown();
  }

  std::thread thread_;
  std::mutex mutex_;
  std::function<void()> shutdown_;  // guarded by mutex_
  bool finishing_ = false;          // guarded by mutex_
};

// Graceful shutdown: new requests get 503 at once; running ones have `timeout` to finish;
// then the server stops, which aborts whatever still runs.
void Drain(RequestGate* gate, HttpServer* server, absl::Duration timeout) {
  gate->StartDraining();
  const absl::Time deadline = absl::Now() + timeout;
  int active = server->active_requests();
  if (active > 0) {
    MOESERVE_LOG_INFO("waiting up to {} for {} running requests", absl::FormatDuration(timeout),
                      active);
  }
  while ((active = server->active_requests()) > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (active > 0) {
    MOESERVE_LOG_WARN("--shutdown-timeout reached; aborting {} running requests", active);
  }
  server->Stop();
}

// --api-key, else $MOESERVE_API_KEY.
std::string ApiKeyFromFlagOrEnv() {
  std::string key = absl::GetFlag(FLAGS_api_key);
  if (key.empty()) {
    if (const char* env = std::getenv("MOESERVE_API_KEY"); env != nullptr) key = env;
  }
  return key;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "OpenAI-compatible MoE inference server.\n  moeserve --model PATH.gguf [--port 8000]");
  std::vector<std::string> args = NormalizeFlagNames(argc, argv);
  std::vector<char*> arg_ptrs;
  for (std::string& arg : args) arg_ptrs.push_back(arg.data());
  absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());

  if (!SetLogLevel(absl::GetFlag(FLAGS_log_level))) {
    MOESERVE_LOG_ERROR("--log-level: unknown level '{}'", absl::GetFlag(FLAGS_log_level));
    return 1;
  }
  const int32_t port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) {
    MOESERVE_LOG_ERROR("--port must be between 0 and 65535, got {}", port);
    return 1;
  }
  absl::StatusOr<EngineConfig> config = EngineConfigFromFlags();
  if (!config.ok()) {
    MOESERVE_LOG_ERROR("{}", std::string(config.status().message()));
    return 1;
  }
  absl::StatusOr<int64_t> max_request_bytes = ParseByteSize(absl::GetFlag(FLAGS_max_request_bytes));
  if (!max_request_bytes.ok() || *max_request_bytes <= 0) {
    MOESERVE_LOG_ERROR("--max-request-bytes: {}",
                       max_request_bytes.ok() ? std::string("must be positive")
                                              : std::string(max_request_bytes.status().message()));
    return 1;
  }
  const int32_t max_queued = absl::GetFlag(FLAGS_max_queued_requests);
  if (max_queued < 0) {
    MOESERVE_LOG_ERROR("--max-queued-requests must be >= 0, got {}", max_queued);
    return 1;
  }
  const double shutdown_seconds = absl::GetFlag(FLAGS_shutdown_timeout);
  if (!(shutdown_seconds >= 0)) {
    MOESERVE_LOG_ERROR("--shutdown-timeout must be >= 0, got {}", shutdown_seconds);
    return 1;
  }

  SignalWaiter signals;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(*config);
  if (!engine.ok()) {
    MOESERVE_LOG_ERROR("cannot load the model: {}", std::string(engine.status().message()));
    return 1;
  }

  ServedModel model;
  model.name = absl::GetFlag(FLAGS_served_model_name);
  if (model.name.empty()) model.name = DefaultServedModelName(config->model_path);
  model.max_model_len = (*engine)->model_info().max_model_len;
  model.created = absl::ToUnixSeconds(absl::Now());

  // Routes submit through the queue limit, when there is one.
  std::unique_ptr<QueueLimitedEngine> limited;
  Engine* routes_engine = engine->get();
  if (max_queued > 0) {
    limited = std::make_unique<QueueLimitedEngine>(engine->get(), max_queued);
    routes_engine = limited.get();
  }
  RequestGate gate(ApiKeyFromFlagOrEnv());

  HttpServer::Options options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = port;
  options.max_body_bytes = static_cast<size_t>(*max_request_bytes);
  options.gate = [&gate](const HttpRequest& request) { return gate.Check(request); };
  HttpServer server(options);
  RegisterModelRoutes(model, engine->get(), &server);
  RegisterChatRoutes(routes_engine, model, &server);
  RegisterCompletionRoutes(routes_engine, model, &server);
  RegisterTokenizeRoutes(engine->get(), model, &server);
  if (absl::Status started = server.Start(); !started.ok()) {
    MOESERVE_LOG_ERROR("{}", std::string(started.message()));
    (*engine)->Shutdown();
    return 1;
  }
  const absl::Duration shutdown_timeout = absl::Seconds(shutdown_seconds);
  signals.set_shutdown(
      [&gate, &server, shutdown_timeout] { Drain(&gate, &server, shutdown_timeout); });
  MOESERVE_LOG_INFO("serving {} as '{}' (context {} tokens) on http://{}:{}", config->model_path,
                    model.name, model.max_model_len, options.host, server.port());

  const absl::Status served = server.Wait();
  if (!served.ok()) MOESERVE_LOG_ERROR("{}", std::string(served.message()));
  signals.Finish();
  server.Stop();
  (*engine)->Shutdown();
  MOESERVE_LOG_INFO("stopped");
  return served.ok() ? 0 : 1;
}

}  // namespace
}  // namespace moeserve

int main(int argc, char** argv) { return moeserve::Main(argc, argv); }
