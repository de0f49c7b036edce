#include "tools/convert/upcycle.h"

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "common/absl_strings.h"
#include "common/logging.h"
#include "common/status.h"

namespace moeserve::convert {

ConfigFields UpcycleConfig(const ModelConfig& dense, DType dtype, const ConvertOptions& options) {
  ConfigFields f = LlamaConfigFields(dense, dtype);
  f.erase("attention_bias");  // not a Mixtral key: its attention has no biases
  f["architectures"] = R"(["MixtralForCausalLM"])";
  f["model_type"] = R"("mixtral")";
  f["num_local_experts"] = std::to_string(options.num_experts);
  f["num_experts_per_tok"] = std::to_string(options.top_k);
  f["output_router_logits"] = "false";
  f["router_aux_loss_coef"] = "0.02";
  f["router_jitter_noise"] = "0.0";
  f["sliding_window"] = "null";
  return f;
}

absl::Status Upcycle(const std::string& src, const std::string& dst,
                     const ConvertOptions& options) {
  MOESERVE_RETURN_IF_ERROR(ValidateOptions(options));
  MOESERVE_ASSIGN_OR_RETURN(const DenseModel model, LoadDenseModel(src));
  MOESERVE_RETURN_IF_ERROR(PrepareOutputDir(dst, options.force));
  const DType dtype = options.dtype.value_or(model.dtype);
  const ModelConfig& c = model.config;
  MOESERVE_RETURN_IF_ERROR(
      WriteTextFile(dst + "/config.json", ConfigJsonText(UpcycleConfig(c, dtype, options))));
  MOESERVE_RETURN_IF_ERROR(WriteTokenizerFiles(model, dst));

  const int64_t hidden = c.hidden_size;
  const int64_t inter = c.intermediate_size;
  std::mt19937_64 rng(options.seed);
  std::vector<PlannedTensor> plan;
  AddEmbeddingTensor(model, &plan);
  for (int layer = 0; layer < c.num_layers; ++layer) {
    AddLayerTensors(model, layer, &plan);
    const LayerWeights& w = model.weights.layers[layer];
    const std::string moe = Cat("model.layers.", layer, ".block_sparse_moe.");
    // Router weights are drawn now, layer by layer, so the seed fixes them whatever order
    // the writer runs in.
    std::vector<float> router =
        RouterWeights(options.router, options.num_experts, hidden, &rng);  // [E, hidden]
    plan.push_back(PlannedTensor{moe + "gate.weight",
                                 {options.num_experts, hidden},
                                 [router = std::move(router)](float* out) {
                                   std::copy(router.begin(), router.end(), out);
                                 }});
    const float* gate_up = w.gate_up.data_as<const float>();  // [2 * inter, hidden]
    const float* down = w.down_proj.data_as<const float>();   // [hidden, inter]
    for (int e = 0; e < options.num_experts; ++e) {
      const std::string expert = Cat(moe, "experts.", e, ".");
      plan.push_back(RowSlice(expert + "w1.weight", gate_up, 0, inter, hidden));
      plan.push_back(RowSlice(expert + "w2.weight", down, 0, hidden, inter));
      plan.push_back(RowSlice(expert + "w3.weight", gate_up, inter, inter, hidden));
    }
  }
  AddFinalTensors(model, &plan);
  MOESERVE_RETURN_IF_ERROR(WriteSafetensorsPlan(dst + "/model.safetensors", plan, dtype));
  MOESERVE_LOG_INFO("upcycled {} into {}: {} layers x {} experts (top-{}), {}", src, dst,
                    c.num_layers, options.num_experts, options.top_k, TorchDtypeName(dtype));
  return absl::OkStatus();
}

}  // namespace moeserve::convert
