// Byte-level BPE: a tiny hand-made vocabulary (merge order, added tokens, validation),
// the hand-written pre-tokenizers against Oniguruma's splits, and SmolLM2's tokenizer
// from the GGUF file against Hugging Face `tokenizers` (tests/fixtures/
// smollm2_tokenizer_cases.json, from gen_tokenizer_cases.py). The model-backed tests skip
// when the model is not installed.
#include "engine/tokenizer/bpe_tokenizer.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/tokenizer/gguf_tokenizer.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/byte_level.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// --- A tiny vocabulary ---------------------------------------------------------------------

using ::moeserve::testing::ByteLevelChar;

// Ids 0-2 are <|endoftext|>, <|im_start|>, <|im_end|> (control), 3 <tool> (user-defined),
// 4-259 the 256 bytes in byte order, then the merged tokens in merge order.
BpeVocab TinyVocab() {
  BpeVocab v;
  v.tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>"};
  v.token_types = {3, 3, 3, 4};
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(ByteLevelChar(static_cast<uint8_t>(b)));
    v.token_types.push_back(1);
  }
  v.merges = {"b c", "a b", "h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o", "a a", "x x", "xx x"};
  for (const char* merged :
       {"bc", "ab", "he", "ll", "hell", "hello", "Ġw", "Ġwo", "aa", "xx", "xxx"}) {
    v.tokens.push_back(merged);
    v.token_types.push_back(1);
  }
  v.pre = "gpt2";
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  return v;
}

class TinyVocabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tok = BpeTokenizer::Create(TinyVocab());
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = std::move(tok).value();
  }
  int32_t Id(const std::string& token) const { return tok_->FindToken(token).value_or(-99); }
  int32_t ByteId(char c) const { return 4 + static_cast<uint8_t>(c); }

  std::unique_ptr<BpeTokenizer> tok_;
};

TEST_F(TinyVocabTest, MergesByRank) {
  EXPECT_THAT(tok_->Encode("hello", false), ElementsAre(Id("hello")));
  // "b c" outranks "a b": abc -> a + bc, never ab + c.
  EXPECT_THAT(tok_->Encode("abc", false), ElementsAre(ByteId('a'), Id("bc")));
  EXPECT_THAT(tok_->Encode("ab", false), ElementsAre(Id("ab")));
  // Equal pairs merge leftmost first: aaa -> aa + a.
  EXPECT_THAT(tok_->Encode("aaa", false), ElementsAre(Id("aa"), ByteId('a')));
  EXPECT_THAT(tok_->Encode("aaaa", false), ElementsAre(Id("aa"), Id("aa")));
  EXPECT_THAT(tok_->Encode("xxxx", false), ElementsAre(Id("xx"), Id("xx")));  // rank 8 < 9
  EXPECT_THAT(tok_->Encode("xxx", false), ElementsAre(Id("xxx")));
  // Words are merged separately: " wo" is one word, "hello" another.
  EXPECT_THAT(tok_->Encode("hello wo", false), ElementsAre(Id("hello"), Id("Ġwo")));
  EXPECT_THAT(tok_->Encode("", false), ElementsAre());
}

TEST_F(TinyVocabTest, SpecialTokensNeedParseSpecialUserDefinedDoNot) {
  const std::vector<int32_t> with = tok_->Encode("<|im_start|>hello<|im_end|>", true);
  EXPECT_THAT(with, ElementsAre(1, Id("hello"), 2));
  const std::vector<int32_t> without = tok_->Encode("<|im_start|>hello<|im_end|>", false);
  for (const int32_t id : without) EXPECT_GE(id, 4);  // bytes and merges only
  EXPECT_EQ(tok_->Decode(without, false), "<|im_start|>hello<|im_end|>");
  // User-defined tokens are always split out.
  EXPECT_THAT(tok_->Encode("a<tool>b", false), ElementsAre(ByteId('a'), 3, ByteId('b')));
  EXPECT_EQ(tok_->Encode("<|im_start|", true).size(), 11u);  // <| im _ start |
}

TEST(BpeTokenizerTest, AddedTokensMatchLeftmostLongest) {
  BpeVocab v = TinyVocab();
  v.tokens.push_back("<|im");
  v.token_types.push_back(3);
  v.tokens.push_back("m_end|>");
  v.token_types.push_back(3);
  auto tok = BpeTokenizer::Create(v);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const int32_t im = static_cast<int32_t>(v.tokens.size()) - 2;
  // At the same start the longer token wins; an earlier start wins over a longer token.
  EXPECT_THAT((*tok)->Encode("<|im_start|>", true), ElementsAre(1));
  EXPECT_THAT((*tok)->Encode("<|im_end|>", true), ElementsAre(2));
  const std::vector<int32_t> ids = (*tok)->Encode("<|im<|im_end|>", true);
  EXPECT_THAT(ids, ElementsAre(im, 2));
}

