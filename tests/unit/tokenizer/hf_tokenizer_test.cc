// LoadHfTokenizer / LoadHfChatTemplate: SmolLM2's model directory (tests/fixtures/
// hf_tokenizer/smollm2, from gen_hf_tokenizer_fixtures.py) against Hugging Face
// `tokenizers` (smollm2_tokenizer_cases.json) and against the same tokenizer read from the
// GGUF file; small hand-written tokenizer.json files for the mapping rules and the errors.
#include "engine/tokenizer/hf_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/gguf_tokenizer.h"
#include "engine/tokenizer/unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/byte_level.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using Json = nlohmann::json;

std::string SmolDir() { return testing::SourcePath("tests/fixtures/hf_tokenizer/smollm2"); }

const Json& Cases() {
  static const Json* cases = [] {
    std::ifstream in(testing::SourcePath("tests/fixtures/smollm2_tokenizer_cases.json"));
    std::stringstream buffer;
    buffer << in.rdbuf();
    return new Json(Json::parse(buffer.str(), nullptr, false));
  }();
  return *cases;
}

// --- SmolLM2's model directory -------------------------------------------------------------

class SmolLm2DirTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = LoadHfTokenizer(SmolDir());
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = std::move(tok).value().release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(tok_, nullptr);
    ASSERT_TRUE(Cases().is_object()) << "fixture missing or malformed";
  }

  static const Tokenizer* tok_;
};

const Tokenizer* SmolLm2DirTest::tok_ = nullptr;

TEST_F(SmolLm2DirTest, Metadata) {
  EXPECT_EQ(tok_->vocab_size(), 49152);
  EXPECT_EQ(tok_->bos_id(), 1);  // <|im_start|>
  EXPECT_EQ(tok_->eos_id(), 2);  // <|im_end|>
  EXPECT_FALSE(tok_->add_bos_token());
  EXPECT_THAT(tok_->stop_ids(), UnorderedElementsAre(2, 0));  // <|im_end|>, <|endoftext|>
  EXPECT_EQ(tok_->FindToken("<|im_start|>"), 1);
  EXPECT_TRUE(tok_->IsSpecial(0));
  EXPECT_TRUE(tok_->IsSpecial(16));
  EXPECT_FALSE(tok_->IsSpecial(17));
  EXPECT_EQ(tok_->TokenBytes(*tok_->FindToken("Ġthe")), " the");
}

TEST_F(SmolLm2DirTest, EncodeAndDecodeMatchHuggingFace) {
  const Json& cases = Cases()["encode_cases"];
  ASSERT_GE(cases.size(), 2000u);
  int matched = 0;
  for (const Json& c : cases) {
    const std::string text = c["text"];
    const std::vector<int32_t> want = c["ids"];
    const std::vector<int32_t> got = tok_->Encode(text, /*parse_special=*/true);
    EXPECT_EQ(got, want) << Json(text).dump();
    matched += got == want;
    EXPECT_EQ(tok_->Decode(want, false), c["decoded"].get<std::string>()) << Json(text).dump();
    EXPECT_EQ(tok_->Decode(want, true), c["decoded_skip_special"].get<std::string>())
        << Json(text).dump();
  }
  EXPECT_EQ(matched, static_cast<int>(cases.size()));
}

