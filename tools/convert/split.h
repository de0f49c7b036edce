// moeserve-convert split: the LLaMA-MoE (v1) recipe. Every layer's FFN neurons are
// partitioned into E experts of I/E neurons each, contiguously (expert e takes neurons
// [e*I/E, (e+1)*I/E): those rows of gate and up, those columns of down), behind a new MLP
// gate (W2 tanh(W1 x), random normal with std kRouterInitStd from the seed, or zeros),
// written as a llama_moe checkpoint (LlamaMoEForCausalLM) with score_scale_factor E/K by
// default. Since the experts partition the dense FFN, the dense output is the sum of all E
// expert outputs: with K = E, a zero gate (scores 1/K each) and --score-scale-factor K the
// converted model computes exactly the dense one (up to summation order).
#ifndef MOESERVE_TOOLS_CONVERT_SPLIT_H_
#define MOESERVE_TOOLS_CONVERT_SPLIT_H_

#include <string>

#include "absl/status/status.h"
#include "tools/convert/checkpoint_writer.h"

namespace moeserve::convert {

// config.json of the split model: the Llama fields plus LLaMA-MoE's (num_experts,
// num_selects, size_experts, the gate and calculator settings). InvalidArgument when the
// dense model cannot be written as LLaMA-MoE (I not divisible by E, llama3 RoPE scaling,
// head_dim other than hidden_size / num_attention_heads).
absl::StatusOr<ConfigFields> SplitConfig(const ModelConfig& dense, DType dtype,
                                         const ConvertOptions& options);

// Converts the dense model at `src` into `dst` (as Upcycle does).
absl::Status Split(const std::string& src, const std::string& dst, const ConvertOptions& options);

}  // namespace moeserve::convert

#endif  // MOESERVE_TOOLS_CONVERT_SPLIT_H_
