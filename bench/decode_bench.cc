// Whole-model throughput of the CPU backend on a model (a GGUF file or a Hugging Face
// directory, dense or MoE): prefill tokens/s for one prompt, and decode tokens/s for
// `batch` sequences stepping together, next to the floor the weight bytes each step reads
// imply at a measured memory bandwidth. For MoE models a step reads the shared weights
// once and, in each MoE layer, only the experts its tokens were routed to: the floor
// counts exactly those, from the routing op's per-expert counts.
//   build/bench/decode_bench --model models/SmolLM2-135M-Instruct.Q4_1.gguf
//   build/bench/decode_bench --model /tmp/smollm2-upcycled-8x2
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
#include "engine/model_loader.h"
#include "engine/model_weights.h"

ABSL_FLAG(std::string, model, "models/SmolLM2-135M-Instruct.Q4_1.gguf",
          "GGUF file or Hugging Face directory");
ABSL_FLAG(int, threads, 0, "CPU threads (0 = all)");
ABSL_FLAG(std::string, dtype, "float32", "weights: float32 or bfloat16");
ABSL_FLAG(int, prompt_len, 256, "prefill length");
ABSL_FLAG(int, steps, 32, "decode steps per measurement");

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
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
  auto loaded = LoadModel(absl::GetFlag(FLAGS_model));
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    return 1;
  }
  const ModelConfig* config = &loaded->config;
  auto weights = loaded->load_weights();
  if (!weights.ok()) {
    std::fprintf(stderr, "%s\n", std::string(weights.status().message()).c_str());
    return 1;
  }
  CpuBackend backend(absl::GetFlag(FLAGS_threads));
  const bool bf16 = absl::GetFlag(FLAGS_dtype) == "bfloat16";
  if (bf16) *weights = UploadWeights(*weights, &backend, DType::kBF16);
  // Bytes of weights every step reads whatever the routing, and of one expert of
  // each MoE layer (gate, up and down, at the layer's stored width).
  double expert_bytes_total = 0.0;
  std::vector<double> expert_bytes(config->num_layers, 0.0);
  for (int l = 0; l < config->num_layers; ++l) {
    if (!config->IsMoeLayer(l)) continue;
    const Tensor& down = weights->layers[l].moe.experts_down;
    expert_bytes[l] = 3.0 * down.dim(1) * down.dim(2) * DTypeRowBytes(down.dtype(), 1);
    expert_bytes_total += expert_bytes[l] * config->moe.num_experts;
  }
  double stored = 0.0;
  for (const auto& layer : weights->layers) {
    for (const Tensor* t :
         {&layer.attn_norm, &layer.qkv, &layer.o_proj, &layer.ffn_norm, &layer.gate_up,
          &layer.down_proj, &layer.moe.router, &layer.moe.router_out, &layer.moe.shared_gate_up,
          &layer.moe.shared_down, &layer.moe.shared_gate}) {
      if (t->data() != nullptr) stored += t->num_bytes();
    }
  }
  stored += weights->embedding.num_bytes() / config->vocab_size;  // one row per token
  stored += weights->final_norm.num_bytes() + weights->lm_head.num_bytes();
  const double shared_bytes = stored;
  const double weight_bytes = shared_bytes + expert_bytes_total;
  const int prompt_len = absl::GetFlag(FLAGS_prompt_len);
  const int steps = absl::GetFlag(FLAGS_steps);
  const int max_batch = 32;
  Model model(*config, *std::move(weights), &backend, std::max(prompt_len, max_batch), max_batch);
  const int block = 16;
  const int blocks_per_seq = (prompt_len + steps + block) / block + 1;
  KvCache cache(*config, blocks_per_seq * max_batch, block);
  ThreadPool pool(backend.num_threads());
  const double bandwidth = MeasureBandwidth(&pool);
  std::printf(
      "model %s (%s, %s weights): %.1f MiB read per step at least, %.1f MiB of experts "
      "(%d x top-%d); threads %d; copy bandwidth %.1f GB/s\n",
      absl::GetFlag(FLAGS_model).c_str(), ModelFamilyName(config->family), bf16 ? "bf16" : "f32",
      shared_bytes / (1 << 20), expert_bytes_total / (1 << 20), config->moe.num_experts,
      config->moe.top_k, backend.num_threads(), bandwidth / 1e9);

  std::vector<std::vector<int32_t>> tables(max_batch);
  for (int s = 0; s < max_batch; ++s) {
    for (int b = 0; b < blocks_per_seq; ++b) tables[s].push_back(s * blocks_per_seq + b);
  }
  std::vector<float> logits(size_t{max_batch} * config->vocab_size);
  auto add = [&](ForwardBatch& batch, int seq, int start, int n) {
    batch.sequences.push_back(
        {static_cast<int32_t>(batch.token_ids.size()), n, start + n, tables[seq].data()});
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
    double bytes_read = 0.0;  // over all steps: shared weights plus the experts each touched
    for (int step = 0; step < steps; ++step) {
      batch.Clear();
      for (int s = 0; s < b; ++s) add(batch, s, prompt_len + step, 1);
      model.Forward(batch, &cache, logits.data());
      bytes_read += shared_bytes;
      const std::vector<int32_t>& counts = model.expert_counts();
      for (int l = 0; l < config->num_layers; ++l) {
        for (int e = 0; e < config->moe.num_experts; ++e) {
          if (counts[l * config->moe.num_experts + e] > 0) bytes_read += expert_bytes[l];
        }
      }
    }
    const double per_step = (Now() - start) / steps;
    // The floor: each step's weight bytes at the copy bandwidth, b tokens per step.
    const double floor_tokens = b / (bytes_read / steps / bandwidth);
    std::printf("%6d %12.2f %14.1f %16.1f %9.0f%%\n", b, per_step * 1e3, b / per_step, floor_tokens,
                100.0 * (b / per_step) / floor_tokens);
  }
  return 0;
}