TEST_F(TinyVocabTest, DecodeAndTokenBytes) {
  EXPECT_EQ(tok_->TokenBytes(ByteId(' ')), " ");
  EXPECT_EQ(tok_->TokenBytes(ByteId('\n')), "\n");
  EXPECT_EQ(tok_->TokenBytes(4 + 0xC3), "\xC3");
  EXPECT_EQ(tok_->TokenBytes(Id("Ġwo")), " wo");
  EXPECT_EQ(tok_->TokenBytes(1), "<|im_start|>");
  EXPECT_EQ(tok_->TokenBytes(-1), "");
  EXPECT_EQ(tok_->TokenBytes(tok_->vocab_size()), "");
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(tok_->TokenBytes(4 + b), std::string(1, static_cast<char>(b))) << b;
  }

  const std::vector<int32_t> ids = {1, Id("hello"), Id("Ġwo"), 2, 3};
  EXPECT_EQ(tok_->Decode(ids, false), "<|im_start|>hello wo<|im_end|><tool>");
  EXPECT_EQ(tok_->Decode(ids, true), "hello wo<tool>");
  // Half a character decodes to U+FFFD; bad ids are dropped.
  EXPECT_EQ(tok_->Decode({4 + 0xC3, ByteId('a'), -5, 100000}, false),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(tok_->Decode({4 + 0xC3, 4 + 0xA9}, false), "\xC3\xA9");
}

TEST_F(TinyVocabTest, InvalidUtf8InputRoundTrips) {
  const std::string text = "ab\xFF\xC3 \xE2\x82\n\xF0\x9F\x98\x80";
  const std::vector<int32_t> ids = tok_->Encode(text, true);
  std::string bytes;
  for (const int32_t id : ids) bytes += tok_->TokenBytes(id);
  EXPECT_EQ(bytes, text);
}

TEST_F(TinyVocabTest, Accessors) {
  EXPECT_EQ(tok_->vocab_size(), 4 + 256 + 11);
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_FALSE(tok_->add_bos_token());
  EXPECT_THAT(tok_->stop_ids(), ElementsAre(2));
  EXPECT_TRUE(tok_->IsSpecial(1));
  EXPECT_FALSE(tok_->IsSpecial(3));
  EXPECT_FALSE(tok_->IsSpecial(ByteId('a')));
  EXPECT_FALSE(tok_->IsSpecial(-1));
  EXPECT_EQ(tok_->FindToken("<|im_end|>"), 2);
  EXPECT_EQ(tok_->FindToken("nope"), std::nullopt);
  EXPECT_EQ(tok_->token_type(3), TokenType::kUserDefined);
}

TEST_F(TinyVocabTest, ConcurrentEncodeAgrees) {
  const std::string text = "hello world, <|im_start|>abc aaa xxxx\n\n  wo";
  const std::vector<int32_t> expected = tok_->Encode(text, true);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) mismatches[t] += tok_->Encode(text, true) != expected;
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(mismatches[t], 0);
}

TEST(BpeTokenizerTest, CreateRejectsBadVocabularies) {
  const auto expect_error = [](BpeVocab v, absl::StatusCode code, const std::string& part) {
    auto tok = BpeTokenizer::Create(std::move(v));
    ASSERT_FALSE(tok.ok());
    EXPECT_EQ(tok.status().code(), code) << tok.status();
    EXPECT_THAT(std::string(tok.status().message()), HasSubstr(part));
  };
  BpeVocab v = TinyVocab();
  v.merges.push_back("q zz");
  expect_error(v, absl::StatusCode::kInvalidArgument, "'q zz'");
  v = TinyVocab();
  v.merges.push_back("q z");  // "qz" is not a token
  expect_error(v, absl::StatusCode::kInvalidArgument, "merge 11 'q z'");
  v = TinyVocab();
  v.merges.push_back("nospace");
  expect_error(v, absl::StatusCode::kInvalidArgument, "'nospace'");
  v = TinyVocab();
  v.token_types[7] = 9;
  expect_error(v, absl::StatusCode::kInvalidArgument, "token type 9");
  v = TinyVocab();
  v.token_types.pop_back();
  expect_error(v, absl::StatusCode::kInvalidArgument, "token_types");
  v = TinyVocab();
  v.eos_id = 100000;
  expect_error(v, absl::StatusCode::kInvalidArgument, "eos id 100000");
  v = TinyVocab();
  v.stop_ids = {-1};
  expect_error(v, absl::StatusCode::kInvalidArgument, "stop id -1");
  v = TinyVocab();
  v.pre = "deepseek-coder";
  expect_error(v, absl::StatusCode::kUnimplemented, "'deepseek-coder'");
  v = TinyVocab();
  v.tokens.clear();
  v.token_types.clear();
  v.merges.clear();
  expect_error(v, absl::StatusCode::kInvalidArgument, "empty");
}

