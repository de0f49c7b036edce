// Whole-model throughput of the CPU backend on a GGUF model: prefill tokens/s for one
// prompt, and decode tokens/s for `batch` sequences stepping together, next to the floor
// the weight bytes imply at a measured memory bandwidth.
//   build/bench/decode_bench --model models/SmolLM2-135M-Instruct.Q4_1.gguf
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "common/thread_pool.h"
#include "engine/cpu_backend.h"
#include "engine/kv_cache.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"

ABSL_FLAG(std::string, model, "models/SmolLM2-135M-Instruct.Q4_1.gguf", "GGUF model");
ABSL_FLAG(int, threads, 0, "CPU threads (0 = all)");
ABSL_FLAG(int, prompt_len, 256, "prefill length");
ABSL_FLAG(int, steps, 32, "decode steps per measurement");

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// STREAM-style copy over 512 MiB: bytes read + written per second, best of 3.
double MeasureBandwidth(moeserve::ThreadPool* pool) {
  const size_t n = size_t{64} << 20;  // floats
  std::vector<float> a(n, 1.0f), b(n, 0.0f);
  double best = 0.0;
  for (int r = 0; r < 3; ++r) {
    const double start = Now();
    pool->ParallelFor(static_cast<int64_t>(n), 1 << 16, [&](int64_t begin, int64_t end) {
      std::memcpy(b.data() + begin, a.data() + begin, (end - begin) * sizeof(float));
    });
    best = std::max(best, 2.0 * n * sizeof(float) / (Now() - start));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace moeserve;
  auto file = gguf::GgufFile::Open(absl::GetFlag(FLAGS_model));
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", std::string(file.status().message()).c_str());
    return 1;
  }
  auto config = ModelConfigFromGguf(**file);
  auto weights = LoadGgufWeights(**file, *config);
  if (!config.ok() || !weights.ok()) {
    std::fprintf(stderr, "cannot load the model\n");
    return 1;
  }
  const double weight_bytes = weights->num_parameters * 4.0;
  const int prompt_len = absl::GetFlag(FLAGS_prompt_len);
  const int steps = absl::GetFlag(FLAGS_steps);
  const int max_batch = 32;
  CpuBackend backend(absl::GetFlag(FLAGS_threads));
  Model model(*config, *std::move(weights), &backend, std::max(prompt_len, max_batch), max_batch);
  const int block = 16;
  const int blocks_per_seq = (prompt_len + steps + block) / block + 1;
  KvCache cache(*config, blocks_per_seq * max_batch, block);
  ThreadPool pool(backend.num_threads());
  const double bandwidth = MeasureBandwidth(&pool);
  std::printf("model %s: %.1f MiB of f32 weights; threads %d; copy bandwidth %.1f GB/s\n",
              config->name.c_str(), weight_bytes / (1 << 20), backend.num_threads(),
              bandwidth / 1e9);

  std::vector<std::vector<int32_t>> tables(max_batch);
  for (int s = 0; s < max_batch; ++s) {
    for (int b = 0; b < blocks_per_seq; ++b) tables[s].push_back(s * blocks_per_seq + b);
  }
  std::vector<float> logits(size_t{max_batch} * config->vocab_size);
  auto add = [&](ForwardBatch& batch, int seq, int start, int n) {
    batch.sequences.push_back({static_cast<int32_t>(batch.token_ids.size()), n, start + n,
                               tables[seq].data()});
    for (int p = start; p < start + n; ++p) {
      batch.token_ids.push_back((p * 7919 + seq) % config->vocab_size);
      batch.positions.push_back(p);
      batch.slots.push_back(tables[seq][p / block] * block + p % block);
    }
  };

  // Prefill of one prompt, after a warm-up.
  ForwardBatch batch;
  add(batch, 0, 0, prompt_len);
  model.Forward(batch, &cache, logits.data());
  double start = Now();
  model.Forward(batch, &cache, logits.data());
  const double prefill = Now() - start;
  std::printf("prefill %d tokens: %.1f ms, %.0f tokens/s\n", prompt_len, prefill * 1e3,
              prompt_len / prefill);

  std::printf("%6s %12s %14s %16s %10s\n", "batch", "step ms", "tokens/s", "floor tokens/s",
              "of floor");
  for (int b : {1, 8, 32}) {
    for (int s = 0; s < b; ++s) {
      ForwardBatch prefill_batch;
      add(prefill_batch, s, 0, prompt_len);
      model.Forward(prefill_batch, &cache, logits.data());
    }
    start = Now();
    for (int step = 0; step < steps; ++step) {
      batch.Clear();
      for (int s = 0; s < b; ++s) add(batch, s, prompt_len + step, 1);
      model.Forward(batch, &cache, logits.data());
    }
    const double per_step = (Now() - start) / steps;
    // Every step reads all weights once at least; at batch b that yields b tokens.
    const double floor_tokens = bandwidth / weight_bytes * b;
    std::printf("%6d %12.2f %14.1f %16.1f %9.0f%%\n", b, per_step * 1e3, b / per_step,
                floor_tokens, 100.0 * (b / per_step) / floor_tokens);
  }
  return 0;
}
