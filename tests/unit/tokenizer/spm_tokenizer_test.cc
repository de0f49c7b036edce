// SentencePiece-style BPE: a tiny hand-made vocabulary (merge orders, dummy prefix schemes,
// byte fallback, decoding), then Mistral's tokenizer (tests/fixtures/mistral_spm, from
// gen_spm_tokenizer_cases.py) loaded from every source against the references recorded in
// mistral_spm_tokenizer_cases.json: tokenizer.json and a directory with only
// tokenizer.model against Hugging Face; tokenizer.model with sentencepiece semantics against
// the sentencepiece library; a GGUF written here with the same vocabulary against
// transformers' GGUF conversion; tokenizer.json variants (legacy normalizer, Metaspace
// "always") against `tokenizers`.
#include "engine/tokenizer/spm_tokenizer.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "engine/loaders/gguf_reader.h"
#include "engine/tokenizer/gguf_tokenizer.h"
#include "engine/tokenizer/hf_tokenizer.h"
#include "engine/tokenizer/sentencepiece_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kSp[] = "\xE2\x96\x81";  // "▁"

// --- A tiny vocabulary ---------------------------------------------------------------------

// 0 <unk>, 1 <s>, 2 </s> (control), 3 [T] (user-defined), 4-259 the byte tokens, then the
// pieces below with their scores. "bc" scores above "ab" but has the larger id, so score
// order and id order disagree on "abc".
SpmVocab TinyVocab(SpmMergeOrder order, SpmPrefix prefix) {
  SpmVocab v;
  v.tokens = {"<unk>", "<s>", "</s>", "[T]"};
  v.token_types = {2, 3, 3, 4};
  v.scores = {0, 0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    v.tokens.push_back(name);
    v.token_types.push_back(6);
    v.scores.push_back(0);
  }
  const std::vector<std::pair<std::string, float>> pieces = {{kSp, -1},
                                                             {"a", -2},
                                                             {"b", -3},
                                                             {"c", -4},
                                                             {"h", -5},
                                                             {"i", -6},
                                                             {"ab", -9},
                                                             {"bc", -8},
                                                             {std::string(kSp) + "h", -10},
                                                             {std::string(kSp) + "hi", -11},
                                                             {"aa", -12},
                                                             {std::string(kSp) + kSp, -13},
                                                             {"é", -14}};
  for (const auto& [piece, score] : pieces) {
    v.tokens.push_back(piece);
    v.token_types.push_back(1);
    v.scores.push_back(score);
  }
  v.merge_order = order;
  v.prefix = prefix;
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  return v;
}

