#include "engine/loaders/hf_config.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/absl_strings.h"
#include "common/status.h"
#include "engine/loaders/json_lite.h"

namespace moeserve {
namespace {

using Json = json_lite::Value;

// Typed access to config keys. Absent keys and JSON null both mean "use the default", as
// they do for transformers' config classes.

class ConfigReader {
 public:
  ConfigReader(const Json& root, std::string source) : root_(root), source_(std::move(source)) {}

  absl::Status Error(std::string_view key, std::string_view what) const {
    return absl::InvalidArgumentError(Cat(source_, ": '", key, "' ", what));
  }

  // The member `key` of `object` (default: the root), or nullptr when absent or null.
  const Json* Get(std::string_view key, const Json* object = nullptr) const {
    const Json* found = (object != nullptr ? object : &root_)->Find(key);
    return found == nullptr || found->is_null() ? nullptr : found;
  }
  bool Has(std::string_view key) const { return Get(key) != nullptr; }

  absl::StatusOr<int64_t> IntValue(std::string_view key, const Json& v) const {
    if (!v.is_int()) {
      return Error(key, Cat("must be an integer, not ", Describe(v)));
    }
    return v.as_int();
  }
  absl::StatusOr<int32_t> Int32Value(std::string_view key, const Json& v) const {
    MOESERVE_ASSIGN_OR_RETURN(int64_t value, IntValue(key, v));
    if (value < -(int64_t{1} << 30) || value > (int64_t{1} << 30)) {
      return Error(key, Cat("= ", value, " is out of range"));
    }
    return static_cast<int32_t>(value);
  }

  absl::StatusOr<int32_t> Int(std::string_view key, int32_t fallback,
                              const Json* object = nullptr) const {
    const Json* v = Get(key, object);
    return v == nullptr ? fallback : Int32Value(key, *v);
  }
  absl::StatusOr<int32_t> RequiredInt(std::string_view key) const {
    const Json* v = Get(key);
    if (v == nullptr) return Error(key, "is required but missing");
    return Int32Value(key, *v);
  }
  // Integers are numbers too (rope_theta: 10000).
  absl::StatusOr<double> Double(std::string_view key, double fallback,
                                const Json* object = nullptr) const {
    const Json* v = Get(key, object);
    if (v == nullptr) return fallback;
    if (!(v->is_int() || v->is_double())) {
      return Error(key, Cat("must be a number, not ", Describe(*v)));
    }
    return v->as_number();
  }
  absl::StatusOr<bool> Bool(std::string_view key, bool fallback) const {
    const Json* v = Get(key);
    if (v == nullptr) return fallback;
    if (!v->is_bool()) {
      return Error(key, Cat("must be true or false, not ", Describe(*v)));
    }
    return std::get<bool>(v->data);
  }
  absl::StatusOr<std::string> String(std::string_view key, std::string fallback,
                                     const Json* object = nullptr) const {
    const Json* v = Get(key, object);
    if (v == nullptr) return fallback;
    if (!v->is_string()) {
      return Error(key, Cat("must be a string, not ", Describe(*v)));
    }
    return v->as_string();
  }
  // An integer or a list of integers (eos_token_id); empty when absent.
  absl::StatusOr<std::vector<int32_t>> IntOrIntList(std::string_view key,
                                                    std::vector<int32_t> fallback) const {
    const Json* v = Get(key);
    if (v == nullptr) return fallback;
    std::vector<int32_t> out;
    if (!v->is_array()) {
      MOESERVE_ASSIGN_OR_RETURN(int32_t one, Int32Value(key, *v));
      out.push_back(one);
      return out;
    }
    for (const Json& item : v->as_array()) {
      MOESERVE_ASSIGN_OR_RETURN(int32_t one, Int32Value(key, item));
      out.push_back(one);
    }
    return out;
  }

  static std::string Describe(const Json& v) {
    if (v.is_string()) return Cat("the string \"", v.as_string(), "\"");
    if (v.is_int() || v.is_double()) return Cat("the number ", v.as_number());
    return std::string(json_lite::TypeName(v));
  }

