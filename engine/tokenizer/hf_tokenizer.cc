#include "engine/tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "common/absl_strings.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/loaders/json_lite.h"
#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/sentencepiece_model.h"
#include "engine/tokenizer/spm_tokenizer.h"

namespace moeserve {
namespace {

using json_lite::Value;

// The Split regexes of the families BpeTokenizer reproduces, exactly as their
// tokenizer.json files spell them (pre_tokenizer.h describes each).
constexpr std::string_view kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Texts of tokens that end generation, as llama.cpp's end-of-generation list (the same as
// gguf_tokenizer.cc's, so a model stops alike whichever format it is loaded from).
constexpr const char* kEndOfGenerationTexts[] = {
    "<|eot_id|>",      "<|im_end|>",         "<|end|>",    "<end_of_turn>",
    "<|endoftext|>",   "<|eom_id|>",         "<EOT>",      "_<EOT>",
    "<|end_of_text|>", "<end_of_utterance>", "<|return|>", "<|call|>",
};

// Reads and parses `path`. NotFound when the file does not exist and `optional` is set
// (callers then use defaults); errors name the file.
absl::StatusOr<std::optional<Value>> ReadJson(const std::string& path, bool optional) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (optional) return std::optional<Value>();
    return absl::NotFoundError(Cat(path, ": cannot open the file"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  absl::StatusOr<Value> value = json_lite::Parse(std::move(buffer).str());
  if (!value.ok()) {
    return absl::InvalidArgumentError(Cat(path, ": ", value.status().message()));
  }
  if (!value->is_object()) {
    return absl::InvalidArgumentError(
        Cat(path, ": expected a JSON object, got ", json_lite::TypeName(*value)));
  }
  return std::optional<Value>(std::move(value).value());
}

absl::Status FieldError(std::string_view path, std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(Cat(path, ": ", field, " ", what));
}

// `field` of `object` when it is a string; nullopt when absent or null.
absl::StatusOr<std::optional<std::string>> OptionalString(const Value& object,
                                                          std::string_view field,
                                                          std::string_view path) {
  const Value* v = object.Find(field);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) {
    return FieldError(path, field, Cat("must be a string, got ", json_lite::TypeName(*v)));
  }
  return std::optional<std::string>(v->as_string());
}

bool BoolOr(const Value& object, std::string_view field, bool fallback) {
  const Value* v = object.Find(field);
  return v != nullptr && v->is_bool() ? std::get<bool>(v->data) : fallback;
}

// The type of a pre_tokenizer or normalizer object, for error messages.
std::string TypeOf(const Value& v) {
  if (v.is_null()) return "null";
  const Value* type = v.Find("type");
  return type != nullptr && type->is_string() ? type->as_string() : std::string("?");
}

// A one-line description of a pre_tokenizer: "Sequence[Split, ByteLevel]".
std::string Describe(const Value& v) {
  std::string out = TypeOf(v);
  const Value* items = v.Find("pretokenizers");
  if (items == nullptr || !items->is_array()) return out;
  out += "[";
  for (size_t i = 0; i < items->as_array().size(); ++i) {
    if (i > 0) out += ", ";
    out += Describe(items->as_array()[i]);
  }
  return out + "]";
}

// Whether `v` is ByteLevel(add_prefix_space=false) with use_regex as given.
bool IsByteLevel(const Value& v, bool use_regex) {
  return TypeOf(v) == "ByteLevel" && !BoolOr(v, "add_prefix_space", false) &&
         BoolOr(v, "use_regex", true) == use_regex;
}

// The Split pre-tokenizer's regex when `v` is Split(Regex, Isolated, invert=false).
std::optional<std::string> SplitRegex(const Value& v) {
  if (TypeOf(v) != "Split" || BoolOr(v, "invert", false)) return std::nullopt;
  const Value* behavior = v.Find("behavior");
  if (behavior == nullptr || !behavior->is_string() || behavior->as_string() != "Isolated") {
    return std::nullopt;
  }
  const Value* pattern = v.Find("pattern");
  const Value* regex = pattern != nullptr ? pattern->Find("Regex") : nullptr;
  if (regex == nullptr || !regex->is_string()) return std::nullopt;
  return regex->as_string();
}

// The BpeVocab::pre recipe for a tokenizer.json pre_tokenizer, or nullopt when it is none of
// the structures BpeTokenizer reproduces exactly.
std::optional<std::string> RecipeFor(const Value& pre) {
  if (IsByteLevel(pre, /*use_regex=*/true)) return "gpt2";
  const Value* items = TypeOf(pre) == "Sequence" ? pre.Find("pretokenizers") : nullptr;
  if (items == nullptr || !items->is_array() || items->as_array().size() != 2) {
    return std::nullopt;
  }
  const Value& first = items->as_array()[0];
  const Value& second = items->as_array()[1];
  if (TypeOf(first) == "Digits" && BoolOr(first, "individual_digits", false) &&
      IsByteLevel(second, /*use_regex=*/true)) {
    return "smollm";
  }
  if (const std::optional<std::string> regex = SplitRegex(first);
      regex.has_value() && IsByteLevel(second, /*use_regex=*/false)) {
    if (*regex == kLlama3Regex) return "llama-bpe";
    if (*regex == kQwen2Regex) return "qwen2";
  }
  return std::nullopt;
}

// How far token ids may run past the number of tokens a tokenizer.json defines.
constexpr int64_t kMaxVocabIdGap = 1 << 16;

// Reads model.vocab, model.merges and added_tokens into *vocab (tokens, token types,
// merges) and fills *ids (token text -> id, added tokens included).
absl::Status ReadModel(const Value& root, const std::string& path, bool metaspace, BpeVocab* vocab,
                       absl::flat_hash_map<std::string, int32_t>* ids) {
  const Value* model = root.Find("model");
  if (model == nullptr || !model->is_object()) {
    return FieldError(path, "model", "is missing or not an object");
  }
  MOESERVE_ASSIGN_OR_RETURN(const std::optional<std::string> type,
                            OptionalString(*model, "type", path));
  if (type != "BPE") {
    return absl::UnimplementedError(Cat(path, ": model.type '", type.value_or("null"),
                                        "' is not supported (supported: 'BPE', byte-level BPE)"));
  }
  if (BoolOr(*model, "byte_fallback", false) && !metaspace) {
    return absl::UnimplementedError(
        Cat(path,
            ": model.byte_fallback is true but the file has no Metaspace pre-tokenizer or "
            "Prepend/Replace(\"\u2581\") normalizer (supported: byte-level BPE, "
            "SentencePiece-style BPE)"));
  }
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    MOESERVE_ASSIGN_OR_RETURN(const std::optional<std::string> affix,
                              OptionalString(*model, field, path));
    if (affix.has_value() && !affix->empty()) {
      return absl::UnimplementedError(
          Cat(path, ": model.", field, " '", *affix, "' is not supported"));
    }
  }
  if (const Value* dropout = model->Find("dropout"); dropout != nullptr && !dropout->is_null()) {
    return absl::UnimplementedError(Cat(path, ": model.dropout is not supported"));
  }