TEST(BpeTokenizerTest, Llama3IgnoresMergesForWholeTokens) {
  // "abc" is a token but no merge path reaches it: Llama 3 (ignore_merges) still uses it.
  BpeVocab v = TinyVocab();
  v.tokens.push_back("abc");
  v.token_types.push_back(1);
  v.pre = "llama-bpe";
  auto tok = BpeTokenizer::Create(v);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_THAT((*tok)->Encode("abc", false), ElementsAre(static_cast<int32_t>(v.tokens.size()) - 1));
  v.pre = "gpt2";
  tok = BpeTokenizer::Create(v);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->Encode("abc", false).size(), 2u);
}

// --- Unicode helpers -----------------------------------------------------------------------

TEST(UnicodeTest, ToValidUtf8ReplacesMaximalSubparts) {
  EXPECT_EQ(unicode::ToValidUtf8("abc"), "abc");
  EXPECT_EQ(unicode::ToValidUtf8("\xC3\xA9"), "\xC3\xA9");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(unicode::ToValidUtf8("\xC3"), fffd);
  EXPECT_EQ(unicode::ToValidUtf8("\xE2\x82"), fffd);  // one maximal subpart
  EXPECT_EQ(unicode::ToValidUtf8("\xE2\x82x"), fffd + "x");
  EXPECT_EQ(unicode::ToValidUtf8("\xFF\xFE"), fffd + fffd);
  EXPECT_EQ(unicode::ToValidUtf8("\xC0\xAF"), fffd + fffd);             // overlong
  EXPECT_EQ(unicode::ToValidUtf8("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate
  EXPECT_EQ(unicode::ToValidUtf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);
  EXPECT_EQ(unicode::ToValidUtf8("\xF0\x9F\x98"), fffd);
}

TEST(UnicodeTest, DecodeAndClasses) {
  const std::string text = "a\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x80\xFF";
  size_t pos = 0;
  EXPECT_EQ(unicode::DecodeUtf8(text, &pos), U'a');
  EXPECT_EQ(unicode::DecodeUtf8(text, &pos), U'\u00E9');
  EXPECT_EQ(unicode::DecodeUtf8(text, &pos), U'\u4F60');
  EXPECT_EQ(unicode::DecodeUtf8(text, &pos), U'\U0001F600');
  EXPECT_EQ(unicode::DecodeUtf8(text, &pos), unicode::kInvalidCodepoint);
  EXPECT_EQ(pos, text.size());
  EXPECT_TRUE(unicode::IsLetter(U'\u4F60'));
  EXPECT_TRUE(unicode::IsNumber(U'\u0663'));  // Arabic-Indic three
  EXPECT_TRUE(unicode::IsNumber(U'\u00B2'));  // superscript two (No)
  EXPECT_TRUE(unicode::IsWhitespace(U'\u00A0'));
  EXPECT_TRUE(unicode::IsWhitespace(U'\u3000'));
  EXPECT_FALSE(unicode::IsWhitespace(U'\u200B'));
  EXPECT_FALSE(unicode::IsLetter(U'\u0301'));  // combining mark
  EXPECT_EQ(unicode::ClassOf(unicode::kInvalidCodepoint), unicode::kOther);
  EXPECT_EQ(unicode::NormalizeNfc("cafe\xCC\x81"), "caf\xC3\xA9");
  EXPECT_EQ(unicode::NormalizeNfc("e\xCC\x81\xFF"
                                  "e\xCC\x81"),
            "\xC3\xA9\xFF\xC3\xA9");
}

// --- Fixture -------------------------------------------------------------------------------

const nlohmann::json& Fixture() {
  static const nlohmann::json* fixture = [] {
    std::ifstream in(testing::SourcePath("tests/fixtures/smollm2_tokenizer_cases.json"));
    std::stringstream buffer;
    buffer << in.rdbuf();
    return new nlohmann::json(nlohmann::json::parse(buffer.str(), nullptr, false));
  }();
  return *fixture;
}

TEST(PreTokenizerTest, MatchesOnigurumaSplits) {
  const nlohmann::json& fixture = Fixture();
  ASSERT_TRUE(fixture.is_object()) << "fixture missing or malformed";
  const std::pair<const char*, PreTokenizerKind> kinds[] = {
      {"gpt2", PreTokenizerKind::kGpt2},
      {"smollm", PreTokenizerKind::kDigitsGpt2},
      {"llama-bpe", PreTokenizerKind::kLlama3},
      {"qwen2", PreTokenizerKind::kQwen2},
  };
  for (const auto& [name, kind] : kinds) {
    const nlohmann::json& cases = fixture["pretokenize_cases"][name];
    ASSERT_GT(cases.size(), 100u) << name;
    int matched = 0;
    for (const nlohmann::json& c : cases) {
      const std::string text = c["text"];
      std::vector<std::string_view> words;
      PreTokenize(kind, text, &words);
      const std::vector<std::string> got(words.begin(), words.end());
      const std::vector<std::string> want = c["words"];
      EXPECT_EQ(got, want) << name << " on " << nlohmann::json(text).dump();
      matched += got == want;
    }
    EXPECT_EQ(matched, static_cast<int>(cases.size())) << name;
  }
}

// --- SmolLM2 from its GGUF file ------------------------------------------------------------

class SmolLm2Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = testing::DefaultModelPath();
    if (path.empty()) return;
    auto file = gguf::GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    auto tok = LoadGgufTokenizer(**file);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = std::move(tok).value().release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  void SetUp() override {
    if (testing::DefaultModelPath().empty()) GTEST_SKIP() << "SmolLM2 GGUF not installed";
    ASSERT_NE(tok_, nullptr);
    ASSERT_TRUE(Fixture().is_object()) << "fixture missing or malformed";
  }

  static const Tokenizer* tok_;
};

const Tokenizer* SmolLm2Test::tok_ = nullptr;

TEST_F(SmolLm2Test, Metadata) {
  EXPECT_EQ(tok_->vocab_size(), 49152);
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_FALSE(tok_->add_bos_token());
  EXPECT_THAT(tok_->stop_ids(), UnorderedElementsAre(2, 0));  // <|im_end|>, <|endoftext|>
  EXPECT_EQ(tok_->FindToken("<|im_start|>"), 1);
  EXPECT_TRUE(tok_->IsSpecial(0));
  EXPECT_TRUE(tok_->IsSpecial(16));
  EXPECT_FALSE(tok_->IsSpecial(17));
}

TEST_F(SmolLm2Test, EncodeMatchesHuggingFace) {
  const nlohmann::json& cases = Fixture()["encode_cases"];
  ASSERT_GE(cases.size(), 300u);
  int matched = 0;
  for (const nlohmann::json& c : cases) {
    const std::string text = c["text"];
    const std::vector<int32_t> want = c["ids"];
    const std::vector<int32_t> got = tok_->Encode(text, /*parse_special=*/true);
    EXPECT_EQ(got, want) << nlohmann::json(text).dump();
    matched += got == want;
  }
  EXPECT_EQ(matched, static_cast<int>(cases.size()));
}

TEST_F(SmolLm2Test, DecodeMatchesHuggingFaceAndRoundTrips) {
  int lossy = 0;
  for (const nlohmann::json& c : Fixture()["encode_cases"]) {
    const std::string text = c["text"];
    const std::vector<int32_t> ids = c["ids"];
    const std::string decoded = c["decoded"];
    const std::string decoded_skip = c["decoded_skip_special"];
    EXPECT_EQ(tok_->Decode(ids, false), decoded) << nlohmann::json(text).dump();
    EXPECT_EQ(tok_->Decode(ids, true), decoded_skip) << nlohmann::json(text).dump();
    // Text round-trips unless it holds a byte with no token of its own.
    if (decoded != text) {
      ++lossy;
      continue;
    }
    // Without parse_special the markup is plain text, and still round-trips.
    EXPECT_EQ(tok_->Decode(tok_->Encode(text, false), false), text);
  }
  EXPECT_LE(lossy, 3);  // "a\x04b\x06c\x13d\x1d" and two texts with U+40000
  for (const nlohmann::json& c : Fixture()["decode_cases"]) {
    const std::vector<int32_t> ids = c["ids"];
    const std::string want = c["decoded"];
    EXPECT_EQ(tok_->Decode(ids, false), want) << c.dump();
  }
}

TEST_F(SmolLm2Test, SpecialTokensOnlyWithParseSpecial) {
  const std::string text = "<|im_start|>user\nhi<|im_end|>";
  const std::vector<int32_t> with = tok_->Encode(text, true);
  ASSERT_FALSE(with.empty());
  EXPECT_EQ(with.front(), 1);
  EXPECT_EQ(with.back(), 2);
  for (const int32_t id : tok_->Encode(text, false)) EXPECT_FALSE(tok_->IsSpecial(id)) << id;
}

TEST_F(SmolLm2Test, ByteTokensGiveTheirBytes) {
  // SmolLM2 has no token for 21 bytes (e.g. 0x04, 0xC0, 0xF1); encoding drops them, as HF.
  int missing = 0;
  for (int b = 0; b < 256; ++b) {
    const std::optional<int32_t> id = tok_->FindToken(ByteLevelChar(static_cast<uint8_t>(b)));
    if (!id.has_value()) {
      ++missing;
      continue;
    }
    EXPECT_EQ(tok_->TokenBytes(*id), std::string(1, static_cast<char>(b))) << b;
  }
  EXPECT_EQ(missing, 21);
  EXPECT_EQ(tok_->TokenBytes(*tok_->FindToken("Ġ")), " ");
  EXPECT_EQ(tok_->TokenBytes(*tok_->FindToken("Ċ")), "\n");
  EXPECT_EQ(tok_->TokenBytes(*tok_->FindToken("Ġthe")), " the");
  EXPECT_EQ(tok_->TokenBytes(2), "<|im_end|>");
}

// --- LoadGgufTokenizer on hand-built files -------------------------------------------------

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadFromWriter(const std::string& name,
                                                          const testing::GgufWriter& writer) {
  const std::string path = testing::TempDir() + "/" + name;
  if (absl::Status s = writer.WriteTo(path); !s.ok()) return s;
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  return LoadGgufTokenizer(**file);
}

testing::GgufWriter TinyGguf(const std::string& model, const std::string& pre) {
  const BpeVocab v = TinyVocab();
  testing::GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddString("tokenizer.ggml.model", model);
  w.AddString("tokenizer.ggml.pre", pre);
  w.AddStringArray("tokenizer.ggml.tokens", v.tokens);
  w.AddInt32Array("tokenizer.ggml.token_type", v.token_types);
  w.AddStringArray("tokenizer.ggml.merges", v.merges);
  w.AddUint32("tokenizer.ggml.bos_token_id", 1);
  w.AddUint32("tokenizer.ggml.eos_token_id", 2);
  w.AddBool("tokenizer.ggml.add_bos_token", true);
  return w;
}

TEST(GgufTokenizerTest, LoadsTinyFile) {
  auto tok = LoadFromWriter("tiny_ok.gguf", TinyGguf("gpt2", "smollm"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->bos_id(), 1);
  EXPECT_TRUE((*tok)->add_bos_token());
  // eos, and <|endoftext|> as a control token llama.cpp also treats as end of generation.
  EXPECT_THAT((*tok)->stop_ids(), ElementsAre(2, 0));
  EXPECT_EQ((*tok)->Decode((*tok)->Encode("hello 42", true), false), "hello 42");
}

TEST(GgufTokenizerTest, UnsupportedModelOrPreNamesFileAndValue) {
  auto tok = LoadFromWriter("tiny_t5.gguf", TinyGguf("t5", "default"));
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("tiny_t5.gguf"));
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("'t5'"));

  tok = LoadFromWriter("tiny_pre.gguf", TinyGguf("gpt2", "mystery"));
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("tiny_pre.gguf"));
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("'mystery'"));
}

TEST(GgufTokenizerTest, MissingTokensIsAnError) {
  testing::GgufWriter w;
  w.AddString("tokenizer.ggml.model", "gpt2");
  w.AddString("tokenizer.ggml.pre", "gpt2");
  auto tok = LoadFromWriter("tiny_notokens.gguf", w);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("tiny_notokens.gguf"));
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("tokenizer.ggml.tokens"));
}

}  // namespace
}  // namespace moeserve