 private:
  const Json& root_;
  std::string source_;
};

// Defaults of each family's config class for keys a config.json may leave out.
struct FamilyDefaults {
  ModelFamily family;
  const char* model_type;
  int32_t max_position_embeddings;
  double rms_norm_eps;
  double rope_theta;
  int32_t kv_heads;  // 0: num_attention_heads
  int32_t bos;       // -1: none
  std::vector<int32_t> eos;
};

const std::vector<FamilyDefaults>& AllFamilies() {
  // transformers 5.x LlamaConfig, MixtralConfig, Qwen2MoeConfig, OlmoeConfig;
  // pjlab-sys4nlp/llama-moe LlamaMoEConfig; deepseek-ai/deepseek-moe-16b DeepseekConfig.
  static const auto* const kFamilies = new std::vector<FamilyDefaults>{
      {ModelFamily::kLlama, "llama", 2048, 1e-6, 10000.0, 0, 1, {2}},
      {ModelFamily::kMixtral, "mixtral", 4096 * 32, 1e-5, 1e6, 8, 1, {2}},
      {ModelFamily::kLlamaMoe, "llama_moe", 2048, 1e-6, 10000.0, 0, 1, {2}},
      {ModelFamily::kQwen2Moe, "qwen2_moe", 32768, 1e-6, 10000.0, 16, -1, {}},
      {ModelFamily::kDeepseek, "deepseek", 2048, 1e-6, 10000.0, 32, 100000, {100001}},
      {ModelFamily::kOlmoe, "olmoe", 4096, 1e-5, 10000.0, 0, -1, {50279}},
  };
  return *kFamilies;
}

// rope_theta and rope_scaling (transformers 4.x files) or rope_parameters (5.x files).
absl::Status ReadRope(const ConfigReader& r, const FamilyDefaults& d, ModelConfig* c) {
  const Json* params = r.Get("rope_parameters");
  const char* params_key = "rope_parameters";
  if (params == nullptr) {
    params = r.Get("rope_scaling");
    params_key = "rope_scaling";
  }
  if (params != nullptr && !params->is_object()) {
    return r.Error(params_key, Cat("must be an object, not ", ConfigReader::Describe(*params)));
  }
  MOESERVE_ASSIGN_OR_RETURN(double theta, r.Double("rope_theta", d.rope_theta));
  if (params != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(theta, r.Double("rope_theta", theta, params));
  }
  // LLaMA-MoE's own LlamaRotaryEmbedding always uses base 10000 (its default above) and its
  // checkpoints state no rope_theta; one that does (moeserve-convert split of a model with
  // another base) is honoured, so the converted model computes what its source did.
  if (!(theta > 0.0)) return r.Error("rope_theta", "must be positive");
  c->rope_theta = static_cast<float>(theta);

  MOESERVE_ASSIGN_OR_RETURN(double partial, r.Double("partial_rotary_factor", 1.0));
  if (params != nullptr) {
    MOESERVE_ASSIGN_OR_RETURN(partial, r.Double("partial_rotary_factor", partial, params));
  }
  if (!(partial > 0.0 && partial <= 1.0)) {
    return r.Error("partial_rotary_factor", "must be in (0, 1]");
  }
  c->rotary_dim = static_cast<int32_t>(c->head_dim * partial);

  if (params == nullptr) return absl::OkStatus();
  MOESERVE_ASSIGN_OR_RETURN(std::string type, r.String("type", "default", params));
  MOESERVE_ASSIGN_OR_RETURN(type, r.String("rope_type", type, params));
  const std::string key = Cat(params_key, ".rope_type");
  RopeScaling& s = c->rope_scaling;
  if (type == "default") {
    s.kind = RopeScalingKind::kNone;
    return absl::OkStatus();
  }
  if (type != "linear" && type != "llama3") {
    return r.Error(key, Cat("= \"", type,
                            "\" is not supported (moeserve runs \"default\", \"linear\" and "
                            "\"llama3\" RoPE)"));
  }
  if (r.Get("factor", params) == nullptr) {
    return r.Error(Cat(params_key, ".factor"), "is required for this rope type");
  }
  MOESERVE_ASSIGN_OR_RETURN(double factor, r.Double("factor", 1.0, params));
  s.factor = static_cast<float>(factor);
  if (type == "linear") {
    // LLaMA-MoE divides positions rather than inverse frequencies by the factor: the same
    // angles up to f32 rounding.
    s.kind = RopeScalingKind::kLinear;
    return absl::OkStatus();
  }
  s.kind = RopeScalingKind::kLlama3;
  for (const char* name : {"low_freq_factor", "high_freq_factor"}) {
    if (r.Get(name, params) == nullptr) {
      return r.Error(Cat(params_key, ".", name), "is required for llama3 RoPE");
    }
  }
  MOESERVE_ASSIGN_OR_RETURN(double low, r.Double("low_freq_factor", 1.0, params));
  MOESERVE_ASSIGN_OR_RETURN(double high, r.Double("high_freq_factor", 4.0, params));
  s.low_freq_factor = static_cast<float>(low);
  s.high_freq_factor = static_cast<float>(high);
  MOESERVE_ASSIGN_OR_RETURN(
      s.original_max_position_embeddings,
      r.Int("original_max_position_embeddings", c->max_position_embeddings, params));
  return absl::OkStatus();
}

// Keys that change inference math in ways we do not implement: refuse rather than run a
// different model.
absl::Status RejectUnsupported(const ConfigReader& r, const ModelConfig& c) {
  MOESERVE_ASSIGN_OR_RETURN(std::string act, r.String("hidden_act", "silu"));
  if (act != "silu") return r.Error("hidden_act", Cat("= \"", act, "\" is not supported"));
  MOESERVE_ASSIGN_OR_RETURN(bool mlp_bias, r.Bool("mlp_bias", false));
  if (mlp_bias) return r.Error("mlp_bias", "= true is not supported");
  MOESERVE_ASSIGN_OR_RETURN(bool sliding, r.Bool("use_sliding_window", false));
  if (sliding) return r.Error("use_sliding_window", "= true is not supported");
  if (c.family == ModelFamily::kMixtral || c.family == ModelFamily::kLlama) {
    MOESERVE_ASSIGN_OR_RETURN(int32_t window, r.Int("sliding_window", 0));
    if (window > 0 && window < c.max_position_embeddings) {
      return r.Error("sliding_window",
                     Cat("= ", window, " (sliding-window attention) is not supported"));
    }
  }
  if (r.Has("clip_qkv")) return r.Error("clip_qkv", "is not supported");
  return absl::OkStatus();
}

// Sizes allocated from config counts before anything else checks them are bounded: the
// deepest models have a few hundred layers and the largest MoE ones tens of thousands of
// experts over all layers.
constexpr int32_t kMaxLayers = 1 << 16;
constexpr int64_t kMaxLayerExperts = int64_t{1} << 22;

std::pair<const char*, const char*> MoeKeys(ModelFamily family);

// REQUIRES: c.moe.num_experts and the family's layer rule are read.
absl::StatusOr<std::vector<std::vector<int32_t>>> UniformExperts(const ConfigReader& r,
                                                                 const ModelConfig& c,
                                                                 int32_t size) {
  if (int64_t{c.num_layers} * c.moe.num_experts > kMaxLayerExperts) {
    return r.Error(MoeKeys(c.family).first,
                   Cat("= ", c.moe.num_experts, " experts in each of ", c.num_layers,
                       " layers is more than moeserve supports (", kMaxLayerExperts, " in all)"));
  }
  std::vector<std::vector<int32_t>> sizes(c.num_layers);
  if (c.moe.num_experts <= 0) return sizes;  // ReadMoe reports the count
  for (int layer = 0; layer < c.num_layers; ++layer) {
    if (c.IsMoeLayer(layer)) sizes[layer].assign(c.moe.num_experts, size);
  }
  return sizes;
}

absl::Status ReadLlamaMoe(const ConfigReader& r, ModelConfig* c) {
  MoeConfig& m = c->moe;
  MOESERVE_ASSIGN_OR_RETURN(m.num_experts, r.Int("num_experts", 16));
  MOESERVE_ASSIGN_OR_RETURN(m.top_k, r.Int("num_selects", 4));
  if (m.num_experts <= 0) return r.Error("num_experts", "must be positive");
  if (m.top_k <= 0 || m.top_k > m.num_experts) {
    return r.Error("num_selects",
                   Cat("= ", m.top_k, " must be in [1, num_experts = ", m.num_experts, "]"));
  }
  MOESERVE_ASSIGN_OR_RETURN(std::string gate, r.String("gate_network", "mlp"));
  if (gate == "mlp") {
    m.router = RouterKind::kLlamaMoeMlpTanh;
  } else if (gate == "linear") {
    m.router = RouterKind::kLlamaMoeLinear;
  } else {
    return r.Error("gate_network", Cat("= \"", gate, "\" must be \"mlp\" or \"linear\""));
  }
  MOESERVE_ASSIGN_OR_RETURN(m.gate_use_softmax, r.Bool("gate_use_softmax", true));
  MOESERVE_ASSIGN_OR_RETURN(m.multiply_gate_scores, r.Bool("multiply_gate_scores", true));

  if (const Json* scale = r.Get("score_scale_factor"); scale != nullptr) {
    if (scale->is_array()) {
      if (static_cast<int64_t>(scale->as_array().size()) != c->num_layers) {
        return r.Error("score_scale_factor", Cat("lists ", scale->as_array().size(), " values for ",
                                                 c->num_layers, " layers"));
      }
      for (const Json& v : scale->as_array()) {
        if (!(v.is_int() || v.is_double())) {
          return r.Error("score_scale_factor",
                         Cat("entries must be numbers, not ", ConfigReader::Describe(v)));
        }
        m.score_scale_factors.push_back(static_cast<float>(v.as_number()));
      }
    } else {
      MOESERVE_ASSIGN_OR_RETURN(double one, r.Double("score_scale_factor", 1.0));
      m.score_scale_factors.assign(c->num_layers, static_cast<float>(one));
    }
  } else {
    m.score_scale_factors.assign(c->num_layers, 1.0f);
  }

  const Json* sizes = r.Get("size_experts");
  if (sizes == nullptr) {
    // LinearGLUExperts splits intermediate_size evenly and asserts it divides.
    if (c->intermediate_size % m.num_experts != 0) {
      return r.Error("intermediate_size", Cat("= ", c->intermediate_size,
                                              " is not divisible by num_experts = ", m.num_experts,
                                              " and size_experts is absent"));
    }
    MOESERVE_ASSIGN_OR_RETURN(m.expert_intermediate_sizes,
                              UniformExperts(r, *c, c->intermediate_size / m.num_experts));
    return absl::OkStatus();
  }
  if (!sizes->is_array() || static_cast<int64_t>(sizes->as_array().size()) != c->num_layers) {
    return r.Error("size_experts", Cat("must be a list of ", c->num_layers,
                                       " per-layer lists (num_hidden_layers)"));
  }
  for (int layer = 0; layer < c->num_layers; ++layer) {
    const Json& row = sizes->as_array()[layer];
    const std::string key = Cat("size_experts[", layer, "]");
    if (!row.is_array() || static_cast<int64_t>(row.as_array().size()) != m.num_experts) {
      return r.Error(key, Cat("must list ", m.num_experts, " expert sizes (num_experts)"));
    }
    std::vector<int32_t> layer_sizes;
    int64_t total = 0;
    for (const Json& v : row.as_array()) {
      MOESERVE_ASSIGN_OR_RETURN(int32_t size, r.Int32Value(key, v));
      if (size <= 0) return r.Error(key, Cat("has a non-positive expert size ", size));
      layer_sizes.push_back(size);
      total += size;
    }
    if (total != c->intermediate_size) {
      return r.Error(key,
                     Cat("sums to ", total, ", not intermediate_size = ", c->intermediate_size));
    }
    m.expert_intermediate_sizes.push_back(std::move(layer_sizes));
  }
  return absl::OkStatus();
}

// The expert count and top-k keys each family uses, for error messages.
std::pair<const char*, const char*> MoeKeys(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlama:
    case ModelFamily::kMixtral:
      return {"num_local_experts", "num_experts_per_tok"};
    case ModelFamily::kLlamaMoe:
      return {"num_experts", "num_selects"};
    case ModelFamily::kDeepseek:
      return {"n_routed_experts", "num_experts_per_tok"};
    case ModelFamily::kQwen2Moe:
    case ModelFamily::kOlmoe:
      return {"num_experts", "num_experts_per_tok"};
  }
  return {"num_experts", "num_experts_per_tok"};
}

absl::Status ReadMoeFamily(const ConfigReader& r, ModelConfig* c);

absl::Status ReadMoe(const ConfigReader& r, ModelConfig* c) {
  MOESERVE_RETURN_IF_ERROR(ReadMoeFamily(r, c));
  const MoeConfig& m = c->moe;
  const auto [experts_key, top_k_key] = MoeKeys(c->family);
  // Mixtral, OLMoE and LLaMA-MoE configs are MoE by definition; the others may be dense.
  const bool needs_experts = c->family == ModelFamily::kMixtral ||
                             c->family == ModelFamily::kOlmoe ||
                             c->family == ModelFamily::kLlamaMoe;
  if (m.num_experts < 0 || (needs_experts && m.num_experts == 0)) {
    return r.Error(experts_key, Cat("= ", m.num_experts, " must be positive"));
  }
  if (m.num_experts > 0 && (m.top_k <= 0 || m.top_k > m.num_experts)) {
    return r.Error(top_k_key,
                   Cat("= ", m.top_k, " must be in [1, ", experts_key, " = ", m.num_experts, "]"));
  }
  return absl::OkStatus();
}

absl::Status ReadMoeFamily(const ConfigReader& r, ModelConfig* c) {
  MoeConfig& m = c->moe;
  switch (c->family) {
    case ModelFamily::kLlama: {
      // Llama3-8x8b-MoE: a llama config with Mixtral's expert keys; routed as Mixtral.
      MOESERVE_ASSIGN_OR_RETURN(int32_t experts, r.Int("num_local_experts", 0));
      if (experts <= 1) return absl::OkStatus();
      m.num_experts = experts;
      MOESERVE_ASSIGN_OR_RETURN(m.top_k, r.Int("num_experts_per_tok", 2));
      m.norm_topk_prob = true;
      MOESERVE_ASSIGN_OR_RETURN(m.expert_intermediate_sizes,
                                UniformExperts(r, *c, c->intermediate_size));
      return absl::OkStatus();
    }
    case ModelFamily::kMixtral: {
      MOESERVE_ASSIGN_OR_RETURN(m.num_experts, r.Int("num_local_experts", 8));
      MOESERVE_ASSIGN_OR_RETURN(m.top_k, r.Int("num_experts_per_tok", 2));
      m.norm_topk_prob = true;
      MOESERVE_ASSIGN_OR_RETURN(m.expert_intermediate_sizes,
                                UniformExperts(r, *c, c->intermediate_size));
      return absl::OkStatus();
    }
    case ModelFamily::kLlamaMoe:
      return ReadLlamaMoe(r, c);
    case ModelFamily::kQwen2Moe: {
      MOESERVE_ASSIGN_OR_RETURN(m.num_experts, r.Int("num_experts", 60));
      MOESERVE_ASSIGN_OR_RETURN(m.top_k, r.Int("num_experts_per_tok", 4));
      MOESERVE_ASSIGN_OR_RETURN(m.norm_topk_prob, r.Bool("norm_topk_prob", false));
      MOESERVE_ASSIGN_OR_RETURN(m.decoder_sparse_step, r.Int("decoder_sparse_step", 1));
      if (m.decoder_sparse_step <= 0) return r.Error("decoder_sparse_step", "must be positive");
      if (const Json* only = r.Get("mlp_only_layers"); only != nullptr) {
        if (!only->is_array()) {
          return r.Error("mlp_only_layers", "must be a list of layer indices");
        }
        for (const Json& v : only->as_array()) {
          MOESERVE_ASSIGN_OR_RETURN(int32_t layer, r.Int32Value("mlp_only_layers", v));
          m.mlp_only_layers.push_back(layer);
        }
      }
      MOESERVE_ASSIGN_OR_RETURN(int32_t expert_size, r.Int("moe_intermediate_size", 1408));
      MOESERVE_ASSIGN_OR_RETURN(m.shared_expert_intermediate_size,
                                r.Int("shared_expert_intermediate_size", 5632));
      if (m.shared_expert_intermediate_size > 0) {
        m.num_shared_experts = 1;
        m.shared_expert_gate = true;
      }
      if (m.num_experts == 0) {
        m.top_k = 0;
        m.shared_expert_intermediate_size = m.num_shared_experts = 0;
        m.shared_expert_gate = false;
        return absl::OkStatus();
      }
      MOESERVE_ASSIGN_OR_RETURN(m.expert_intermediate_sizes, UniformExperts(r, *c, expert_size));
      return absl::OkStatus();
    }
    case ModelFamily::kDeepseek: {
      // DeepseekConfig leaves n_routed_experts None for dense models.
      MOESERVE_ASSIGN_OR_RETURN(m.num_experts, r.Int("n_routed_experts", 0));
      if (m.num_experts == 0) return absl::OkStatus();
      if (!r.Has("num_experts_per_tok")) {
        return r.Error("num_experts_per_tok", "is required when n_routed_experts is set");
      }
      MOESERVE_ASSIGN_OR_RETURN(m.top_k, r.Int("num_experts_per_tok", 0));
      MOESERVE_ASSIGN_OR_RETURN(m.norm_topk_prob, r.Bool("norm_topk_prob", false));
      MOESERVE_ASSIGN_OR_RETURN(m.first_k_dense_replace, r.Int("first_k_dense_replace", 0));
      MOESERVE_ASSIGN_OR_RETURN(m.moe_layer_freq, r.Int("moe_layer_freq", 1));
      if (m.moe_layer_freq <= 0) return r.Error("moe_layer_freq", "must be positive");
      MOESERVE_ASSIGN_OR_RETURN(std::string scoring, r.String("scoring_func", "softmax"));
      if (scoring != "softmax") {
        return r.Error("scoring_func", Cat("= \"", scoring, "\" is not supported (softmax is)"));
      }
      MOESERVE_ASSIGN_OR_RETURN(int32_t expert_size, r.Int("moe_intermediate_size", 1407));
      MOESERVE_ASSIGN_OR_RETURN(m.num_shared_experts, r.Int("n_shared_experts", 0));
      // Both are within +-2^30, so the product fits int64 but not always int32.
      const int64_t shared_size = int64_t{m.num_shared_experts} * expert_size;
      if (shared_size < 0 || shared_size > (int64_t{1} << 30)) {
        return r.Error("n_shared_experts",
                       Cat("* moe_intermediate_size = ", shared_size, " is out of range"));
      }
      m.shared_expert_intermediate_size = static_cast<int32_t>(shared_size);
      MOESERVE_ASSIGN_OR_RETURN(m.expert_intermediate_sizes, UniformExperts(r, *c, expert_size));
      return absl::OkStatus();
    }
    case ModelFamily::kOlmoe: {
      MOESERVE_ASSIGN_OR_RETURN(m.num_experts, r.Int("num_experts", 64));
      MOESERVE_ASSIGN_OR_RETURN(m.top_k, r.Int("num_experts_per_tok", 8));
      MOESERVE_ASSIGN_OR_RETURN(m.norm_topk_prob, r.Bool("norm_topk_prob", false));
      MOESERVE_ASSIGN_OR_RETURN(m.expert_intermediate_sizes,
                                UniformExperts(r, *c, c->intermediate_size));
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> FromJson(const Json& root, const std::string& source) {
  if (!root.is_object()) {
    return absl::InvalidArgumentError(Cat(source, ": config.json must hold a JSON object"));
  }
  ConfigReader r(root, source);
  std::string supported;
  for (const FamilyDefaults& f : AllFamilies()) {
    CatAppend(&supported, supported.empty() ? "" : ", ", f.model_type);
  }
  if (!r.Has("model_type")) return r.Error("model_type", "is required but missing");
  MOESERVE_ASSIGN_OR_RETURN(std::string model_type, r.String("model_type", ""));
  const FamilyDefaults* d = nullptr;
  for (const FamilyDefaults& f : AllFamilies()) {
    if (model_type == f.model_type) d = &f;
  }
  if (d == nullptr) {
    return r.Error("model_type",
                   Cat("= \"", model_type, "\" is not supported; moeserve serves ", supported));
  }

  ModelConfig c;
  c.family = d->family;
  c.architecture = model_type;
  MOESERVE_ASSIGN_OR_RETURN(c.name, r.String("_name_or_path", ""));
  MOESERVE_ASSIGN_OR_RETURN(c.vocab_size, r.RequiredInt("vocab_size"));
  MOESERVE_ASSIGN_OR_RETURN(c.hidden_size, r.RequiredInt("hidden_size"));
  MOESERVE_ASSIGN_OR_RETURN(c.intermediate_size, r.RequiredInt("intermediate_size"));
  MOESERVE_ASSIGN_OR_RETURN(c.num_layers, r.RequiredInt("num_hidden_layers"));
  MOESERVE_ASSIGN_OR_RETURN(c.num_heads, r.RequiredInt("num_attention_heads"));
  for (auto [key, value] : {std::pair<const char*, int32_t>{"vocab_size", c.vocab_size},
                            {"hidden_size", c.hidden_size},
                            {"intermediate_size", c.intermediate_size},
                            {"num_hidden_layers", c.num_layers},
                            {"num_attention_heads", c.num_heads}}) {
    if (value <= 0) return r.Error(key, Cat("= ", value, " must be positive"));
  }
  if (c.num_layers > kMaxLayers) {
    return r.Error("num_hidden_layers",
                   Cat("= ", c.num_layers, " is more than moeserve supports (", kMaxLayers, ")"));
  }
  if (root.Find("num_key_value_heads") == nullptr && d->kv_heads > 0) {
    c.num_kv_heads = d->kv_heads;  // a class default, not num_attention_heads
  } else {
    MOESERVE_ASSIGN_OR_RETURN(c.num_kv_heads, r.Int("num_key_value_heads", c.num_heads));
  }
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0) {
    return r.Error("num_key_value_heads", Cat("= ", c.num_kv_heads, " must divide ",
                                              "num_attention_heads = ", c.num_heads));
  }
  if (c.hidden_size % c.num_heads != 0 && !r.Has("head_dim")) {
    return r.Error("num_attention_heads",
                   Cat("= ", c.num_heads, " does not divide hidden_size = ", c.hidden_size));
  }
  MOESERVE_ASSIGN_OR_RETURN(c.head_dim, r.Int("head_dim", c.hidden_size / c.num_heads));
  if (c.family == ModelFamily::kLlamaMoe) c.head_dim = c.hidden_size / c.num_heads;
  MOESERVE_ASSIGN_OR_RETURN(c.max_position_embeddings,
                            r.Int("max_position_embeddings", d->max_position_embeddings));
  MOESERVE_ASSIGN_OR_RETURN(double eps, r.Double("rms_norm_eps", d->rms_norm_eps));
  c.rms_norm_eps = static_cast<float>(eps);
  MOESERVE_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", false));
  MOESERVE_RETURN_IF_ERROR(ReadRope(r, *d, &c));

  switch (c.family) {
    case ModelFamily::kQwen2Moe: {
      // q/k/v carry a bias, o_proj none (4.x hard-codes it; 5.x names it qkv_bias).
      MOESERVE_ASSIGN_OR_RETURN(c.attention_bias, r.Bool("qkv_bias", true));
      break;
    }
    case ModelFamily::kLlama:
    case ModelFamily::kDeepseek:
    case ModelFamily::kOlmoe: {
      MOESERVE_ASSIGN_OR_RETURN(c.attention_bias, r.Bool("attention_bias", false));
      c.attention_out_bias = c.attention_bias;
      break;
    }
    case ModelFamily::kMixtral:
    case ModelFamily::kLlamaMoe:
      break;
  }
  c.qk_norm = c.family == ModelFamily::kOlmoe;

  MOESERVE_ASSIGN_OR_RETURN(c.torch_dtype, r.String("torch_dtype", ""));
  MOESERVE_ASSIGN_OR_RETURN(c.torch_dtype, r.String("dtype", c.torch_dtype));
  MOESERVE_ASSIGN_OR_RETURN(c.bos_token_id, r.Int("bos_token_id", -1));
  if (root.Find("bos_token_id") == nullptr) c.bos_token_id = d->bos;
  MOESERVE_ASSIGN_OR_RETURN(c.eos_token_ids, r.IntOrIntList("eos_token_id", {}));
  if (root.Find("eos_token_id") == nullptr) c.eos_token_ids = d->eos;

  MOESERVE_RETURN_IF_ERROR(RejectUnsupported(r, c));
  MOESERVE_RETURN_IF_ERROR(ReadMoe(r, &c));
  if (absl::Status status = c.Validate(); !status.ok()) {
    return absl::InvalidArgumentError(Cat(source, ": ", status.message()));
  }
  return c;
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfigFromHfConfigText(std::string_view json_text,
                                                        std::string_view source) {
  absl::StatusOr<Json> root = json_lite::Parse(json_text, /*max_depth=*/32);
  if (!root.ok()) {
    return absl::InvalidArgumentError(Cat(source, ": ", root.status().message()));
  }
  return FromJson(*root, std::string(source));
}

absl::StatusOr<ModelConfig> ModelConfigFromHfConfig(const std::string& config_json_path) {
  std::ifstream in(config_json_path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat(config_json_path, ": cannot open the file"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(Cat(config_json_path, ": read failed"));
  return ModelConfigFromHfConfigText(text.str(), config_json_path);
}

}  // namespace moeserve