  const Value* vocab_json = model->Find("vocab");
  if (vocab_json == nullptr || !vocab_json->is_object()) {
    return FieldError(path, "model.vocab", "is missing or not an object");
  }
  // Ids index the token tables, so they must stay near the number of tokens the file
  // defines: real vocabularies are dense (holes are rare and small), and one hostile id
  // must not make the tables gigabytes long.
  const Value* added_json = root.Find("added_tokens");
  const int64_t num_defined = static_cast<int64_t>(
      vocab_json->as_object().size() +
      (added_json != nullptr && added_json->is_array() ? added_json->as_array().size() : 0));
  const int64_t id_limit = std::min<int64_t>(num_defined + kMaxVocabIdGap, int64_t{1} << 30);
  std::vector<std::optional<std::string>> tokens;
  std::vector<int32_t> types;
  const auto place = [&](int64_t id, const std::string& text, TokenType type,
                         std::string_view field) -> absl::Status {
    if (id < 0 || id >= id_limit) {
      return FieldError(path, field, Cat("has token '", text, "' with bad id ", id));
    }
    if (static_cast<size_t>(id) >= tokens.size()) {
      tokens.resize(id + 1);
      types.resize(id + 1, static_cast<int32_t>(TokenType::kUnused));
    }
    tokens[id] = text;
    types[id] = static_cast<int32_t>(type);
    (*ids)[text] = static_cast<int32_t>(id);
    return absl::OkStatus();
  };
  for (const auto& [text, id] : vocab_json->as_object()) {
    if (!id.is_int()) {
      return FieldError(path, "model.vocab", Cat("entry '", text, "' is not an integer id"));
    }
    const int64_t i = id.as_int();
    if (i >= 0 && static_cast<size_t>(i) < tokens.size() && tokens[i].has_value()) {
      return FieldError(path, "model.vocab",
                        Cat("gives id ", i, " to both '", *tokens[i], "' and '", text, "'"));
    }
    MOESERVE_RETURN_IF_ERROR(place(i, text, TokenType::kNormal, "model.vocab"));
  }

