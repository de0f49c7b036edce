#include "tools/convert/checkpoint_writer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <system_error>
#include <utility>

#include "common/absl_strings.h"
#include "common/logging.h"
#include "common/status.h"
#include "tools/convert/json_writer.h"
#include "tools/convert/safetensors_writer.h"
#include "tools/convert/tokenizer_json_writer.h"

namespace moeserve::convert {
namespace fs = std::filesystem;

namespace {

std::string IntJson(int64_t v) { return std::to_string(v); }
std::string BoolJson(bool v) { return v ? "true" : "false"; }
std::string FloatJson(float v) { return JsonWriter().Float(v).str(); }
std::string StringJson(const std::string& v) { return JsonQuote(v); }

// All of `tensor` (f32), with its own shape.
PlannedTensor Whole(std::string name, const Tensor& tensor) {
  std::vector<int64_t> shape;
  for (int i = 0; i < tensor.ndim(); ++i) shape.push_back(tensor.dim(i));
  return PlannedTensor{std::move(name), std::move(shape),
                       [from = tensor.data_as<const float>(), n = tensor.num_elements()](
                           float* dst) { std::memcpy(dst, from, n * sizeof(float)); }};
}

// Copies src to dst when src exists. Returns whether it did.
absl::StatusOr<bool> CopyIfPresent(const fs::path& src, const fs::path& dst) {
  std::error_code error;
  if (!fs::is_regular_file(src, error)) return false;
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing, error);
  if (error) {
    return absl::PermissionDeniedError(
        Cat("cannot copy ", src.string(), " to ", dst.string(), ": ", error.message()));
  }
  return true;
}

}  // namespace

absl::Status ValidateOptions(const ConvertOptions& options) {
  if (options.num_experts < 1) {
    return absl::InvalidArgumentError(
        Cat("--experts ", options.num_experts, " must be at least 1"));
  }
  if (options.top_k < 1 || options.top_k > options.num_experts) {
    return absl::InvalidArgumentError(
        Cat("--top-k ", options.top_k, " must be in [1, --experts ", options.num_experts, "]"));
  }
  if (options.score_scale_factor.has_value() &&
      !(std::isfinite(*options.score_scale_factor) && *options.score_scale_factor > 0.0f)) {
    return absl::InvalidArgumentError(
        Cat("--score-scale-factor ", *options.score_scale_factor, " must be a positive number"));
  }
  return absl::OkStatus();
}

absl::Status PrepareOutputDir(const std::string& dst, bool force) {
  std::error_code error;
  if (fs::exists(dst, error)) {
    if (!fs::is_directory(dst, error)) {
      return absl::InvalidArgumentError(Cat(dst, ": DST exists and is not a directory"));
    }
    if (!fs::is_empty(dst, error) && !force) {
      return absl::FailedPreconditionError(
          Cat(dst, ": DST exists and is not empty (pass --force to write into it)"));
    }
    return absl::OkStatus();
  }
  fs::create_directories(dst, error);
  if (error) {
    return absl::PermissionDeniedError(Cat(dst, ": cannot create DST: ", error.message()));
  }
  return absl::OkStatus();
}

const char* TorchDtypeName(DType dtype) {
  switch (dtype) {
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
    default:
      return "float32";
  }
}