TEST_F(SmolLm2DirTest, SameAsTheGgufTokenizer) {
  const std::string model = testing::DefaultModelPath();
  if (model.empty()) GTEST_SKIP() << "SmolLM2 GGUF not installed";
  auto file = gguf::GgufFile::Open(model);
  ASSERT_TRUE(file.ok()) << file.status();
  auto gguf = LoadGgufTokenizer(**file);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  const Tokenizer& g = **gguf;

  EXPECT_EQ(tok_->vocab_size(), g.vocab_size());
  EXPECT_EQ(tok_->bos_id(), g.bos_id());
  EXPECT_EQ(tok_->eos_id(), g.eos_id());
  EXPECT_EQ(tok_->add_bos_token(), g.add_bos_token());
  EXPECT_THAT(tok_->stop_ids(), ::testing::UnorderedElementsAreArray(g.stop_ids()));
  for (int32_t id = 0; id < g.vocab_size(); ++id) {
    ASSERT_EQ(tok_->TokenBytes(id), g.TokenBytes(id)) << id;
    ASSERT_EQ(tok_->IsSpecial(id), g.IsSpecial(id)) << id;
  }
  for (const Json& c : Cases()["encode_cases"]) {
    const std::string text = c["text"];
    for (const bool parse_special : {true, false}) {
      EXPECT_EQ(tok_->Encode(text, parse_special), g.Encode(text, parse_special))
          << Json(text).dump() << " parse_special=" << parse_special;
    }
  }

  auto chat = LoadHfChatTemplate(SmolDir());
  ASSERT_TRUE(chat.ok()) << chat.status();
  auto gguf_chat = (*file)->GetString("tokenizer.chat_template");
  ASSERT_TRUE(gguf_chat.ok()) << gguf_chat.status();
  EXPECT_EQ(*chat, *gguf_chat);
}

TEST_F(SmolLm2DirTest, ChatTemplate) {
  auto chat = LoadHfChatTemplate(SmolDir());
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_THAT(*chat, HasSubstr("<|im_start|>"));
  EXPECT_THAT(*chat, HasSubstr("add_generation_prompt"));
}

Json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return Json::parse(buffer.str(), nullptr, false);
}

std::string WriteDir(const std::string& name,
                     const std::vector<std::pair<std::string, Json>>& files);

// SmolLM2's vocabulary under the Llama 3 and Qwen2 pre-tokenizers (the fields as
// `tokenizers` writes them) against HF's ids for the same texts.
TEST_F(SmolLm2DirTest, LlamaAndQwenRecipesMatchHuggingFace) {
  const Json variants =
      ReadJsonFile(testing::SourcePath("tests/fixtures/hf_tokenizer/smollm2_variants.json"));
  ASSERT_TRUE(variants.is_object()) << "fixture missing or malformed";
  const Json base = ReadJsonFile(SmolDir() + "/tokenizer.json");
  ASSERT_TRUE(base.is_object());
  const Json& cases = Cases()["encode_cases"];
  for (const std::string name : {"llama3", "qwen2"}) {
    const Json& variant = variants[name];
    Json tokenizer = base;
    tokenizer["pre_tokenizer"] = variant["pre_tokenizer"];
    tokenizer["normalizer"] = variant["normalizer"];
    tokenizer["model"]["ignore_merges"] = variant["ignore_merges"];
    auto tok = LoadHfTokenizer(WriteDir("smollm2_" + name, {{"tokenizer.json", tokenizer}}));
    ASSERT_TRUE(tok.ok()) << name << ": " << tok.status();
    ASSERT_EQ(variant["ids"].size(), cases.size());
    int matched = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      const std::string text = cases[i]["text"];
      const std::vector<int32_t> want = variant["ids"][i];
      const std::vector<int32_t> got = (*tok)->Encode(text, /*parse_special=*/true);
      EXPECT_EQ(got, want) << name << " on " << Json(text).dump();
      matched += got == want;
    }
    EXPECT_EQ(matched, static_cast<int>(cases.size())) << name;
  }
}

// --- Hand-written model directories --------------------------------------------------------

using ::moeserve::testing::ByteLevelChar;

// A tokenizer.json: ids 0-255 the bytes, then "he", "ll", "hell", "hello", "Ġw" in merge
// order; added tokens <|endoftext|> 261 and <|im_end|> 262 (special), <tool> 263 (not).
Json TinyTokenizerJson(bool pair_merges) {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteLevelChar(b)] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}};
  Json merges_json = Json::array();
  int id = 256;
  for (const auto& [a, b] : merges) {
    vocab[a + b] = id++;
    merges_json.push_back(pair_merges ? Json::array({a, b}) : Json(a + " " + b));
  }
  Json added = Json::array();
  for (const auto& [token_id, content, special] :
       {std::tuple{261, "<|endoftext|>", true}, std::tuple{262, "<|im_end|>", true},
        std::tuple{263, "<tool>", false}}) {
    added.push_back({{"id", token_id},
                     {"content", content},
                     {"special", special},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"single_word", false},
                     {"normalized", !special}});
  }
  return {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"trim_offsets", true},
        {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges_json}}},
  };
}