  if (const Value* added = root.Find("added_tokens"); added != nullptr && !added->is_null()) {
    if (!added->is_array()) return FieldError(path, "added_tokens", "is not an array");
    for (const Value& entry : added->as_array()) {
      const Value* id = entry.Find("id");
      const Value* content = entry.Find("content");
      if (id == nullptr || !id->is_int() || content == nullptr || !content->is_string()) {
        return FieldError(path, "added_tokens", "has an entry without integer id and content");
      }
      if (BoolOr(entry, "lstrip", false) || BoolOr(entry, "rstrip", false) ||
          BoolOr(entry, "single_word", false)) {
        MOESERVE_LOG_WARN(
            "{}: added token '{}' has lstrip/rstrip/single_word; it is matched "
            "literally",
            path, content->as_string());
      }
      const TokenType type =
          BoolOr(entry, "special", false) ? TokenType::kControl : TokenType::kUserDefined;
      MOESERVE_RETURN_IF_ERROR(place(id->as_int(), content->as_string(), type, "added_tokens"));
    }
  }
  if (tokens.empty()) return FieldError(path, "model.vocab", "is empty");
  // Ids nobody names (rare) stay as empty unused tokens: they never match or merge.
  vocab->tokens.reserve(tokens.size());
  for (std::optional<std::string>& token : tokens) {
    vocab->tokens.push_back(std::move(token).value_or(""));
  }
  vocab->token_types = std::move(types);

  const Value* merges = model->Find("merges");
  if (merges == nullptr || !merges->is_array()) {
    return FieldError(path, "model.merges", "is missing or not an array");
  }
  vocab->merges.reserve(merges->as_array().size());
  for (const Value& merge : merges->as_array()) {
    if (merge.is_string()) {
      vocab->merges.push_back(merge.as_string());
      continue;
    }
    // Newer files: ["left", "right"]. BpeVocab keeps "left right"; byte-level tokens never
    // hold a raw space, so the join is unambiguous.
    const bool pair = merge.is_array() && merge.as_array().size() == 2 &&
                      merge.as_array()[0].is_string() && merge.as_array()[1].is_string();
    if (!pair) {
      return FieldError(path, "model.merges", "has an entry that is neither \"a b\" nor [a, b]");
    }
    const std::string& left = merge.as_array()[0].as_string();
    const std::string& right = merge.as_array()[1].as_string();
    if (left.find(' ') != std::string::npos || right.find(' ') != std::string::npos) {
      return FieldError(path, "model.merges",
                        Cat("pair ['", left, "', '", right, "'] holds a space"));
    }
    vocab->merges.push_back(Cat(left, " ", right));
  }