ConfigFields LlamaConfigFields(const ModelConfig& config, DType dtype) {
  ConfigFields f;
  f["attention_bias"] = BoolJson(false);
  f["attention_dropout"] = "0.0";
  f["bos_token_id"] = config.bos_token_id >= 0 ? IntJson(config.bos_token_id) : "null";
  if (config.eos_token_ids.empty()) {
    f["eos_token_id"] = "null";
  } else if (config.eos_token_ids.size() == 1) {
    f["eos_token_id"] = IntJson(config.eos_token_ids[0]);
  } else {
    JsonWriter eos;
    eos.BeginArray();
    for (const int32_t id : config.eos_token_ids) eos.Int(id);
    f["eos_token_id"] = eos.EndArray().str();
  }
  f["head_dim"] = IntJson(config.head_dim);
  f["hidden_act"] = StringJson("silu");
  f["hidden_size"] = IntJson(config.hidden_size);
  f["initializer_range"] = "0.02";
  f["intermediate_size"] = IntJson(config.intermediate_size);
  f["max_position_embeddings"] = IntJson(config.max_position_embeddings);
  f["num_attention_heads"] = IntJson(config.num_heads);
  f["num_hidden_layers"] = IntJson(config.num_layers);
  f["num_key_value_heads"] = IntJson(config.num_kv_heads);
  f["rms_norm_eps"] = FloatJson(config.rms_norm_eps);
  f["rope_theta"] = FloatJson(config.rope_theta);
  const RopeScaling& s = config.rope_scaling;
  JsonWriter rope;
  switch (s.kind) {
    case RopeScalingKind::kNone:
      rope.Null();
      break;
    case RopeScalingKind::kLinear:
      rope.BeginObject().Key("factor").Float(s.factor).Key("rope_type").String("linear");
      rope.EndObject();
      break;
    case RopeScalingKind::kLlama3:
      rope.BeginObject().Key("factor").Float(s.factor);
      rope.Key("high_freq_factor").Float(s.high_freq_factor);
      rope.Key("low_freq_factor").Float(s.low_freq_factor);
      rope.Key("original_max_position_embeddings").Int(s.original_max_position_embeddings);
      rope.Key("rope_type").String("llama3").EndObject();
      break;
  }
  f["rope_scaling"] = rope.str();
  f["tie_word_embeddings"] = BoolJson(config.tie_word_embeddings);
  f["torch_dtype"] = StringJson(TorchDtypeName(dtype));
  f["use_cache"] = BoolJson(true);
  f["vocab_size"] = IntJson(config.vocab_size);
  return f;
}

std::string ConfigJsonText(const ConfigFields& fields) {
  JsonWriter json(2);
  json.BeginObject();
  for (const auto& [key, value] : fields) json.Key(key).Raw(value);
  json.EndObject();
  return json.str() + "\n";
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(Cat(path, ": cannot create the file"));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) return absl::DataLossError(Cat(path, ": write failed"));
  return absl::OkStatus();
}

absl::Status WriteTokenizerFiles(const DenseModel& model, const std::string& dst) {
  if (model.gguf != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(const HfTokenizerFiles files, TokenizerFilesFromGguf(*model.gguf));
    MOESERVE_RETURN_IF_ERROR(WriteTextFile(dst + "/tokenizer.json", files.tokenizer_json));
    MOESERVE_RETURN_IF_ERROR(
        WriteTextFile(dst + "/tokenizer_config.json", files.tokenizer_config_json));
    return WriteTextFile(dst + "/generation_config.json", files.generation_config_json);
  }
  const fs::path src(model.path);
  bool has_tokenizer = false;
  for (const char* name :
       {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
        "chat_template.jinja", "added_tokens.json", "vocab.json", "merges.txt"}) {
    MOESERVE_ASSIGN_OR_RETURN(const bool copied, CopyIfPresent(src / name, fs::path(dst) / name));
    if (copied && (std::string_view(name) == "tokenizer.json" ||
                   std::string_view(name) == "tokenizer.model")) {
      has_tokenizer = true;
    }
  }
  if (!has_tokenizer) {
    MOESERVE_LOG_WARN("{}: no tokenizer.json or tokenizer.model; {} gets no tokenizer", model.path,
                      dst);
  }
  MOESERVE_ASSIGN_OR_RETURN(
      const bool copied,
      CopyIfPresent(src / "generation_config.json", fs::path(dst) / "generation_config.json"));
  if (copied) return absl::OkStatus();
  ConfigFields generation;
  const ConfigFields llama = LlamaConfigFields(model.config, DType::kF32);
  generation["bos_token_id"] = llama.at("bos_token_id");
  generation["eos_token_id"] = llama.at("eos_token_id");
  return WriteTextFile(dst + "/generation_config.json", ConfigJsonText(generation));
}

