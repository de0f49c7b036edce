// tokenizer.model parsing: small ModelProto messages encoded here by hand (the wire format
// on its own, independent of the reader), truncated and corrupted files, and what is
// refused. Also tokenizer.json files of SentencePiece style with structures moeserve does
// not reproduce.
#include "engine/tokenizer/sentencepiece_model.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/tokenizer/hf_tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// --- A protobuf encoder for tests -----------------------------------------------------------

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string Key(uint32_t field, uint32_t wire_type) { return Varint((field << 3) | wire_type); }
std::string Bytes(uint32_t field, const std::string& payload) {
  return Key(field, 2) + Varint(payload.size()) + payload;
}
std::string Int(uint32_t field, int64_t v) {
  return Key(field, 0) + Varint(static_cast<uint64_t>(v));
}
std::string Float(uint32_t field, float v) {
  char raw[4];
  std::memcpy(raw, &v, 4);
  return Key(field, 5) + std::string(raw, 4);
}
std::string Piece(const std::string& text, float score, int type = 1) {
  std::string p = Bytes(1, text) + Float(2, score);
  if (type != 1) p += Int(3, type);
  return Bytes(1, p);
}

struct Spec {
  int model_type = 2;
  std::string normalizer_name = "identity";
  std::string charsmap;
  bool remove_extra_whitespaces = false;
};

// <unk> <s> </s>, the bytes, then "▁", "a", "b", "▁a", "ab".
std::string TinyModel(const Spec& spec = {}) {
  std::string m = Piece("<unk>", 0, 2) + Piece("<s>", 0, 3) + Piece("</s>", 0, 3);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m += Piece(name, 0, 6);
  }
  m += Piece("\xE2\x96\x81", -1) + Piece("a", -2) + Piece("b", -3) +
       Piece(
           "\xE2\x96\x81"
           "a",
           -4) +
       Piece("ab", -5);
  m += Bytes(2, Int(3, spec.model_type) + Int(35, 1) + Int(40, 0) + Int(41, 1) + Int(42, 2) +
                    Int(43, -1) + Bytes(44, " x "));  // unk_surface, skipped
  std::string normalizer =
      Bytes(1, spec.normalizer_name) + Int(3, 1) + Int(4, spec.remove_extra_whitespaces ? 1 : 0);
  if (!spec.charsmap.empty()) normalizer += Bytes(2, spec.charsmap);
  m += Bytes(3, normalizer);
  return m;
}

std::string WriteFile(const std::string& name, const std::string& bytes) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(SentencePieceModelTest, ParsesFieldsAndDefaults) {
  auto model = ParseSentencePieceModel(TinyModel(), "tiny.model");
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(model->pieces.size(), 264u);
  EXPECT_EQ(model->pieces[0].piece, "<unk>");
  EXPECT_EQ(model->pieces[0].type, 2);
  EXPECT_EQ(model->pieces[262].piece,
            "\xE2\x96\x81"
            "a");
  EXPECT_FLOAT_EQ(model->pieces[262].score, -4.0f);
  EXPECT_EQ(model->pieces[262].type, 1);  // the default
  EXPECT_EQ(model->model_type, 2);
  EXPECT_TRUE(model->byte_fallback);
  EXPECT_EQ(model->pad_id, -1);
  EXPECT_EQ(model->normalizer_name, "identity");
  EXPECT_TRUE(model->add_dummy_prefix);
  EXPECT_FALSE(model->remove_extra_whitespaces);
  EXPECT_TRUE(model->escape_whitespaces);  // absent: the default
}

TEST(SentencePieceModelTest, TinyModelEncodes) {
  const std::string path = WriteFile("tiny.model", TinyModel());
  for (const SpmSemantics semantics : {SpmSemantics::kTransformers, SpmSemantics::kSentencePiece}) {
    auto tok = LoadSentencePieceTokenizer(path, semantics);
    ASSERT_TRUE(tok.ok()) << tok.status();
    EXPECT_THAT((*tok)->Encode("ab", false), ElementsAre(262, 261));  // "▁a" "b"
    EXPECT_THAT((*tok)->Encode("ba", false), ElementsAre(259, 261, 260));
    EXPECT_THAT((*tok)->Encode("c", false), ElementsAre(259, 3 + 'c'));  // byte fallback
    EXPECT_EQ((*tok)->Decode((*tok)->Encode("abc ab", false), false), "abc ab");
    EXPECT_TRUE((*tok)->add_bos_token());
    EXPECT_EQ((*tok)->eos_id(), 2);
  }
}

TEST(SentencePieceModelTest, RefusesWhatItCannotReproduce) {
  const struct {
    const char* name;
    Spec spec;
    const char* fragment;
  } cases[] = {
      {"unigram.model", {1, "identity", "", false}, "Unigram"},
      {"nfkc.model", {2, "nmt_nfkc", "\x01\x02", false}, "normalizer 'nmt_nfkc'"},
      {"extra_ws.model", {2, "identity", "", true}, "remove_extra_whitespaces"},
  };
  for (const auto& c : cases) {
    const std::string path = WriteFile(c.name, TinyModel(c.spec));
    auto tok = LoadSentencePieceTokenizer(path, SpmSemantics::kTransformers);
    ASSERT_FALSE(tok.ok()) << c.name;
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented) << tok.status();
    EXPECT_THAT(tok.status().message(), HasSubstr(path));
    EXPECT_THAT(tok.status().message(), HasSubstr(c.fragment));
  }
}

