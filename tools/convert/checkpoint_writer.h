// What upcycle and split share when writing a Hugging Face checkpoint directory: the
// options, the output directory, config.json fields carried over from the dense Llama,
// the tokenizer files, the tensors every Llama-family checkpoint has (embedding,
// attention, norms, lm_head), a seeded router initialiser, and the streaming write of
// model.safetensors from a plan of (name, shape, fill function).
#ifndef MOESERVE_TOOLS_CONVERT_CHECKPOINT_WRITER_H_
#define MOESERVE_TOOLS_CONVERT_CHECKPOINT_WRITER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/dtype.h"
#include "tools/convert/dense_model.h"

namespace moeserve::convert {

enum class RouterInit {
  kRandom,  // normal, mean 0, std kRouterInitStd, from the seed
  kZero,    // all zeros: every expert scores the same
};

inline constexpr float kRouterInitStd = 0.02f;

struct ConvertOptions {
  int32_t num_experts = 0;  // E
  int32_t top_k = 0;        // K
  RouterInit router = RouterInit::kRandom;
  uint64_t seed = 0;
  std::optional<DType> dtype = std::nullopt;  // default: DenseModel::dtype
  bool force = false;                         // write into a non-empty DST
  // split only: LLaMA-MoE's score_scale_factor; default E / K.
  std::optional<float> score_scale_factor = std::nullopt;
};

// InvalidArgument naming the option: E >= 1, 1 <= K <= E.
absl::Status ValidateOptions(const ConvertOptions& options);

// Creates `dst` (and its parents). FailedPrecondition when it exists, is not empty and
// `force` is unset; InvalidArgument when it is a file.
absl::Status PrepareOutputDir(const std::string& dst, bool force);

// config.json as a map from key to serialised JSON value; written with sorted keys, as
// transformers' save_pretrained does.
using ConfigFields = std::map<std::string, std::string>;

// The Llama fields every output carries over: sizes, heads, head_dim, rms_norm_eps,
// rope_theta and rope_scaling, max_position_embeddings, vocab_size, tie_word_embeddings,
// bos/eos ids, torch_dtype (of `dtype`), hidden_act.
ConfigFields LlamaConfigFields(const ModelConfig& config, DType dtype);

// Pretty-printed config.json text (2-space indent, sorted keys, trailing newline).
std::string ConfigJsonText(const ConfigFields& fields);

// "float32", "float16", "bfloat16".
const char* TorchDtypeName(DType dtype);

// Writes `text` to `path`; errors name the path.
absl::Status WriteTextFile(const std::string& path, const std::string& text);

// tokenizer.json, tokenizer_config.json and generation_config.json into `dst`: generated
// from the GGUF metadata for GGUF sources, copied as they are (with special_tokens_map.json,
// tokenizer.model and chat_template.jinja when present) from Hugging Face directories. A
// directory without tokenizer.json gets a warning: the weights still convert.
absl::Status WriteTokenizerFiles(const DenseModel& model, const std::string& dst);

// One tensor of the output: its name, shape and a function writing its
// NumElements(shape) f32 values into `dst`.
struct PlannedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::function<void(float* dst)> fill;
};

// model.embed_tokens, then per layer input_layernorm, self_attn.{q,k,v,o}_proj and
// post_attention_layernorm are what the expert layouts leave untouched. The caller adds its
// MLP tensors between AddLayerTensors calls.
void AddEmbeddingTensor(const DenseModel& model, std::vector<PlannedTensor>* plan);
void AddLayerTensors(const DenseModel& model, int layer, std::vector<PlannedTensor>* plan);
// model.norm and, unless tied, lm_head.
void AddFinalTensors(const DenseModel& model, std::vector<PlannedTensor>* plan);

// Rows [row_begin, row_begin + rows) of a row-major [*, cols] matrix.
PlannedTensor RowSlice(std::string name, const float* matrix, int64_t row_begin, int64_t rows,
                       int64_t cols);

// Fresh router weights [rows, cols]: zeros, or normal(0, kRouterInitStd) drawn from `rng`
// with a Box-Muller transform of its 53-bit uniforms (the same numbers on every platform).
std::vector<float> RouterWeights(RouterInit init, int64_t rows, int64_t cols, std::mt19937_64* rng);

// Writes dst/model.safetensors from `plan` in order, every tensor in `dtype`, one tensor in
// memory at a time.
absl::Status WriteSafetensorsPlan(const std::string& path, const std::vector<PlannedTensor>& plan,
                                  DType dtype);

}  // namespace moeserve::convert

#endif  // MOESERVE_TOOLS_CONVERT_CHECKPOINT_WRITER_H_
