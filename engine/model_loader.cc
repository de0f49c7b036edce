#include "engine/model_loader.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/loaders/hf_config.h"
#include "engine/loaders/tensor_source.h"
#include "engine/tokenizer/gguf_tokenizer.h"
#include "engine/tokenizer/hf_tokenizer.h"

namespace moeserve {
namespace {

// The tokenizer may be smaller than the embedding (HF pads vocabularies to a multiple of
// 64 or 128), never larger: a token id past the embedding would index out of bounds.
absl::Status CheckVocabulary(const std::string& path, const Tokenizer& tokenizer,
                             const ModelConfig& config) {
  if (tokenizer.vocab_size() > config.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the tokenizer has ", tokenizer.vocab_size(),
                     " tokens but the model's embedding has only ", config.vocab_size, " rows"));
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadedModel> LoadGguf(const std::string& path) {
  LoadedModel model;
  model.path = path;
  MOESERVE_ASSIGN_OR_RETURN(std::shared_ptr<gguf::GgufFile> file, gguf::GgufFile::Open(path));
  MOESERVE_ASSIGN_OR_RETURN(model.config, ModelConfigFromGguf(*file));
  MOESERVE_ASSIGN_OR_RETURN(model.tokenizer, LoadGgufTokenizer(*file));
  MOESERVE_RETURN_IF_ERROR(CheckVocabulary(path, *model.tokenizer, model.config));
  if (absl::StatusOr<std::string> source = file->GetString("tokenizer.chat_template");
      source.ok()) {
    model.chat_template = *std::move(source);
  }
  model.load_weights = [file, config = model.config] { return LoadGgufWeights(*file, config); };
  return model;
}

absl::StatusOr<LoadedModel> LoadHfDirectory(const std::string& dir) {
  LoadedModel model;
  model.path = dir;
  MOESERVE_ASSIGN_OR_RETURN(model.config, ModelConfigFromHfConfig(dir + "/config.json"));
  if (model.config.name.empty()) {
    model.config.name = std::filesystem::path(dir).lexically_normal().filename().string();
  }
  MOESERVE_ASSIGN_OR_RETURN(model.tokenizer, LoadHfTokenizer(dir));
  MOESERVE_RETURN_IF_ERROR(CheckVocabulary(dir, *model.tokenizer, model.config));
  absl::StatusOr<std::string> source = LoadHfChatTemplate(dir);
  if (source.ok()) {
    model.chat_template = *std::move(source);
  } else if (!absl::IsNotFound(source.status())) {
    return source.status();
  }
  MOESERVE_ASSIGN_OR_RETURN(std::shared_ptr<TensorSource> tensors, OpenHfCheckpoint(dir));
  model.load_weights = [tensors, config = model.config] { return LoadHfWeights(*tensors, config); };
  return model;
}

}  // namespace

absl::StatusOr<LoadedModel> LoadModel(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) return LoadHfDirectory(path);
  return LoadGguf(path);
}

}  // namespace moeserve