TEST(SentencePieceModelTest, MalformedMessagesNameFileAndOffset) {
  const std::string good = TinyModel();
  const struct {
    const char* name;
    std::string bytes;
    const char* fragment;
  } cases[] = {
      {"past_end", Key(1, 2) + Varint(1000) + "abc", "runs past the end"},
      {"varint", Key(4, 0) + "\xFF\xFF", "truncated varint"},
      {"long_varint", Key(4, 0) + std::string(11, '\xFF'), "varint longer than 10 bytes"},
      {"wire_type", Bytes(1, Key(2, 0) + Varint(3)), "wire type"},  // score as a varint
      {"group", Key(7, 3), "wire type 3"},
      {"field_zero", Key(0, 0) + Varint(1), "bad field number"},
      {"no_pieces", Bytes(2, Int(3, 2)), "no pieces"},
      {"no_trainer", Piece("a", 0), "no trainer_spec"},
      {"fixed32", Bytes(1, Key(2, 5) + "ab"), "truncated fixed32"},
  };
  for (const auto& c : cases) {
    auto model = ParseSentencePieceModel(c.bytes, c.name);
    ASSERT_FALSE(model.ok()) << c.name;
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(model.status().message(), HasSubstr(c.name));
    EXPECT_THAT(model.status().message(), HasSubstr(c.fragment)) << model.status();
  }
}

std::string MistralModelBytes() {
  std::ifstream in(testing::SourcePath("tests/fixtures/mistral_spm/tokenizer.model"),
                   std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(SentencePieceModelTest, TruncatedFilesFail) {
  const std::string bytes = MistralModelBytes();
  ASSERT_GT(bytes.size(), 500000u);
  for (const size_t size :
       {size_t{1}, size_t{2}, size_t{100}, size_t{1001}, bytes.size() / 2, bytes.size() - 1}) {
    const std::string path = WriteFile("truncated.model", bytes.substr(0, size));
    auto tok = LoadSentencePieceTokenizer(path, SpmSemantics::kTransformers);
    ASSERT_FALSE(tok.ok()) << size;
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument) << tok.status();
    EXPECT_THAT(tok.status().message(), HasSubstr(path));
  }
  auto missing =
      LoadSentencePieceTokenizer(testing::TempDir() + "/none.model", SpmSemantics::kTransformers);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST(SentencePieceModelTest, CorruptedBytesNeverCrash) {
  const std::string bytes = MistralModelBytes();
  std::mt19937 rng(7);
  int failures = 0;
  for (int round = 0; round < 80; ++round) {
    std::string mutated = bytes;
    for (int i = 0; i < 4; ++i) {
      mutated[rng() % mutated.size()] = static_cast<char>(rng() & 0xFF);
    }
    auto model = ParseSentencePieceModel(mutated, "mutated.model");
    if (!model.ok()) {
      ++failures;
      EXPECT_THAT(model.status().message(), HasSubstr("mutated.model"));
      continue;
    }
    // Parsed: building the tokenizer must succeed or fail cleanly too.
    auto vocab = SpmVocabFromModel(*model, "mutated.model", SpmSemantics::kSentencePiece);
    if (vocab.ok()) (void)SpmTokenizer::Create(*std::move(vocab));
  }
  EXPECT_GT(failures, 0);
}

// --- SentencePiece-style tokenizer.json structures that are refused -----------------------

Json MistralTokenizerJson() {
  std::ifstream in(testing::SourcePath("tests/fixtures/mistral_spm/tokenizer.json"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return Json::parse(buffer.str());
}

void ExpectRefused(const Json& tokenizer, const std::string& name,
                   const std::vector<std::string>& fragments) {
  const std::string dir = testing::TempDir() + "/" + name;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer.json") << tokenizer.dump();
  auto tok = LoadHfTokenizer(dir);
  ASSERT_FALSE(tok.ok()) << name;
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented) << tok.status();
  EXPECT_THAT(tok.status().message(), HasSubstr(dir + "/tokenizer.json"));
  for (const std::string& fragment : fragments) {
    EXPECT_THAT(tok.status().message(), HasSubstr(fragment)) << name;
  }
}

TEST(SpmTokenizerJsonTest, UnsupportedStructuresNameTheFile) {
  const Json base = MistralTokenizerJson();
  Json t = base;
  t["normalizer"] = {{"type", "NFKC"}};
  ExpectRefused(t, "spm_nfkc", {"normalizer 'NFKC'"});
  t = base;
  t["model"]["type"] = "Unigram";
  ExpectRefused(t, "spm_unigram", {"'Unigram'"});
  t = base;
  t["pre_tokenizer"]["replacement"] = "_";
  ExpectRefused(t, "spm_replacement", {"replacement"});
  t = base;
  t["decoder"] = {{"type", "ByteLevel"}};
  ExpectRefused(t, "spm_decoder", {"decoder 'ByteLevel'"});
  t = base;
  t["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}}, {{"type", "Digits"}}}}};
  ExpectRefused(t, "spm_sequence", {"pre_tokenizer 'Sequence[Metaspace, Digits]'"});
  t = base;
  t["model"]["ignore_merges"] = true;
  ExpectRefused(t, "spm_ignore_merges", {"ignore_merges"});
}

TEST(SpmTokenizerJsonTest, TokenizerModelFallbackErrorsNameTheFile) {
  const std::string dir = testing::TempDir() + "/model_fallback_bad";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer.model", std::ios::binary) << MistralModelBytes().substr(0, 5000);
  auto tok = LoadHfTokenizer(dir);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr(dir + "/tokenizer.model"));

  std::ofstream(dir + "/tokenizer.model", std::ios::binary) << MistralModelBytes();
  std::ofstream(dir + "/tokenizer_config.json") << R"({"tokenizer_class": "T5Tokenizer"})";
  tok = LoadHfTokenizer(dir);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(tok.status().message(), HasSubstr("T5Tokenizer"));
  EXPECT_THAT(tok.status().message(), AnyOf(HasSubstr(dir + "/tokenizer_config.json")));
}

}  // namespace
}  // namespace moeserve