  MOESERVE_ASSIGN_OR_RETURN(const std::optional<std::string> unk,
                            OptionalString(*model, "unk_token", path));
  if (unk.has_value()) {
    const auto it = ids->find(*unk);
    if (it == ids->end()) {
      return FieldError(path, "model.unk_token", Cat("'", *unk, "' is not in the vocabulary"));
    }
    vocab->unk_id = it->second;
  }
  return absl::OkStatus();
}

// Sets vocab->pre from pre_tokenizer and normalizer, checking that BpeTokenizer's recipe
// for it (ignore_merges, NFC) is what the file asks for.
absl::Status ReadPreTokenizer(const Value& root, const std::string& path, BpeVocab* vocab) {
  const Value* pre = root.Find("pre_tokenizer");
  static const Value kNull;
  if (pre == nullptr) pre = &kNull;
  const std::optional<std::string> recipe = RecipeFor(*pre);
  if (!recipe.has_value()) {
    return absl::UnimplementedError(
        Cat(path, ": pre_tokenizer '", Describe(*pre),
            "' is not supported (supported: the GPT-2, SmolLM2, Llama 3 and Qwen2 byte-level "
            "structures)"));
  }
  vocab->pre = *recipe;

  const Value* normalizer = root.Find("normalizer");
  const std::string normalizer_type = normalizer == nullptr ? "null" : TypeOf(*normalizer);
  const std::string want_normalizer = *recipe == "qwen2" ? "NFC" : "null";
  if (normalizer_type != want_normalizer) {
    return absl::UnimplementedError(Cat(path, ": normalizer '", normalizer_type,
                                        "' is not supported with the ", *recipe,
                                        " pre-tokenizer (expected ", want_normalizer, ")"));
  }

  const Value* model = root.Find("model");
  const bool ignore_merges = BoolOr(*model, "ignore_merges", false);
  if (ignore_merges != (*recipe == "llama-bpe")) {
    return absl::UnimplementedError(
        Cat(path, ": model.ignore_merges = ", ignore_merges ? "true" : "false",
            " is not supported with the ", *recipe, " pre-tokenizer"));
  }
  return absl::OkStatus();
}

// Whether post_processor prepends `bos` to a single sequence (Llama 3's TemplateProcessing,
// alone or inside a Sequence).
bool PostProcessorAddsBos(const Value* post, const std::string& bos) {
  if (post == nullptr || bos.empty()) return false;
  if (TypeOf(*post) == "Sequence") {
    const Value* items = post->Find("processors");
    if (items == nullptr || !items->is_array()) return false;
    for (const Value& item : items->as_array()) {
      if (PostProcessorAddsBos(&item, bos)) return true;
    }
    return false;
  }
  if (TypeOf(*post) != "TemplateProcessing") return false;
  const Value* single = post->Find("single");
  if (single == nullptr || !single->is_array() || single->as_array().empty()) return false;
  const Value* special = single->as_array()[0].Find("SpecialToken");
  const Value* id = special != nullptr ? special->Find("id") : nullptr;
  return id != nullptr && id->is_string() && id->as_string() == bos;
}

// A special token of tokenizer_config.json: a string, {"content": ...}, null or absent.
absl::StatusOr<std::optional<std::string>> ConfigToken(const Value& config, std::string_view field,
                                                       std::string_view path) {
  const Value* v = config.Find(field);
  if (v != nullptr && v->is_object()) {
    return OptionalString(*v, "content", Cat(path, ": ", field));
  }
  return OptionalString(config, field, path);
}

// Applies tokenizer_config.json and generation_config.json: bos, eos, add_bos, stop ids.
template <typename Vocab>  // BpeVocab or SpmVocab
absl::Status ReadSpecialTokens(const std::string& dir, const Value* root,
                               const absl::flat_hash_map<std::string, int32_t>& ids, Vocab* vocab) {
  const std::string config_path = dir + "/tokenizer_config.json";
  MOESERVE_ASSIGN_OR_RETURN(const std::optional<Value> config,
                            ReadJson(config_path, /*optional=*/true));
  // An absent field keeps what the vocabulary said (a tokenizer.model names its own).
  const auto lookup = [&](std::string_view field, int32_t current) -> absl::StatusOr<int32_t> {
    if (!config.has_value() || config->Find(field) == nullptr) return current;
    MOESERVE_ASSIGN_OR_RETURN(const std::optional<std::string> text,
                              ConfigToken(*config, field, config_path));
    if (!text.has_value()) return -1;
    const auto it = ids.find(*text);
    if (it == ids.end()) {
      return FieldError(config_path, field, Cat("'", *text, "' is not a token of the vocabulary"));
    }
    return it->second;
  };
  MOESERVE_ASSIGN_OR_RETURN(vocab->bos_id, lookup("bos_token", vocab->bos_id));
  MOESERVE_ASSIGN_OR_RETURN(vocab->eos_id, lookup("eos_token", vocab->eos_id));
  const Value* add_bos = config.has_value() ? config->Find("add_bos_token") : nullptr;
  if (add_bos != nullptr && !add_bos->is_null()) {
    if (!add_bos->is_bool()) return FieldError(config_path, "add_bos_token", "is not a bool");
    vocab->add_bos = std::get<bool>(add_bos->data);
  } else if (vocab->bos_id >= 0) {
    // No explicit setting: HF adds BOS only when the post_processor's template does.
    vocab->add_bos = root != nullptr && PostProcessorAddsBos(root->Find("post_processor"),
                                                             vocab->tokens[vocab->bos_id]);
  }
  if constexpr (std::is_same_v<Vocab, SpmVocab>) {
    const Value* add_eos = config.has_value() ? config->Find("add_eos_token") : nullptr;
    if (add_eos != nullptr && !add_eos->is_null()) {
      if (!add_eos->is_bool()) return FieldError(config_path, "add_eos_token", "is not a bool");
      vocab->add_eos = std::get<bool>(add_eos->data);
    }
  }

  const auto n = static_cast<int64_t>(vocab->tokens.size());
  const auto add_stop = [&](int64_t id) {
    if (id >= 0 && id < n &&
        std::find(vocab->stop_ids.begin(), vocab->stop_ids.end(), id) == vocab->stop_ids.end()) {
      vocab->stop_ids.push_back(static_cast<int32_t>(id));
    }
  };
  add_stop(vocab->eos_id);

  const std::string generation_path = dir + "/generation_config.json";
  MOESERVE_ASSIGN_OR_RETURN(const std::optional<Value> generation,
                            ReadJson(generation_path, /*optional=*/true));
  const Value* eos = generation.has_value() ? generation->Find("eos_token_id") : nullptr;
  if (eos != nullptr && !eos->is_null()) {
    std::vector<int64_t> eos_ids;
    if (eos->is_int()) {
      eos_ids.push_back(eos->as_int());
    } else if (eos->is_array()) {
      for (const Value& id : eos->as_array()) {
        if (!id.is_int()) return FieldError(generation_path, "eos_token_id", "has a non-integer");
        eos_ids.push_back(id.as_int());
      }
    } else {
      return FieldError(generation_path, "eos_token_id", "is neither an integer nor a list");
    }
    for (const int64_t id : eos_ids) {
      if (id < 0 || id >= n) {
        return FieldError(generation_path, "eos_token_id",
                          Cat(id, " is outside the vocabulary of ", n, " tokens"));
      }
      if (vocab->eos_id < 0) vocab->eos_id = static_cast<int32_t>(id);
      add_stop(id);
    }
  }
  for (int64_t id = 0; id < n; ++id) {
    if (vocab->token_types[id] != static_cast<int32_t>(TokenType::kControl)) continue;
    for (const char* text : kEndOfGenerationTexts) {
      if (vocab->tokens[id] == text) add_stop(id);
    }
  }
  return absl::OkStatus();
}

// --- SentencePiece-style BPE (Llama 2, Mistral) -------------------------------------------

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// Whether `v` is Replace(String " " -> "▁") (as normalizer) or Replace("▁" -> " ") (decoder).
bool IsReplace(const Value& v, std::string_view from, std::string_view to) {
  if (TypeOf(v) != "Replace") return false;
  const Value* pattern = v.Find("pattern");
  const Value* string = pattern != nullptr ? pattern->Find("String") : nullptr;
  const Value* content = v.Find("content");
  return string != nullptr && string->is_string() && string->as_string() == from &&
         content != nullptr && content->is_string() && content->as_string() == to;
}

// The items of a Sequence `v` (under `key`), or `v` alone.
std::vector<const Value*> SequenceItems(const Value& v, std::string_view key) {
  std::vector<const Value*> items;
  const Value* list = TypeOf(v) == "Sequence" ? v.Find(key) : nullptr;
  if (list != nullptr && list->is_array()) {
    for (const Value& item : list->as_array()) items.push_back(&item);
  } else if (!v.is_null()) {
    items.push_back(&v);
  }
  return items;
}

// Whether tokenizer.json describes SentencePiece-style BPE: spaces spelled "▁" by a
// Metaspace pre-tokenizer or a Prepend/Replace normalizer.
bool IsMetaspaceStyle(const Value& root) {
  if (const Value* pre = root.Find("pre_tokenizer"); pre != nullptr) {
    for (const Value* item : SequenceItems(*pre, "pretokenizers")) {
      if (TypeOf(*item) == "Metaspace") return true;
    }
  }
  if (const Value* normalizer = root.Find("normalizer"); normalizer != nullptr) {
    for (const Value* item : SequenceItems(*normalizer, "normalizers")) {
      if (TypeOf(*item) == "Prepend" || IsReplace(*item, " ", kMetaspace)) return true;
    }
  }
  return false;
}

// One-line description of a normalizer / decoder for errors: "Sequence[Prepend, Replace]".
std::string DescribeSequence(const Value* v, std::string_view key) {
  if (v == nullptr || v->is_null()) return "null";
  std::string out = TypeOf(*v);
  if (out != "Sequence") return out;
  out += "[";
  const std::vector<const Value*> items = SequenceItems(*v, key);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += TypeOf(*items[i]);
  }
  return out + "]";
}