// Writes the files of a model directory (name -> JSON, or raw text for .jinja) and returns
// its path.
std::string WriteDir(const std::string& name,
                     const std::vector<std::pair<std::string, Json>>& files) {
  const std::string dir = testing::TempDir() + "/" + name;
  std::filesystem::create_directories(dir);
  for (const auto& [file, content] : files) {
    std::ofstream out(dir + "/" + file, std::ios::binary);
    out << (content.is_string() && file.ends_with(".jinja") ? content.get<std::string>()
                                                            : content.dump());
  }
  return dir;
}

TEST(HfTokenizerTest, StringAndPairMergesGiveTheSameTokenizer) {
  for (const bool pairs : {false, true}) {
    const std::string dir =
        WriteDir(pairs ? "pairs" : "strings", {{"tokenizer.json", TinyTokenizerJson(pairs)}});
    auto tok = LoadHfTokenizer(dir);
    ASSERT_TRUE(tok.ok()) << tok.status();
    EXPECT_EQ((*tok)->vocab_size(), 264);
    EXPECT_EQ((*tok)->Encode("hello world", false),
              (std::vector<int32_t>{259, 260, 'o', 'r', 'l', 'd'}));
    // Special tokens only with parse_special; the non-special <tool> always.
    EXPECT_EQ((*tok)->Encode("<|im_end|><tool>", true), (std::vector<int32_t>{262, 263}));
    EXPECT_EQ((*tok)->Encode("<tool>", false), (std::vector<int32_t>{263}));
    EXPECT_NE((*tok)->Encode("<|im_end|>", false).size(), 1u);
    EXPECT_TRUE((*tok)->IsSpecial(262));
    // No tokenizer_config.json: no bos/eos, but <|endoftext|> and <|im_end|> stop.
    EXPECT_EQ((*tok)->bos_id(), -1);
    EXPECT_EQ((*tok)->eos_id(), -1);
    EXPECT_FALSE((*tok)->add_bos_token());
    EXPECT_THAT((*tok)->stop_ids(), UnorderedElementsAre(261, 262));
  }
}