std::unique_ptr<SpmTokenizer> Tiny(SpmMergeOrder order, SpmPrefix prefix = SpmPrefix::kNever) {
  auto tok = SpmTokenizer::Create(TinyVocab(order, prefix));
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

int32_t Id(const Tokenizer& tok, const std::string& piece) {
  return tok.FindToken(piece).value_or(-99);
}

TEST(SpmTinyTest, MergeOrders) {
  const auto by_id = Tiny(SpmMergeOrder::kPieceId);
  const auto by_score = Tiny(SpmMergeOrder::kScore);
  const auto spm = Tiny(SpmMergeOrder::kSentencePiece);
  ASSERT_TRUE(by_id && by_score && spm);
  // transformers' .model conversion orders merges by the merged piece's id: "ab" first.
  EXPECT_THAT(by_id->Encode("abc", false), ElementsAre(Id(*by_id, "ab"), Id(*by_id, "c")));
  // By score "bc" wins.
  EXPECT_THAT(by_score->Encode("abc", false), ElementsAre(Id(*spm, "a"), Id(*spm, "bc")));
  EXPECT_THAT(spm->Encode("abc", false), ElementsAre(Id(*spm, "a"), Id(*spm, "bc")));
  // Equal pairs merge leftmost first.
  EXPECT_THAT(spm->Encode("aaa", false), ElementsAre(Id(*spm, "aa"), Id(*spm, "a")));
  // A listed merge order is the order of the list.
  SpmVocab listed = TinyVocab(SpmMergeOrder::kListed, SpmPrefix::kNever);
  listed.merges = {{"a", "b"}, {"b", "c"}};
  listed.scores.clear();
  auto tok = SpmTokenizer::Create(listed);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_THAT((*tok)->Encode("abc", false), ElementsAre(Id(**tok, "ab"), Id(**tok, "c")));
  EXPECT_THAT((*tok)->Encode("aa", false), ElementsAre(Id(**tok, "a"), Id(**tok, "a")));
}

TEST(SpmTinyTest, ByteFallbackAndUnknown) {
  const auto tok = Tiny(SpmMergeOrder::kPieceId);
  ASSERT_TRUE(tok);
  // "é" has a piece; "ü" (C3 BC) and "😀" (F0 9F 98 80) fall back to their bytes.
  EXPECT_THAT(tok->Encode("éü", false), ElementsAre(Id(*tok, "é"), 4 + 0xC3, 4 + 0xBC));
  EXPECT_THAT(tok->Encode("😀", false), ElementsAre(4 + 0xF0, 4 + 0x9F, 4 + 0x98, 4 + 0x80));
  EXPECT_EQ(tok->Decode(tok->Encode("aé😀ü", false), false), "aé😀ü");
  // Invalid UTF-8 input keeps its bytes.
  EXPECT_EQ(tok->Decode(tok->Encode("a\xFF"
                                    "b",
                                    false),
                        false),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_THAT(tok->Encode("a\xFF", false), ElementsAre(Id(*tok, "a"), 4 + 0xFF));

  SpmVocab v = TinyVocab(SpmMergeOrder::kPieceId, SpmPrefix::kNever);
  v.byte_fallback = false;
  auto no_fallback = SpmTokenizer::Create(v);
  ASSERT_TRUE(no_fallback.ok());
  // Without byte fallback a run of unknown characters is one <unk> (fuse_unk).
  EXPECT_THAT((*no_fallback)->Encode("aüüb", false), ElementsAre(Id(*tok, "a"), 0, Id(*tok, "b")));
}

TEST(SpmTinyTest, PrefixSchemes) {
  const std::string h = std::string(kSp) + "hi";
  const auto first = Tiny(SpmMergeOrder::kPieceId, SpmPrefix::kFirst);
  const auto always = Tiny(SpmMergeOrder::kPieceId, SpmPrefix::kAlways);
  const auto each = Tiny(SpmMergeOrder::kPieceId, SpmPrefix::kPrependEach);
  const auto whole = Tiny(SpmMergeOrder::kSentencePiece, SpmPrefix::kWholeText);
  const auto never = Tiny(SpmMergeOrder::kPieceId, SpmPrefix::kNever);
  ASSERT_TRUE(first && always && each && whole && never);
  const int32_t sp = Id(*first, kSp);
  const int32_t hi = Id(*first, h);
  const int32_t i = Id(*first, "i");
  EXPECT_THAT(first->Encode("hi", false), ElementsAre(hi));
  EXPECT_THAT(never->Encode("hi", false), ElementsAre(Id(*first, "h"), i));
  // Metaspace does not prepend to text already starting with a space; sentencepiece and
  // the Prepend normalizer do.
  EXPECT_THAT(first->Encode(" hi", false), ElementsAre(hi));
  EXPECT_THAT(always->Encode(" hi", false), ElementsAre(hi));
  EXPECT_THAT(whole->Encode(" hi", false), ElementsAre(sp, hi));
  EXPECT_THAT(each->Encode(" hi", false), ElementsAre(sp, hi));  // "▁▁hi"
  // After an added token: "first" stops prepending, the others go on; sentencepiece's
  // single prefix comes before the token.
  EXPECT_THAT(first->Encode("hi<s>hi", true), ElementsAre(hi, 1, Id(*first, "h"), i));
  EXPECT_THAT(always->Encode("hi<s>hi", true), ElementsAre(hi, 1, hi));
  EXPECT_THAT(each->Encode("hi<s>hi", true), ElementsAre(hi, 1, hi));
  EXPECT_THAT(first->Encode("<s>hi", true), ElementsAre(1, Id(*first, "h"), i));
  EXPECT_THAT(whole->Encode("[T]hi", false), ElementsAre(sp, 3, Id(*first, "h"), i));
  EXPECT_THAT(first->Encode("", true), ElementsAre());
  EXPECT_THAT(whole->Encode("", true), ElementsAre());
  // Control tokens need parse_special; user-defined ones do not.
  EXPECT_EQ(first->Encode("<s>", false).size(), 4u);  // "▁", then "<", "s", ">" as bytes
  EXPECT_THAT(first->Encode("[T]", false), ElementsAre(3));
}

TEST(SpmTinyTest, MetaspaceSplitCutsWordsBeforeEachSpace) {
  SpmVocab v = TinyVocab(SpmMergeOrder::kPieceId, SpmPrefix::kNever);
  v.split_on_metaspace = true;
  auto tok = SpmTokenizer::Create(v);
  ASSERT_TRUE(tok.ok());
  const int32_t sp = Id(**tok, kSp);
  // "a▁▁hi" -> words "a", "▁", "▁hi": "▁▁" cannot merge across words.
  EXPECT_THAT((*tok)->Encode("a  hi", false),
              ElementsAre(Id(**tok, "a"), sp, Id(**tok, std::string(kSp) + "hi")));
  EXPECT_THAT((*tok)->Encode("a  b", false), ElementsAre(Id(**tok, "a"), sp, sp, Id(**tok, "b")));
  v.split_on_metaspace = false;
  tok = SpmTokenizer::Create(v);
  ASSERT_TRUE(tok.ok());
  EXPECT_THAT((*tok)->Encode("a  b", false),
              ElementsAre(Id(**tok, "a"), Id(**tok, std::string(kSp) + kSp), Id(**tok, "b")));
}

TEST(SpmTinyTest, Decode) {
  const auto tok = Tiny(SpmMergeOrder::kPieceId, SpmPrefix::kFirst);
  ASSERT_TRUE(tok);
  const int32_t hi = Id(*tok, std::string(kSp) + "hi");
  EXPECT_EQ(tok->Decode({hi, hi}, false), "hi hi");  // the leading space is dropped
  EXPECT_EQ(tok->Decode({1, hi}, false), "<s> hi");  // ... only at the very start
  EXPECT_EQ(tok->Decode({1, hi}, true), "hi");
  EXPECT_EQ(tok->TokenBytes(hi), " hi");
  EXPECT_EQ(tok->TokenBytes(4 + 0xC3), "\xC3");
  EXPECT_TRUE(tok->StripsLeadingSpace());
  // A byte run that is not valid UTF-8 gives one U+FFFD per byte token, as HF's
  // ByteFallback decoder.
  EXPECT_EQ(tok->Decode({4 + 0xF0, 4 + 0x9F, Id(*tok, "a")}, false),
            "\xEF\xBF\xBD\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(tok->Decode({4 + 0xC3, 4 + 0xA9}, false), "é");
}

TEST(SpmTinyTest, UnusedPiecesAreResegmented) {
  SpmVocab v = TinyVocab(SpmMergeOrder::kSentencePiece, SpmPrefix::kNever);
  v.tokens.push_back("abc");
  v.token_types.push_back(5);  // UNUSED
  v.scores.push_back(-0.5);
  auto tok = SpmTokenizer::Create(v);
  ASSERT_TRUE(tok.ok());
  // "a" + "bc" -> "abc", which is unused: sentencepiece splits it back.
  EXPECT_THAT((*tok)->Encode("abc", false), ElementsAre(Id(**tok, "a"), Id(**tok, "bc")));
}

TEST(SpmTinyTest, Validation) {
  SpmVocab v = TinyVocab(SpmMergeOrder::kScore, SpmPrefix::kFirst);
  v.scores.pop_back();
  EXPECT_THAT(SpmTokenizer::Create(v).status().message(), HasSubstr("scores"));
  v = TinyVocab(SpmMergeOrder::kListed, SpmPrefix::kFirst);
  v.merges = {{"a", "q"}};
  EXPECT_THAT(SpmTokenizer::Create(v).status().message(), HasSubstr("merge 0"));
  v = TinyVocab(SpmMergeOrder::kPieceId, SpmPrefix::kFirst);
  v.token_types[5] = 9;
  EXPECT_THAT(SpmTokenizer::Create(v).status().message(), HasSubstr("token type"));
  v = TinyVocab(SpmMergeOrder::kPieceId, SpmPrefix::kFirst);
  v.eos_id = 100000;
  EXPECT_EQ(SpmTokenizer::Create(v).status().code(), absl::StatusCode::kInvalidArgument);
}

// --- Mistral's tokenizer against the recorded references -----------------------------------

std::string MistralDir() { return testing::SourcePath("tests/fixtures/mistral_spm"); }

const Json& Cases() {
  static const Json* cases = [] {
    std::ifstream in(testing::SourcePath("tests/fixtures/mistral_spm_tokenizer_cases.json"));
    std::stringstream buffer;
    buffer << in.rdbuf();
    return new Json(Json::parse(buffer.str(), nullptr, false));
  }();
  return *cases;
}

// The case's ids for a reference: `key` when the case records it, else the HF ids.
std::vector<int32_t> Want(const Json& c, const char* key) {
  return (c.contains(key) ? c[key] : c["ids"]).get<std::vector<int32_t>>();
}

// Encodes every case and compares with `key`; returns the number of mismatches.
int ExpectCorpus(const Tokenizer& tok, const char* key, bool parse_special,
                 const std::string& source) {
  EXPECT_TRUE(Cases().is_object()) << "fixture missing or malformed";
  int mismatches = 0;
  for (const Json& c : Cases()["encode_cases"]) {
    const std::string text = c["text"];
    const std::vector<int32_t> got = tok.Encode(text, parse_special);
    if (got != Want(c, key) && ++mismatches <= 10) {
      ADD_FAILURE() << source << ": " << Json(text).dump() << "\n  got  " << Json(got).dump()
                    << "\n  want " << Json(Want(c, key)).dump();
    }
  }
  EXPECT_GE(Cases()["encode_cases"].size(), 2000u);
  return mismatches;
}

std::string WriteDir(const std::string& name, const std::vector<std::string>& copy,
                     const std::vector<std::pair<std::string, std::string>>& files) {
  const std::string dir = testing::TempDir() + "/" + name;
  std::filesystem::create_directories(dir);
  for (const std::string& file : copy) {
    std::filesystem::copy_file(MistralDir() + "/" + file, dir + "/" + file,
                               std::filesystem::copy_options::overwrite_existing);
  }
  for (const auto& [file, content] : files) std::ofstream(dir + "/" + file) << content;
  return dir;
}

Json MistralTokenizerJson() {
  std::ifstream in(MistralDir() + "/tokenizer.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return Json::parse(buffer.str());
}

TEST(MistralSpmTest, TokenizerJsonMatchesHf) {
  auto tok = LoadHfTokenizer(MistralDir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 32768);
  EXPECT_EQ((*tok)->bos_id(), 1);
  EXPECT_EQ((*tok)->eos_id(), 2);
  EXPECT_TRUE((*tok)->add_bos_token());
  EXPECT_FALSE((*tok)->add_eos_token());
  EXPECT_THAT((*tok)->stop_ids(), ElementsAre(2));
  EXPECT_TRUE((*tok)->IsSpecial(3));     // [INST]
  EXPECT_FALSE((*tok)->IsSpecial(770));  // [REFERENCE_DOC_0], user-defined
  EXPECT_EQ(ExpectCorpus(**tok, "ids", /*parse_special=*/true, "tokenizer.json"), 0);

  const auto start = std::chrono::steady_clock::now();
  size_t total = 0;
  for (const Json& c : Cases()["encode_cases"]) {
    total += (*tok)->Encode(c["text"].get<std::string>(), true).size();
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::cout << "encoded " << Cases()["encode_cases"].size() << " strings (" << total
            << " tokens) in " << ms << " ms\n";
}

TEST(MistralSpmTest, DecodeMatchesHf) {
  auto tok = LoadHfTokenizer(MistralDir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  for (const Json& c : Cases()["encode_cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const std::string decoded = c["decoded"];
    EXPECT_EQ((*tok)->Decode(ids, false), decoded) << c["text"].dump();
    EXPECT_EQ((*tok)->Decode(ids, true), c.value("decoded_skip_special", decoded))
        << c["text"].dump();
  }
  for (const Json& c : Cases()["decode_cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ((*tok)->Decode(ids, false), c["decoded"].get<std::string>()) << c["ids"].dump();
  }
}

TEST(MistralSpmTest, ModelOnlyDirectoryMatchesHf) {
  const std::string dir =
      WriteDir("mistral_model_only", {"tokenizer.model", "tokenizer_config.json"}, {});
  auto tok = LoadHfTokenizer(dir);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_TRUE((*tok)->add_bos_token());
  EXPECT_EQ((*tok)->bos_id(), 1);
  EXPECT_EQ(ExpectCorpus(**tok, "ids", /*parse_special=*/true, "tokenizer.model (HF)"), 0);
}

TEST(MistralSpmTest, ModelWithSentencePieceSemanticsMatchesSentencePiece) {
  auto tok =
      LoadSentencePieceTokenizer(MistralDir() + "/tokenizer.model", SpmSemantics::kSentencePiece);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(ExpectCorpus(**tok, "spm_ids", /*parse_special=*/false, "sentencepiece"), 0);
  for (const Json& c : Cases()["encode_cases"]) {
    const std::string text = c["text"];
    // A "▁" written in the text decodes to a space, in sentencepiece too.
    if (text.find(kSp) != std::string::npos) continue;
    EXPECT_EQ((*tok)->Decode(Want(c, "spm_ids"), false), text) << Json(text).dump();
  }
}

TEST(MistralSpmTest, TokenizerJsonVariants) {
  // Llama 2's "legacy" files: the normalizer spells spaces, no pre-tokenizer.
  Json legacy = MistralTokenizerJson();
  legacy["pre_tokenizer"] = nullptr;
  legacy["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       {{{"type", "Prepend"}, {"prepend", kSp}},
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSp}}}}};
  auto tok = LoadHfTokenizer(
      WriteDir("mistral_legacy", {"tokenizer_config.json"}, {{"tokenizer.json", legacy.dump()}}));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(ExpectCorpus(**tok, "legacy_ids", true, "legacy normalizer"), 0);

  Json always = MistralTokenizerJson();
  always["pre_tokenizer"]["prepend_scheme"] = "always";
  tok = LoadHfTokenizer(
      WriteDir("mistral_always", {"tokenizer_config.json"}, {{"tokenizer.json", always.dump()}}));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(ExpectCorpus(**tok, "always_ids", true, "prepend_scheme always"), 0);
}

// A GGUF with the Mistral vocabulary, as llama.cpp's converter writes it; `drop_tokens`
// leaves the last tokens out of tokenizer.ggml.tokens only.
testing::GgufWriter MistralGguf(const SentencePieceModel& model, size_t drop_tokens = 0) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (const SentencePieceModel::Piece& p : model.pieces) {
    tokens.push_back(p.piece);
    scores.push_back(p.score);
    types.push_back(p.type);
  }
  tokens.resize(tokens.size() - drop_tokens);
  testing::GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddString("tokenizer.ggml.model", "llama");
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  w.AddFloat32Array("tokenizer.ggml.scores", scores);
  w.AddInt32Array("tokenizer.ggml.token_type", types);
  w.AddUint32("tokenizer.ggml.bos_token_id", 1);
  w.AddUint32("tokenizer.ggml.eos_token_id", 2);
  w.AddUint32("tokenizer.ggml.unknown_token_id", 0);
  w.AddBool("tokenizer.ggml.add_bos_token", true);
  w.AddBool("tokenizer.ggml.add_eos_token", false);
  return w;
}

absl::StatusOr<SentencePieceModel> ReadMistralModel() {
  std::ifstream in(MistralDir() + "/tokenizer.model", std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseSentencePieceModel(buffer.str(), "tokenizer.model");
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadGguf(const std::string& name,
                                                    const testing::GgufWriter& w) {
  const std::string path = testing::TempDir() + "/" + name;
  if (absl::Status s = w.WriteTo(path); !s.ok()) return s;
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  return LoadGgufTokenizer(**file);
}

TEST(MistralSpmTest, GgufMatchesTransformersGguf) {
  auto model = ReadMistralModel();
  ASSERT_TRUE(model.ok()) << model.status();
  auto tok = LoadGguf("mistral_vocab.gguf", MistralGguf(*model));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_TRUE((*tok)->add_bos_token());
  EXPECT_EQ((*tok)->eos_id(), 2);
  EXPECT_EQ(ExpectCorpus(**tok, "gguf_ids", /*parse_special=*/true, "GGUF"), 0);
}

TEST(MistralSpmTest, GgufWithInconsistentArraysNamesFileAndKey) {
  auto model = ReadMistralModel();
  ASSERT_TRUE(model.ok()) << model.status();
  auto tok = LoadGguf("bad_scores.gguf", MistralGguf(*model, /*drop_tokens=*/1));
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument) << tok.status();
  EXPECT_THAT(tok.status().message(), HasSubstr("bad_scores.gguf"));
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.scores"));

  testing::GgufWriter types_writer;
  types_writer.AddString("tokenizer.ggml.model", "llama");
  types_writer.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "a", "b"});
  types_writer.AddFloat32Array("tokenizer.ggml.scores", {0, -1, -2});
  types_writer.AddInt32Array("tokenizer.ggml.token_type", {2, 1});
  tok = LoadGguf("bad_types.gguf", types_writer);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("bad_types.gguf"));
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.token_type"));
}

}  // namespace
}  // namespace moeserve