absl::Status UnsupportedMetaspace(std::string_view path, std::string_view what,
                                  std::string_view got) {
  return absl::UnimplementedError(
      Cat(path, ": ", what, " '", got,
          "' is not supported for SentencePiece-style BPE (supported: normalizer "
          "Sequence[Prepend(\"\u2581\"), Replace(\" \", \"\u2581\")] or a Metaspace "
          "pre-tokenizer; decoder Sequence[Replace, ByteFallback, Fuse, Strip] or Metaspace)"));
}

// Normalizer, pre-tokenizer and decoder of a SentencePiece-style tokenizer.json.
absl::Status ReadMetaspaceRecipe(const Value& root, const std::string& path, SpmVocab* vocab) {
  static const Value kNull;
  const Value* normalizer = root.Find("normalizer");
  const Value* pre = root.Find("pre_tokenizer");
  if (normalizer == nullptr) normalizer = &kNull;
  if (pre == nullptr) pre = &kNull;

  // Either the normalizer spells spaces (Llama 2's "legacy" files) or Metaspace does.
  const std::vector<const Value*> norms = SequenceItems(*normalizer, "normalizers");
  const bool prepend_replace =
      norms.size() == 2 && TypeOf(*norms[0]) == "Prepend" && norms[0]->Find("prepend") != nullptr &&
      norms[0]->Find("prepend")->is_string() &&
      norms[0]->Find("prepend")->as_string() == kMetaspace && IsReplace(*norms[1], " ", kMetaspace);
  const bool replace_only = norms.size() == 1 && IsReplace(*norms[0], " ", kMetaspace);
  if (prepend_replace || replace_only) {
    if (!pre->is_null()) return UnsupportedMetaspace(path, "pre_tokenizer", Describe(*pre));
    vocab->prefix = prepend_replace ? SpmPrefix::kPrependEach : SpmPrefix::kNever;
  } else if (!normalizer->is_null()) {
    return UnsupportedMetaspace(path, "normalizer", DescribeSequence(normalizer, "normalizers"));
  } else if (TypeOf(*pre) == "Metaspace") {
    MOESERVE_ASSIGN_OR_RETURN(const std::optional<std::string> replacement,
                              OptionalString(*pre, "replacement", path));
    if (replacement != kMetaspace) {
      return UnsupportedMetaspace(path, "pre_tokenizer Metaspace replacement",
                                  replacement.value_or("null"));
    }
    MOESERVE_ASSIGN_OR_RETURN(const std::optional<std::string> scheme,
                              OptionalString(*pre, "prepend_scheme", path));
    if (!scheme.has_value()) {  // files before tokenizers 0.15: add_prefix_space
      vocab->prefix =
          BoolOr(*pre, "add_prefix_space", true) ? SpmPrefix::kAlways : SpmPrefix::kNever;
    } else if (*scheme == "first") {
      vocab->prefix = SpmPrefix::kFirst;
    } else if (*scheme == "always") {
      vocab->prefix = SpmPrefix::kAlways;
    } else if (*scheme == "never") {
      vocab->prefix = SpmPrefix::kNever;
    } else {
      return UnsupportedMetaspace(path, "pre_tokenizer Metaspace prepend_scheme", *scheme);
    }
    vocab->split_on_metaspace = BoolOr(*pre, "split", true);
  } else {
    return UnsupportedMetaspace(path, "pre_tokenizer", Describe(*pre));
  }

  const Value* model = root.Find("model");
  vocab->byte_fallback = BoolOr(*model, "byte_fallback", false);
  if (BoolOr(*model, "ignore_merges", false)) {
    return absl::UnimplementedError(
        Cat(path, ": model.ignore_merges = true is not supported for SentencePiece-style BPE"));
  }

  const Value* decoder = root.Find("decoder");
  if (decoder != nullptr && TypeOf(*decoder) == "Metaspace") {
    // Per token: "▁" -> " ", and the first token loses its leading space; no byte fallback.
    MOESERVE_ASSIGN_OR_RETURN(const std::optional<std::string> scheme,
                              OptionalString(*decoder, "prepend_scheme", path));
    vocab->decode_byte_fallback = false;
    vocab->decode_strip_space =
        scheme.has_value() ? *scheme != "never" : BoolOr(*decoder, "add_prefix_space", true);
    return absl::OkStatus();
  }
  const std::vector<const Value*> steps =
      decoder == nullptr ? std::vector<const Value*>() : SequenceItems(*decoder, "decoders");
  const auto is_strip = [](const Value& v) {
    const Value* content = v.Find("content");
    const Value* start = v.Find("start");
    const Value* stop = v.Find("stop");
    return TypeOf(v) == "Strip" && content != nullptr && content->is_string() &&
           content->as_string() == " " && start != nullptr && start->is_int() &&
           start->as_int() == 1 && stop != nullptr && stop->is_int() && stop->as_int() == 0;
  };
  const bool sequence = (steps.size() == 3 || steps.size() == 4) &&
                        IsReplace(*steps[0], kMetaspace, " ") &&
                        TypeOf(*steps[1]) == "ByteFallback" && TypeOf(*steps[2]) == "Fuse" &&
                        (steps.size() == 3 || is_strip(*steps[3]));
  if (!sequence) {
    return UnsupportedMetaspace(path, "decoder", DescribeSequence(decoder, "decoders"));
  }
  vocab->decode_byte_fallback = true;
  vocab->decode_strip_space = steps.size() == 4;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSpm(const std::string& path, SpmVocab vocab) {
  absl::StatusOr<std::unique_ptr<SpmTokenizer>> tokenizer = SpmTokenizer::Create(std::move(vocab));
  if (!tokenizer.ok()) {
    return absl::Status(
        tokenizer.status().code(),
        Cat(path, ": tokenizer (SentencePiece-style BPE): ", tokenizer.status().message()));
  }
  return std::unique_ptr<Tokenizer>(std::move(tokenizer).value());
}

// tokenizer.json with SentencePiece-style BPE.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadMetaspaceTokenizer(const std::string& dir,
                                                                  const std::string& path,
                                                                  const Value& root) {
  BpeVocab bpe;
  absl::flat_hash_map<std::string, int32_t> ids;
  MOESERVE_RETURN_IF_ERROR(ReadModel(root, path, /*metaspace=*/true, &bpe, &ids));
  SpmVocab vocab;
  vocab.merge_order = SpmMergeOrder::kListed;
  vocab.merges.reserve(bpe.merges.size());
  for (const std::string& merge : bpe.merges) {
    const size_t space = merge.find(' ', 1);  // ReadModel checked the form "a b"
    vocab.merges.emplace_back(merge.substr(0, space), merge.substr(space + 1));
  }
  vocab.tokens = std::move(bpe.tokens);
  vocab.token_types = std::move(bpe.token_types);
  vocab.unk_id = bpe.unk_id;
  MOESERVE_RETURN_IF_ERROR(ReadMetaspaceRecipe(root, path, &vocab));
  MOESERVE_RETURN_IF_ERROR(ReadSpecialTokens(dir, &root, ids, &vocab));
  return CreateSpm(path, std::move(vocab));
}