TEST(HfTokenizerTest, ConfigFilesSetSpecialTokens) {
  Json tokenizer = TinyTokenizerJson(true);
  tokenizer["post_processor"] = {{"type", "Sequence"},
                                 {"processors",
                                  {{{"type", "ByteLevel"}},
                                   {{"type", "TemplateProcessing"},
                                    {"single",
                                     {{{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}},
                                      {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}}}};
  const Json config = {{"bos_token", {{"content", "<|endoftext|>"}, {"special", true}}},
                       {"eos_token", "<|im_end|>"}};
  const Json generation = {{"eos_token_id", {262, 263}}};
  {
    const std::string dir = WriteDir("config", {{"tokenizer.json", tokenizer},
                                                {"tokenizer_config.json", config},
                                                {"generation_config.json", generation}});
    auto tok = LoadHfTokenizer(dir);
    ASSERT_TRUE(tok.ok()) << tok.status();
    EXPECT_EQ((*tok)->bos_id(), 261);
    EXPECT_EQ((*tok)->eos_id(), 262);
    EXPECT_TRUE((*tok)->add_bos_token());  // from the post_processor's template
    EXPECT_THAT((*tok)->stop_ids(), UnorderedElementsAre(261, 262, 263));
  }
  {
    // transformers writes model_max_length = int(1e30), beyond int64.
    const std::string dir = WriteDir("config_huge", {{"tokenizer.json", tokenizer}});
    std::ofstream(dir + "/tokenizer_config.json")
        << R"({"model_max_length": 1000000000000000019884624838656, "x": "99999999999999999999",)"
        << R"( "eos_token": "<|im_end|>", "add_bos_token": false})";
    auto tok = LoadHfTokenizer(dir);
    ASSERT_TRUE(tok.ok()) << tok.status();
    EXPECT_EQ((*tok)->eos_id(), 262);
  }
  {
    Json explicit_config = config;
    explicit_config["add_bos_token"] = false;
    const std::string dir =
        WriteDir("config_no_bos", {{"tokenizer.json", tokenizer},
                                   {"tokenizer_config.json", explicit_config},
                                   {"generation_config.json", {{"eos_token_id", 263}}}});
    auto tok = LoadHfTokenizer(dir);
    ASSERT_TRUE(tok.ok()) << tok.status();
    EXPECT_FALSE((*tok)->add_bos_token());
    EXPECT_THAT((*tok)->stop_ids(), UnorderedElementsAre(261, 262, 263));
  }
}

TEST(HfTokenizerTest, RecognisesTheFamilyPreTokenizers) {
  const std::string llama3 =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const std::string qwen2 =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const auto split_then_byte_level = [](const std::string& regex) {
    return Json{{"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "Split"},
                   {"pattern", {{"Regex", regex}}},
                   {"behavior", "Isolated"},
                   {"invert", false}},
                  {{"type", "ByteLevel"},
                   {"add_prefix_space", false},
                   {"trim_offsets", true},
                   {"use_regex", false}}}}};
  };
  struct Case {
    const char* name;
    Json pre;
    Json normalizer;
    bool ignore_merges;
    std::vector<int32_t> digits;  // Encode("12345")
  };
  const Case cases[] = {
      {"gpt2",
       TinyTokenizerJson(false)["pre_tokenizer"],
       nullptr,
       false,
       {'1', '2', '3', '4', '5'}},
      {"smollm",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Digits"}, {"individual_digits", true}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}}},
       nullptr,
       false,
       {'1', '2', '3', '4', '5'}},
      {"llama3", split_then_byte_level(llama3), nullptr, true, {'1', '2', '3', '4', '5'}},
      {"qwen2", split_then_byte_level(qwen2), {{"type", "NFC"}}, false, {'1', '2', '3', '4', '5'}},
  };
  for (const Case& c : cases) {
    Json tokenizer = TinyTokenizerJson(false);
    tokenizer["pre_tokenizer"] = c.pre;
    tokenizer["normalizer"] = c.normalizer;
    tokenizer["model"]["ignore_merges"] = c.ignore_merges;
    auto tok = LoadHfTokenizer(WriteDir(c.name, {{"tokenizer.json", tokenizer}}));
    ASSERT_TRUE(tok.ok()) << c.name << ": " << tok.status();
    EXPECT_EQ((*tok)->Encode("12345", false), c.digits) << c.name;
    EXPECT_EQ((*tok)->Encode("hello", false), (std::vector<int32_t>{259})) << c.name;
  }
}

// --- Errors name the file ------------------------------------------------------------------

void ExpectError(const Json& tokenizer, const std::string& name, absl::StatusCode code,
                 const std::vector<std::string>& fragments) {
  const std::string dir = WriteDir(name, {{"tokenizer.json", tokenizer}});
  auto tok = LoadHfTokenizer(dir);
  ASSERT_FALSE(tok.ok()) << name;
  EXPECT_EQ(tok.status().code(), code) << name << ": " << tok.status();
  EXPECT_THAT(tok.status().message(), HasSubstr(dir + "/tokenizer.json")) << name;
  for (const std::string& fragment : fragments) {
    EXPECT_THAT(tok.status().message(), HasSubstr(fragment)) << name;
  }
}

TEST(HfTokenizerTest, MissingFile) {
  const std::string dir = WriteDir("empty", {});
  auto tok = LoadHfTokenizer(dir);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tok.status().message(), HasSubstr(dir + "/tokenizer.json"));
}

TEST(HfTokenizerTest, UnsupportedModelType) {
  Json tokenizer = TinyTokenizerJson(false);
  tokenizer["model"]["type"] = "Unigram";
  ExpectError(tokenizer, "unigram", absl::StatusCode::kUnimplemented, {"'Unigram'"});
}

TEST(HfTokenizerTest, ByteFallbackRefused) {
  Json tokenizer = TinyTokenizerJson(false);
  tokenizer["model"]["byte_fallback"] = true;
  ExpectError(tokenizer, "byte_fallback", absl::StatusCode::kUnimplemented, {"byte_fallback"});
}

