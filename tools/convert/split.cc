#include "tools/convert/split.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "common/absl_strings.h"
#include "common/logging.h"
#include "common/status.h"
#include "tools/convert/json_writer.h"

namespace moeserve::convert {
namespace {

// LLaMA-MoE's own RotaryEmbedding is built with this base whatever config.json says
// (moeserve honours the rope_theta the converter writes).
constexpr float kLlamaMoeRopeTheta = 10000.0f;

PlannedTensor FromVector(std::string name, std::vector<int64_t> shape, std::vector<float> values) {
  return PlannedTensor{std::move(name), std::move(shape), [values = std::move(values)](float* out) {
                         std::copy(values.begin(), values.end(), out);
                       }};
}

}  // namespace

absl::StatusOr<ConfigFields> SplitConfig(const ModelConfig& dense, DType dtype,
                                         const ConvertOptions& options) {
  const int32_t e = options.num_experts;
  if (dense.intermediate_size % e != 0) {
    return absl::InvalidArgumentError(Cat("--experts ", e, " does not divide the FFN width ",
                                          "(intermediate_size ", dense.intermediate_size,
                                          ") into experts of equal size"));
  }
  if (dense.head_dim * dense.num_heads != dense.hidden_size) {
    return absl::InvalidArgumentError(Cat("head_dim ", dense.head_dim,
                                          " is not hidden_size / num_attention_heads; ",
                                          "LLaMA-MoE cannot express it"));
  }
  if (dense.rope_scaling.kind == RopeScalingKind::kLlama3) {
    return absl::InvalidArgumentError("llama3 RoPE scaling cannot be written as LLaMA-MoE");
  }
  ConfigFields f = LlamaConfigFields(dense, dtype);
  f.erase("attention_bias");
  f.erase("head_dim");
  f["architectures"] = R"(["LlamaMoEForCausalLM"])";
  f["model_type"] = R"("llama_moe")";
  f["pretraining_tp"] = "1";
  if (dense.rope_scaling.kind == RopeScalingKind::kLinear) {
    // LlamaMoEConfig accepts exactly {type, factor}.
    f["rope_scaling"] = JsonWriter()
                            .BeginObject()
                            .Key("factor")
                            .Float(dense.rope_scaling.factor)
                            .Key("type")
                            .String("linear")
                            .EndObject()
                            .str();
  }
  f["num_experts"] = std::to_string(e);
  f["num_selects"] = std::to_string(options.top_k);
  JsonWriter sizes;
  sizes.BeginArray();
  for (int layer = 0; layer < dense.num_layers; ++layer) {
    sizes.BeginArray();
    for (int i = 0; i < e; ++i) sizes.Int(dense.intermediate_size / e);
    sizes.EndArray();
  }
  f["size_experts"] = sizes.EndArray().str();
  f["gate_type"] = R"("TopKBalancedNoisyGate")";
  f["gate_network"] = R"("mlp")";
  f["gate_use_softmax"] = "true";
  f["gate_use_balance"] = "true";
  f["gate_balance_loss_weight"] = "0.01";
  f["gate_add_noise"] = "true";
  f["gate_noise_epsilon"] = "0.01";
  f["calculator_type"] = R"("UniversalCalculator")";
  f["multiply_gate_scores"] = "true";
  const float scale = options.score_scale_factor.value_or(static_cast<float>(e) / options.top_k);
  f["score_scale_factor"] = JsonWriter().Float(scale).str();
  f["add_weight_norm"] = "false";
  f["drop_tokens"] = "true";
  f["dropped_padding"] = R"("zero")";
  f["capacity_factor"] = "1.25";
  return f;
}

absl::Status Split(const std::string& src, const std::string& dst, const ConvertOptions& options) {
  MOESERVE_RETURN_IF_ERROR(ValidateOptions(options));
  MOESERVE_ASSIGN_OR_RETURN(const DenseModel model, LoadDenseModel(src));
  const DType dtype = options.dtype.value_or(model.dtype);
  const ModelConfig& c = model.config;
  MOESERVE_ASSIGN_OR_RETURN(const ConfigFields config, SplitConfig(c, dtype, options));
  if (c.rope_theta != kLlamaMoeRopeTheta) {
    MOESERVE_LOG_WARN(
        "{}: rope_theta is {}; moeserve honours the rope_theta written to config.json, but "
        "LLaMA-MoE's own modeling code uses {} whatever config.json says, so there the split "
        "model's attention would differ from the dense model's",
        src, c.rope_theta, kLlamaMoeRopeTheta);
  }
  MOESERVE_RETURN_IF_ERROR(PrepareOutputDir(dst, options.force));
  MOESERVE_RETURN_IF_ERROR(WriteTextFile(dst + "/config.json", ConfigJsonText(config)));
  MOESERVE_RETURN_IF_ERROR(WriteTokenizerFiles(model, dst));

  const int64_t hidden = c.hidden_size;
  const int64_t inter = c.intermediate_size;
  const int64_t num_experts = options.num_experts;
  const int64_t width = inter / num_experts;  // neurons per expert
  std::mt19937_64 rng(options.seed);
  std::vector<PlannedTensor> plan;
  AddEmbeddingTensor(model, &plan);
  for (int layer = 0; layer < c.num_layers; ++layer) {
    AddLayerTensors(model, layer, &plan);
    const std::string mlp = Cat("model.layers.", layer, ".mlp.");
    plan.push_back(FromVector(mlp + "gate.gate_network.0.weight", {num_experts, hidden},
                              RouterWeights(options.router, num_experts, hidden, &rng)));
    plan.push_back(FromVector(mlp + "gate.gate_network.2.weight", {num_experts, num_experts},
                              RouterWeights(options.router, num_experts, num_experts, &rng)));
    // TopKBalancedNoisyGate's noise projection (training only), zeros as LLaMA-MoE
    // initialises it.
    plan.push_back(FromVector(mlp + "gate.weight_noise.weight", {num_experts, hidden},
                              std::vector<float>(num_experts * hidden, 0.0f)));
    const LayerWeights& w = model.weights.layers[layer];
    const float* gate_up = w.gate_up.data_as<const float>();  // [2 * inter, hidden]
    const float* down = w.down_proj.data_as<const float>();   // [hidden, inter]
    const std::string experts = mlp + "calculator.experts.";
    for (int64_t e = 0; e < num_experts; ++e) {
      plan.push_back(RowSlice(Cat(experts, "weight_gate.", e), gate_up, e * width, width, hidden));
      plan.push_back(
          RowSlice(Cat(experts, "weight_up.", e), gate_up, inter + e * width, width, hidden));
      // Columns [e * width, (e + 1) * width) of down: [hidden, width].
      plan.push_back(PlannedTensor{Cat(experts, "weight_down.", e),
                                   {hidden, width},
                                   [down, inter, hidden, width, e](float* out) {
                                     for (int64_t r = 0; r < hidden; ++r) {
                                       std::memcpy(out + r * width, down + r * inter + e * width,
                                                   width * sizeof(float));
                                     }
                                   }});
    }
  }
  AddFinalTensors(model, &plan);
  MOESERVE_RETURN_IF_ERROR(WriteSafetensorsPlan(dst + "/model.safetensors", plan, dtype));
  MOESERVE_LOG_INFO("split {} into {}: {} layers x {} experts of {} neurons (top-{}), {}", src, dst,
                    c.num_layers, num_experts, width, options.top_k, TorchDtypeName(dtype));
  return absl::OkStatus();
}

}  // namespace moeserve::convert