// A directory with tokenizer.model and no tokenizer.json: the tokenizer transformers'
// LlamaTokenizer converts it to, with tokenizer_config.json's legacy and add_prefix_space.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfSentencePieceModel(const std::string& dir) {
  const std::string model_path = dir + "/tokenizer.model";
  std::ifstream in(model_path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat(model_path, ": cannot open the file"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = std::move(buffer).str();
  MOESERVE_ASSIGN_OR_RETURN(const SentencePieceModel model,
                            ParseSentencePieceModel(bytes, model_path));
  MOESERVE_ASSIGN_OR_RETURN(SpmVocab vocab,
                            SpmVocabFromModel(model, model_path, SpmSemantics::kTransformers));

  const std::string config_path = dir + "/tokenizer_config.json";
  MOESERVE_ASSIGN_OR_RETURN(const std::optional<Value> config,
                            ReadJson(config_path, /*optional=*/true));
  if (config.has_value()) {
    MOESERVE_ASSIGN_OR_RETURN(const std::optional<std::string> cls,
                              OptionalString(*config, "tokenizer_class", config_path));
    if (cls.has_value() && *cls != "LlamaTokenizer" && *cls != "LlamaTokenizerFast") {
      return absl::UnimplementedError(
          Cat(config_path, ": tokenizer_class '", *cls, "' with only ", model_path,
              " is not supported (supported: LlamaTokenizer, LlamaTokenizerFast)"));
    }
    if (BoolOr(*config, "legacy", false) && vocab.prefix == SpmPrefix::kFirst) {
      vocab.prefix = SpmPrefix::kAlways;
    }
    if (!BoolOr(*config, "add_prefix_space", true)) {
      vocab.prefix = SpmPrefix::kNever;
      vocab.decode_strip_space = false;
    }
  }
  absl::flat_hash_map<std::string, int32_t> ids;
  for (int32_t id = 0; id < static_cast<int32_t>(vocab.tokens.size()); ++id) {
    ids[vocab.tokens[id]] = id;
  }
  vocab.add_bos = false;  // transformers: only when tokenizer_config.json asks
  MOESERVE_RETURN_IF_ERROR(ReadSpecialTokens(dir, nullptr, ids, &vocab));
  return CreateSpm(model_path, std::move(vocab));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfTokenizer(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  std::error_code error;
  if (!std::filesystem::exists(path, error) &&
      std::filesystem::exists(dir + "/tokenizer.model", error)) {
    return LoadHfSentencePieceModel(dir);
  }
  MOESERVE_ASSIGN_OR_RETURN(const std::optional<Value> root, ReadJson(path, /*optional=*/false));
  if (IsMetaspaceStyle(*root)) return LoadMetaspaceTokenizer(dir, path, *root);
  BpeVocab vocab;
  absl::flat_hash_map<std::string, int32_t> ids;
  MOESERVE_RETURN_IF_ERROR(ReadModel(*root, path, /*metaspace=*/false, &vocab, &ids));
  MOESERVE_RETURN_IF_ERROR(ReadPreTokenizer(*root, path, &vocab));
  MOESERVE_RETURN_IF_ERROR(ReadSpecialTokens(dir, &*root, ids, &vocab));
  const std::string pre = vocab.pre;
  absl::StatusOr<std::unique_ptr<BpeTokenizer>> tokenizer = BpeTokenizer::Create(std::move(vocab));
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(), Cat(path, ": tokenizer (pre-tokenizer '", pre,
                                                       "'): ", tokenizer.status().message()));
  }
  return std::unique_ptr<Tokenizer>(std::move(tokenizer).value());
}

