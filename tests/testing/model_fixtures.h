// Loading whole models in tests: a Hugging Face checkpoint directory or a GGUF file into
// host f32 weights with its config, and greedy runs of prompts through an Engine. Header
// only: tests that include it link moeserve_engine.
#ifndef MOESERVE_TESTS_TESTING_MODEL_FIXTURES_H_
#define MOESERVE_TESTS_TESTING_MODEL_FIXTURES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "engine/engine.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/loaders/hf_config.h"
#include "engine/loaders/tensor_source.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"

namespace moeserve::testing {

struct HostModel {
  ModelConfig config;
  std::unique_ptr<TensorSource> source;  // null for GGUF files
  ModelWeights weights;                  // host f32
};

// config.json and the weights (safetensors or .bin) of a checkpoint directory.
inline absl::StatusOr<HostModel> LoadHfCheckpoint(const std::string& dir) {
  HostModel m;
  MOESERVE_ASSIGN_OR_RETURN(m.config, ModelConfigFromHfConfig(dir + "/config.json"));
  MOESERVE_ASSIGN_OR_RETURN(m.source, OpenHfCheckpoint(dir));
  MOESERVE_ASSIGN_OR_RETURN(m.weights, LoadHfWeights(*m.source, m.config));
  return m;
}

inline absl::StatusOr<HostModel> LoadGgufModel(const std::string& path) {
  HostModel m;
  MOESERVE_ASSIGN_OR_RETURN(std::unique_ptr<gguf::GgufFile> file, gguf::GgufFile::Open(path));
  MOESERVE_ASSIGN_OR_RETURN(m.config, ModelConfigFromGguf(*file));
  MOESERVE_ASSIGN_OR_RETURN(m.weights, LoadGgufWeights(*file, m.config));
  return m;
}

// Submits every prompt at once, greedy, max_tokens each with EOS ignored, and collects
// the tokens of each (fewer when a request ends early or times out).
inline std::vector<std::vector<int32_t>> GreedyTokens(
    Engine& engine, const std::vector<std::vector<int32_t>>& prompts, int32_t max_tokens) {
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (const std::vector<int32_t>& prompt : prompts) {
    Request r;
    r.id = "greedy-" + std::to_string(handles.size());
    r.prompt_token_ids = prompt;
    r.sampling.temperature = 0.0f;
    r.sampling.max_tokens = max_tokens;
    r.sampling.ignore_eos = true;
    absl::StatusOr<std::shared_ptr<RequestHandle>> handle = engine.Submit(std::move(r));
    if (!handle.ok()) return {};
    handles.push_back(*std::move(handle));
  }
  std::vector<std::vector<int32_t>> tokens(handles.size());
  for (size_t i = 0; i < handles.size(); ++i) {
    while (true) {
      std::optional<RequestOutput> out = handles[i]->Next(absl::Seconds(300));
      if (!out.has_value()) break;
      tokens[i].insert(tokens[i].end(), out->token_ids.begin(), out->token_ids.end());
      if (out->finished()) break;
    }
  }
  return tokens;
}

}  // namespace moeserve::testing

#endif  // MOESERVE_TESTS_TESTING_MODEL_FIXTURES_H_
