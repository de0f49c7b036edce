// TokenizerFilesFromGguf: the tokenizer.json the converter writes for SmolLM2 tokenizes the
// fixture corpus (ids from HF `tokenizers`, tests/fixtures/smollm2_tokenizer_cases.json)
// exactly, read back by moeserve's hf_tokenizer; small hand-built GGUFs check each
// pre-tokenizer recipe against moeserve's GGUF tokenizer, and the errors.
#include "tools/convert/tokenizer_json_writer.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/absl_strings.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/loaders/hf_config.h"
#include "engine/tokenizer/gguf_tokenizer.h"
#include "engine/tokenizer/hf_tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/byte_level.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/test_paths.h"
#include "tools/convert/split.h"

namespace moeserve::convert {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string NewDir(const std::string& name) {
  static int counter = 0;
  return Cat(testing::TempDir(), "/", name, "_", counter++);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The converter's output for the default model, written once: split with E = K = 4 and a
// zero router (bf16 to keep the file small; the tokenizer does not depend on it).
class SmolLm2ConvertedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::DefaultModelPath().empty()) return;
    dst_ = new std::string(NewDir("smollm2_split"));
    status_ = new absl::Status(Split(testing::DefaultModelPath(), *dst_,
                                     {.num_experts = 4,
                                      .top_k = 4,
                                      .router = RouterInit::kZero,
                                      .dtype = DType::kBF16,
                                      .score_scale_factor = 4.0f}));
  }
  void SetUp() override {
    if (dst_ == nullptr) GTEST_SKIP() << "default model not installed (scripts/bootstrap.sh)";
    ASSERT_TRUE(status_->ok()) << *status_;
  }
  static std::string* dst_;
  static absl::Status* status_;
};

std::string* SmolLm2ConvertedTest::dst_ = nullptr;
absl::Status* SmolLm2ConvertedTest::status_ = nullptr;

TEST_F(SmolLm2ConvertedTest, TokenizerMatchesHfTokenizersOnTheCorpus) {
  auto tok = LoadHfTokenizer(*dst_);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const Json cases = Json::parse(
      ReadFile(testing::SourcePath("tests/fixtures/smollm2_tokenizer_cases.json")), nullptr, false);
  ASSERT_TRUE(cases.is_object());
  int checked = 0;
  for (const Json& c : cases["encode_cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ((*tok)->Encode(text, /*parse_special=*/true), want) << Json(text).dump();
    EXPECT_EQ((*tok)->Decode(want, false), c["decoded"].get<std::string>()) << Json(text).dump();
    ++checked;
  }
  EXPECT_GT(checked, 400);
  EXPECT_EQ((*tok)->vocab_size(), 49152);
  EXPECT_EQ((*tok)->bos_id(), 1);
  EXPECT_EQ((*tok)->eos_id(), 2);
  EXPECT_FALSE((*tok)->add_bos_token());
  EXPECT_TRUE((*tok)->IsSpecial(16));
  EXPECT_FALSE((*tok)->IsSpecial(17));
}

TEST_F(SmolLm2ConvertedTest, TokenizerConfigAndChatTemplate) {
  auto chat_template = LoadHfChatTemplate(*dst_);
  ASSERT_TRUE(chat_template.ok()) << chat_template.status();
  auto file = gguf::GgufFile::Open(testing::DefaultModelPath());
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*chat_template, *(*file)->GetString("tokenizer.chat_template"));
  const Json config = Json::parse(ReadFile(*dst_ + "/tokenizer_config.json"));
  EXPECT_EQ(config["bos_token"], "<|im_start|>");
  EXPECT_EQ(config["eos_token"], "<|im_end|>");
  EXPECT_EQ(config["pad_token"], "<|im_end|>");
  EXPECT_EQ(config["unk_token"], "<|endoftext|>");
  EXPECT_EQ(config["add_bos_token"], false);
  const Json generation = Json::parse(ReadFile(*dst_ + "/generation_config.json"));
  EXPECT_EQ(generation,
            Json::parse(R"({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2})"));
  // The same structure as SmolLM2's published tokenizer.json (rebuilt by
  // gen_hf_tokenizer_fixtures.py).
  const Json written = Json::parse(ReadFile(*dst_ + "/tokenizer.json"));
  const Json reference = Json::parse(
      ReadFile(testing::SourcePath("tests/fixtures/hf_tokenizer/smollm2/tokenizer.json")));
  for (const char* key : {"added_tokens", "normalizer", "pre_tokenizer", "decoder", "model"}) {
    EXPECT_EQ(written[key], reference[key]) << key;
  }
}

TEST_F(SmolLm2ConvertedTest, ConfigParsesAsLlamaMoe) {
  auto config = ModelConfigFromHfConfig(*dst_ + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->family, ModelFamily::kLlamaMoe);
  EXPECT_EQ(config->num_layers, 30);
  EXPECT_EQ(config->moe.num_experts, 4);
  EXPECT_EQ(config->moe.top_k, 4);
  EXPECT_EQ(config->moe.expert_intermediate_sizes[29], std::vector<int32_t>(4, 384));
  EXPECT_EQ(config->ScoreScaleFactor(0), 4.0f);
  EXPECT_TRUE(config->tie_word_embeddings);
}

// --- Hand-built GGUF tokenizers ----------------------------------------------------------

