// Decode steps of a whole MoE model of LLaMA-MoE-3.5B's shape (32 layers, hidden 4096, 32
// heads, 8 experts of 1376, top-2, vocab 32000; a Mixtral-style softmax router) with
// random bf16 weights generated on the device, on CudaBackend: step time at batch 1, 8,
// 32 and 64 with 512 tokens of context (prefilled first), next to the HBM floor of each
// step = (bytes of the non-expert weights + bytes of the experts its tokens were routed
// to, from Model::expert_counts() + bytes of K and V read) / the device's measured copy
// bandwidth (cudaMemcpy device to device of 1 GiB, bytes read + written per second).
//   build/bench/gpu/decode_step_bench
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/gpu/device_random.h"
#include "bench/gpu/gpu_timer.h"
#include "common/tensor.h"
#include "engine/cuda_backend.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"
#include "kernels/cuda/device_info.h"

namespace moeserve::bench {
namespace {

constexpr int kContext = 512;
constexpr int kBatches[] = {1, 8, 32, 64};
constexpr int kMaxBatch = 64;
constexpr int kWarmupSteps = 3;
constexpr int kTimedSteps = 16;
constexpr int kBlockSize = 16;
constexpr int kMaxTokens = 4096;  // prefill chunk: 8 sequences of 512

ModelConfig LlamaMoe35bShape() {
  ModelConfig c;
  c.architecture = "mixtral";
  c.name = "LLaMA-MoE-3.5B shape, random weights";
  c.family = ModelFamily::kMixtral;
  c.vocab_size = 32000;
  c.hidden_size = 4096;
  c.intermediate_size = 1376;  // no dense layer; sizes the dense-MLP workspace only
  c.num_layers = 32;
  c.num_heads = 32;
  c.num_kv_heads = 32;
  c.head_dim = 128;
  c.rotary_dim = 128;
  c.rms_norm_eps = 1e-6f;
  c.max_position_embeddings = 4096;
  c.moe.num_experts = 8;
  c.moe.top_k = 2;
  c.moe.router = RouterKind::kSoftmaxTopK;
  c.moe.norm_topk_prob = true;
  c.moe.expert_intermediate_sizes.assign(c.num_layers, std::vector<int32_t>(8, 1376));
  return c;
}

// Every weight of `c` as random bf16 on `backend`'s device: matrices of N(0, 0.02^2)-like
// spread, norms near 1, so activations stay finite through the 32 layers.
ModelWeights RandomWeights(const ModelConfig& c, CudaBackend* backend) {
  ModelWeights w;
  uint64_t seed = 1;
  auto make = [&](std::initializer_list<int64_t> shape, float mean, float scale) {
    const Tensor shape_only(nullptr, DType::kBF16, shape, Device::kCuda);
    w.device_storage.push_back(backend->Allocate(shape_only.num_bytes()));
    void* data = w.device_storage.back()->data();
    FillRandomBf16(data, shape_only.num_elements(), mean, scale, seed++, backend->stream());
    w.num_parameters += shape_only.num_elements();
    return Tensor(data, DType::kBF16, shape, Device::kCuda);
  };
  const int64_t h = c.hidden_size, e = c.moe.num_experts;
  const int64_t inter = c.moe.expert_intermediate_sizes[0][0];
  const int64_t qkv_rows = int64_t{c.num_heads + 2 * c.num_kv_heads} * c.head_dim;
  w.embedding = make({c.vocab_size, h}, 0.0f, 0.02f);
  for (int l = 0; l < c.num_layers; ++l) {
    LayerWeights layer;
    layer.attn_norm = make({h}, 1.0f, 0.05f);
    layer.qkv = make({qkv_rows, h}, 0.0f, 0.02f);
    layer.o_proj = make({h, int64_t{c.num_heads} * c.head_dim}, 0.0f, 0.02f);
    layer.ffn_norm = make({h}, 1.0f, 0.05f);
    layer.moe.router = make({e, h}, 0.0f, 0.02f);
    layer.moe.experts_gate_up = make({e, 2 * inter, h}, 0.0f, 0.02f);
    layer.moe.experts_down = make({e, h, inter}, 0.0f, 0.02f);
    w.layers.push_back(layer);
  }
  w.final_norm = make({h}, 1.0f, 0.05f);
  w.lm_head = make({c.vocab_size, h}, 0.0f, 0.02f);
  backend->Synchronize();
  return w;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace
}  // namespace moeserve::bench

int main() {
  using namespace moeserve;
  using namespace moeserve::bench;
  std::string error;
  const std::vector<cuda::DeviceInfo> devices = cuda::ListDevices(&error);
  if (devices.empty()) {
    std::fprintf(stderr, "decode_step_bench: no CUDA device (%s)\n", error.c_str());
    return 1;
  }
  const ModelConfig config = LlamaMoe35bShape();
  CHECK(config.Validate().ok());
  CudaBackend backend(0);
  const double bandwidth = CopyBandwidth(backend.stream());

  ModelWeights weights = RandomWeights(config, &backend);
  // Bytes every decode step reads whatever the routing (the embedding only for its tokens'
  // rows, added per step), and those of one expert (gate, up and down).
  double shared_bytes = weights.final_norm.num_bytes() + weights.lm_head.num_bytes();
  for (const LayerWeights& l : weights.layers) {
    shared_bytes += l.attn_norm.num_bytes() + l.qkv.num_bytes() + l.o_proj.num_bytes() +
                    l.ffn_norm.num_bytes() + l.moe.router.num_bytes();
  }
  const double expert_bytes = (weights.layers[0].moe.experts_gate_up.num_bytes() +
                               weights.layers[0].moe.experts_down.num_bytes()) /
                              static_cast<double>(config.moe.num_experts);
  const double embedding_row_bytes = 2.0 * config.hidden_size;
  // K and V of one token across all layers.
  const double kv_token_bytes =
      2.0 * config.num_layers * config.num_kv_heads * config.head_dim * 2 /* bf16 */;
  const int64_t parameters = weights.num_parameters;

  Model model(config, std::move(weights), &backend, kMaxTokens, kMaxBatch);
  const int blocks_per_seq = (kContext + kWarmupSteps + kTimedSteps) / kBlockSize + 1;
  KvCache cache(config, blocks_per_seq * kMaxBatch, kBlockSize, &backend, DType::kBF16);
  std::printf(
      "device %s (sm_%d, %.1f GiB); copy bandwidth %.0f GB/s (cudaMemcpy D2D of 1 GiB, read + "
      "written)\nmodel: %s, %.2fB parameters, bf16; non-expert weights %.0f MiB, one expert "
      "%.1f MiB x %d x %d layers; KV cache %d blocks of %d (%.1f GiB)\n",
      devices[0].name.c_str(), devices[0].compute_capability,
      devices[0].total_memory_bytes / 1073741824.0, bandwidth / 1e9, config.name.c_str(),
      parameters / 1e9, shared_bytes / 1048576.0, expert_bytes / 1048576.0, config.moe.num_experts,
      config.num_layers, cache.num_blocks(), kBlockSize,
      cache.num_blocks() * kBlockSize * kv_token_bytes / 1073741824.0);

  std::vector<std::vector<int32_t>> tables(kMaxBatch);
  for (int s = 0; s < kMaxBatch; ++s) {
    for (int b = 0; b < blocks_per_seq; ++b) tables[s].push_back(s * blocks_per_seq + b);
  }
  std::vector<float> logits(size_t{kMaxBatch} * config.vocab_size);
  ForwardBatch batch;
  auto add = [&](int seq, int start, int n) {
    batch.sequences.push_back(
        {static_cast<int32_t>(batch.token_ids.size()), n, start + n, tables[seq].data()});
    for (int p = start; p < start + n; ++p) {
      batch.token_ids.push_back((p * 7919 + seq * 104729) % config.vocab_size);
      batch.positions.push_back(p);
      batch.slots.push_back(tables[seq][p / kBlockSize] * kBlockSize + p % kBlockSize);
    }
  };

  // Prefill every sequence's 512 tokens, 8 sequences per step; the first chunk twice, as
  // warm-up (it rewrites the same slots).
  const int per_chunk = kMaxTokens / kContext;
  double prefill_s = 0.0;
  for (int first = -per_chunk; first < kMaxBatch; first += per_chunk) {
    batch.Clear();
    for (int s = std::max(first, 0); s < std::max(first, 0) + per_chunk; ++s) add(s, 0, kContext);
    const double start = Now();
    model.Forward(batch, &cache, logits.data());
    if (first >= 0) prefill_s += Now() - start;
  }
  std::printf("prefill: %d sequences x %d tokens in steps of %d tokens: %.0f ms, %.0f tokens/s\n\n",
              kMaxBatch, kContext, kMaxTokens, prefill_s * 1e3, kMaxBatch * kContext / prefill_s);

  std::printf(
      "| batch | context | step ms | tokens/s | experts touched / layer | MiB read / step | "
      "floor ms | of floor |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const int b : kBatches) {
    std::vector<double> times;
    double bytes = 0.0, touched = 0.0;
    for (int step = 0; step < kWarmupSteps + kTimedSteps; ++step) {
      batch.Clear();
      const int pos = kContext + step;
      for (int s = 0; s < b; ++s) add(s, pos, 1);
      const double start = Now();
      model.Forward(batch, &cache, logits.data());
      const double elapsed = Now() - start;
      if (step < kWarmupSteps) continue;
      times.push_back(elapsed);
      int experts = 0;
      for (int32_t count : model.expert_counts()) experts += count > 0;
      touched += experts;
      bytes += shared_bytes + b * embedding_row_bytes + experts * expert_bytes +
               b * (pos + 1) * kv_token_bytes;
    }
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    const double step_s = times[times.size() / 2];
    const double step_bytes = bytes / kTimedSteps;
    const double floor_s = step_bytes / bandwidth;
    std::printf("| %d | %d-%d | %.2f | %.0f | %.2f | %.0f | %.2f | %.0f%% |\n", b,
                kContext + kWarmupSteps + 1, kContext + kWarmupSteps + kTimedSteps, step_s * 1e3,
                b / step_s, touched / kTimedSteps / config.num_layers, step_bytes / 1048576.0,
                floor_s * 1e3, 100.0 * floor_s / step_s);
    std::fflush(stdout);
  }
  return 0;
}