absl::StatusOr<std::string> LoadHfChatTemplate(const std::string& dir) {
  const std::string config_path = dir + "/tokenizer_config.json";
  MOESERVE_ASSIGN_OR_RETURN(const std::optional<Value> config,
                            ReadJson(config_path, /*optional=*/true));
  const Value* chat = config.has_value() ? config->Find("chat_template") : nullptr;
  if (chat != nullptr && chat->is_string()) return chat->as_string();
  if (chat != nullptr && chat->is_array()) {
    for (const Value& entry : chat->as_array()) {
      const Value* name = entry.Find("name");
      const Value* source = entry.Find("template");
      if (name != nullptr && name->is_string() && name->as_string() == "default" &&
          source != nullptr && source->is_string()) {
        return source->as_string();
      }
    }
  } else if (chat != nullptr && !chat->is_null()) {
    return FieldError(config_path, "chat_template",
                      Cat("must be a string or a list, got ", json_lite::TypeName(*chat)));
  }

  const std::string jinja_path = dir + "/chat_template.jinja";
  std::ifstream in(jinja_path, std::ios::binary);
  if (in) {
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
  }
  return absl::NotFoundError(Cat(dir, ": no chat template (neither ", config_path, " chat_template",
                                 chat != nullptr && chat->is_array() ? " named 'default'" : "",
                                 " nor ", jinja_path, ")"));
}

}  // namespace moeserve