struct TinyTokenizer {
  std::string model = "gpt2";
  std::string pre = "gpt2";
  std::vector<std::string> extra_merges = {};  // besides "h e", "l l", "he ll"
  bool duplicate_token = false;
  bool add_bos = false;
};

// 256 byte tokens, merges for "hell", "<|end|>" (control) and "<tool>" (user-defined).
std::string WriteTinyGguf(const TinyTokenizer& t) {
  testing::GgufWriter w;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(testing::ByteLevelChar(b));
    types.push_back(1);
  }
  for (const char* merged : {"he", "ll", "hell"}) {
    tokens.push_back(merged);
    types.push_back(1);
  }
  tokens.push_back("<|end|>");
  types.push_back(3);
  tokens.push_back(t.duplicate_token ? "he" : "<tool>");
  types.push_back(4);
  std::vector<std::string> merges = {"h e", "l l", "he ll"};
  merges.insert(merges.end(), t.extra_merges.begin(), t.extra_merges.end());
  w.AddString("tokenizer.ggml.model", t.model);
  w.AddString("tokenizer.ggml.pre", t.pre);
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  w.AddInt32Array("tokenizer.ggml.token_type", types);
  w.AddStringArray("tokenizer.ggml.merges", merges);
  w.AddUint32("tokenizer.ggml.bos_token_id", 259);
  w.AddUint32("tokenizer.ggml.eos_token_id", 259);
  w.AddBool("tokenizer.ggml.add_bos_token", t.add_bos);
  const std::string path = NewDir("tok") + ".gguf";
  EXPECT_TRUE(w.WriteTo(path).ok());
  return path;
}

absl::Status WriteFiles(const HfTokenizerFiles& files, const std::string& dir) {
  fs::create_directories(dir);
  std::ofstream(dir + "/tokenizer.json") << files.tokenizer_json;
  std::ofstream(dir + "/tokenizer_config.json") << files.tokenizer_config_json;
  std::ofstream(dir + "/generation_config.json") << files.generation_config_json;
  return absl::OkStatus();
}

TEST(TokenizerJsonWriterTest, EveryRecipeMatchesTheGgufTokenizer) {
  const std::vector<std::string> texts = {"hello world", "hell<|end|>hello",
                                          "<tool>he said 12345 ², 'll", "  \n\n  Ａ  é",
                                          "HELLO hello's"};
  for (const std::string pre : {"gpt2", "smollm", "starcoder", "llama-bpe", "qwen2"}) {
    for (const bool add_bos : {false, true}) {
      const std::string path = WriteTinyGguf({.pre = pre, .add_bos = add_bos});
      auto file = gguf::GgufFile::Open(path);
      ASSERT_TRUE(file.ok()) << file.status();
      auto files = TokenizerFilesFromGguf(**file);
      ASSERT_TRUE(files.ok()) << pre << ": " << files.status();
      const std::string dir = NewDir("tok_dir");
      ASSERT_TRUE(WriteFiles(*files, dir).ok());
      auto from_json = LoadHfTokenizer(dir);
      ASSERT_TRUE(from_json.ok()) << pre << ": " << from_json.status();
      auto from_gguf = LoadGgufTokenizer(**file);
      ASSERT_TRUE(from_gguf.ok()) << pre << ": " << from_gguf.status();
      for (const std::string& text : texts) {
        for (const bool special : {false, true}) {
          EXPECT_EQ((*from_json)->Encode(text, special), (*from_gguf)->Encode(text, special))
              << pre << " " << text;
        }
      }
      EXPECT_EQ((*from_json)->Encode("hello", false), (std::vector<int32_t>{258, 'o'}));
      EXPECT_EQ((*from_json)->add_bos_token(), add_bos) << pre;
      EXPECT_EQ((*from_json)->bos_id(), 259);
      EXPECT_TRUE((*from_json)->IsSpecial(259));
      const Json json = Json::parse(files->tokenizer_json);
      EXPECT_EQ(json["model"]["ignore_merges"], pre == "llama-bpe") << pre;
      EXPECT_EQ(json["normalizer"].is_null(), pre != "qwen2") << pre;
      EXPECT_EQ(json["added_tokens"].size(), 2u);
      EXPECT_EQ(json["added_tokens"][1]["special"], false);  // <tool> is user-defined
      const Json& single = json["post_processor"]["single"];
      EXPECT_EQ(single.size(), add_bos ? 2u : 1u) << pre;
    }
  }
}

TEST(TokenizerJsonWriterTest, Errors) {
  const auto error = [](const TinyTokenizer& t) {
    const std::string path = WriteTinyGguf(t);
    auto file = gguf::GgufFile::Open(path);
    EXPECT_TRUE(file.ok());
    return TokenizerFilesFromGguf(**file).status();
  };
  absl::Status s = error({.pre = "falcon"});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("tokenizer.ggml.pre 'falcon'"));
  s = error({.model = "llama"});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("tokenizer.ggml.model 'llama'"));
  s = error({.duplicate_token = true});
  EXPECT_THAT(s.message(), HasSubstr("holds 'he' twice (ids 256 and 260)"));
  s = error({.extra_merges = {"abc"}});
  EXPECT_THAT(s.message(), HasSubstr("tokenizer.ggml.merges[3] 'abc'"));
}

}  // namespace
}  // namespace moeserve::convert