PlannedTensor RowSlice(std::string name, const float* matrix, int64_t row_begin, int64_t rows,
                       int64_t cols) {
  const float* from = matrix + row_begin * cols;
  return PlannedTensor{std::move(name), {rows, cols}, [from, n = rows * cols](float* dst) {
                         std::memcpy(dst, from, n * sizeof(float));
                       }};
}

void AddEmbeddingTensor(const DenseModel& model, std::vector<PlannedTensor>* plan) {
  plan->push_back(Whole("model.embed_tokens.weight", model.weights.embedding));
}

void AddLayerTensors(const DenseModel& model, int layer, std::vector<PlannedTensor>* plan) {
  const ModelConfig& c = model.config;
  const LayerWeights& w = model.weights.layers[layer];
  const std::string prefix = Cat("model.layers.", layer, ".");
  const int64_t q_rows = int64_t{c.num_heads} * c.head_dim;
  const int64_t kv_rows = int64_t{c.num_kv_heads} * c.head_dim;
  const float* qkv = w.qkv.data_as<const float>();  // [q_rows + 2 * kv_rows, hidden]
  plan->push_back(Whole(prefix + "input_layernorm.weight", w.attn_norm));
  plan->push_back(RowSlice(prefix + "self_attn.q_proj.weight", qkv, 0, q_rows, c.hidden_size));
  plan->push_back(
      RowSlice(prefix + "self_attn.k_proj.weight", qkv, q_rows, kv_rows, c.hidden_size));
  plan->push_back(
      RowSlice(prefix + "self_attn.v_proj.weight", qkv, q_rows + kv_rows, kv_rows, c.hidden_size));
  plan->push_back(Whole(prefix + "self_attn.o_proj.weight", w.o_proj));
  plan->push_back(Whole(prefix + "post_attention_layernorm.weight", w.ffn_norm));
}

void AddFinalTensors(const DenseModel& model, std::vector<PlannedTensor>* plan) {
  plan->push_back(Whole("model.norm.weight", model.weights.final_norm));
  if (!model.config.tie_word_embeddings) {
    plan->push_back(Whole("lm_head.weight", model.weights.lm_head));
  }
}

std::vector<float> RouterWeights(RouterInit init, int64_t rows, int64_t cols,
                                 std::mt19937_64* rng) {
  std::vector<float> out(rows * cols, 0.0f);
  if (init == RouterInit::kZero) return out;
  // Uniform in (0, 1] from the top 53 bits, so log() never sees 0.
  const auto uniform = [rng] { return (static_cast<double>((*rng)() >> 11) + 1.0) * 0x1p-53; };
  for (size_t i = 0; i < out.size(); i += 2) {
    const double radius = std::sqrt(-2.0 * std::log(uniform()));
    const double angle = 2.0 * std::numbers::pi * uniform();
    out[i] = static_cast<float>(kRouterInitStd * radius * std::cos(angle));
    if (i + 1 < out.size())
      out[i + 1] = static_cast<float>(kRouterInitStd * radius * std::sin(angle));
  }
  return out;
}

absl::Status WriteSafetensorsPlan(const std::string& path, const std::vector<PlannedTensor>& plan,
                                  DType dtype) {
  std::vector<SafetensorsTensor> entries;
  int64_t largest = 0;
  for (const PlannedTensor& tensor : plan) {
    entries.push_back({tensor.name, dtype, tensor.shape});
    largest = std::max(largest, NumElements(tensor.shape));
  }
  MOESERVE_ASSIGN_OR_RETURN(
      std::unique_ptr<SafetensorsWriter> writer,
      SafetensorsWriter::Create(path, std::move(entries), {{"format", "pt"}}));
  std::vector<float> scratch(largest);
  for (const PlannedTensor& tensor : plan) {
    const int64_t n = NumElements(tensor.shape);
    tensor.fill(scratch.data());
    MOESERVE_RETURN_IF_ERROR(writer->Write(scratch.data(), n));
  }
  return writer->Finish();
}

}  // namespace moeserve::convert