TEST(HfTokenizerTest, UnknownPreTokenizer) {
  Json tokenizer = TinyTokenizerJson(false);
  tokenizer["pre_tokenizer"] = {{"type", "Whitespace"}};
  ExpectError(tokenizer, "whitespace", absl::StatusCode::kUnimplemented, {"'Whitespace'"});
  // A Split with a regex of no known family.
  tokenizer["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Isolated"}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  ExpectError(tokenizer, "split", absl::StatusCode::kUnimplemented,
              {"'Sequence[Split, ByteLevel]'"});
  // add_prefix_space changes the words; not reproduced.
  tokenizer["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}};
  ExpectError(tokenizer, "prefix_space", absl::StatusCode::kUnimplemented, {"ByteLevel"});
}

TEST(HfTokenizerTest, NormalizerMustMatchTheFamily) {
  Json tokenizer = TinyTokenizerJson(false);
  tokenizer["normalizer"] = {{"type", "NFKC"}};
  ExpectError(tokenizer, "nfkc", absl::StatusCode::kUnimplemented, {"NFKC"});
}

TEST(HfTokenizerTest, BadFields) {
  Json tokenizer = TinyTokenizerJson(false);
  tokenizer["model"]["merges"] = Json::array({Json::array({"h", "e", "x"})});
  ExpectError(tokenizer, "bad_merge", absl::StatusCode::kInvalidArgument, {"model.merges"});
  tokenizer = TinyTokenizerJson(false);
  tokenizer["model"]["merges"] = Json::array({"h q"});
  ExpectError(tokenizer, "unknown_merge", absl::StatusCode::kInvalidArgument, {"h q"});

  const std::string dir = WriteDir("bad_bos", {{"tokenizer.json", TinyTokenizerJson(false)},
                                               {"tokenizer_config.json", {{"bos_token", "<s>"}}}});
  auto tok = LoadHfTokenizer(dir);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr(dir + "/tokenizer_config.json"));
  EXPECT_THAT(tok.status().message(), HasSubstr("bos_token"));
}

// Found by tests/fuzz: an id of 10^8 in a 3 KB file sized the token tables to 4 GB (and
// 2^30 - 1 to 40 GB); ids must stay near the number of tokens the file defines.
TEST(HfTokenizerTest, HugeTokenIdsAreRefused) {
  Json tokenizer = TinyTokenizerJson(false);
  tokenizer["model"]["vocab"]["hello"] = 100000000;
  ExpectError(tokenizer, "huge_vocab_id", absl::StatusCode::kInvalidArgument,
              {"model.vocab", "bad id 100000000"});
  tokenizer = TinyTokenizerJson(false);
  tokenizer["added_tokens"][0]["id"] = (1 << 30) - 1;
  ExpectError(tokenizer, "huge_added_id", absl::StatusCode::kInvalidArgument,
              {"added_tokens", "bad id 1073741823"});
  // A small hole (an id nobody names) is still fine.
  tokenizer = TinyTokenizerJson(false);
  tokenizer["added_tokens"][2]["id"] = 300;
  const std::string dir = WriteDir("small_hole", {{"tokenizer.json", tokenizer}});
  auto tok = LoadHfTokenizer(dir);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 301);
}

// --- Chat templates ------------------------------------------------------------------------

TEST(HfChatTemplateTest, Sources) {
  EXPECT_EQ(LoadHfChatTemplate(
                WriteDir("chat_str", {{"tokenizer_config.json", {{"chat_template", "{{ x }}"}}}}))
                .value_or("?"),
            "{{ x }}");
  const Json list = Json::array(
      {{{"name", "tool_use"}, {"template", "T"}}, {{"name", "default"}, {"template", "D"}}});
  EXPECT_EQ(LoadHfChatTemplate(
                WriteDir("chat_list", {{"tokenizer_config.json", {{"chat_template", list}}}}))
                .value_or("?"),
            "D");
  EXPECT_EQ(LoadHfChatTemplate(WriteDir("chat_jinja", {{"tokenizer_config.json", Json::object()},
                                                       {"chat_template.jinja", "J {{ y }}"}}))
                .value_or("?"),
            "J {{ y }}");
  auto none = LoadHfChatTemplate(WriteDir("chat_none", {}));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace moeserve
