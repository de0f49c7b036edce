#include "engine/detokenizer.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/tokenizer/hf_tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

// Token id i stands for bytes_[i]; id 0 is a special token.
class ByteTokenizer : public Tokenizer {
 public:
  explicit ByteTokenizer(std::vector<std::string> bytes) : bytes_(std::move(bytes)) {}
  std::vector<int32_t> Encode(std::string_view, bool) const override { return {}; }
  std::string TokenBytes(int32_t id) const override { return bytes_[id]; }
  std::string Decode(absl::Span<const int32_t>, bool) const override { return ""; }
  int32_t vocab_size() const override { return static_cast<int32_t>(bytes_.size()); }
  bool IsSpecial(int32_t id) const override { return id == 0; }
  std::optional<int32_t> FindToken(std::string_view) const override { return std::nullopt; }
  int32_t bos_id() const override { return -1; }
  int32_t eos_id() const override { return 0; }
  bool add_bos_token() const override { return false; }
  const std::vector<int32_t>& stop_ids() const override { return stops_; }

 private:
  std::vector<std::string> bytes_;
  std::vector<int32_t> stops_ = {0};
};

TEST(DetokenizerTest, HoldsBackSplitCharacters) {
  // "é" = C3 A9 and "€" = E2 82 AC split over tokens.
  ByteTokenizer tok({"<eos>", "caf", "\xC3", "\xA9", " ", "\xE2\x82", "\xAC", "!"});
  IncrementalDetokenizer detok(&tok);
  EXPECT_EQ(detok.Push(1), "caf");
  EXPECT_EQ(detok.Push(2), "");
  EXPECT_EQ(detok.Push(3), "\xC3\xA9");
  EXPECT_EQ(detok.Push(4), " ");
  EXPECT_EQ(detok.Push(5), "");
  EXPECT_EQ(detok.Push(6), "\xE2\x82\xAC");
  EXPECT_EQ(detok.Push(0), "");  // special tokens give no text
  EXPECT_EQ(detok.Push(7), "!");
  EXPECT_EQ(detok.Flush(), "");
}

TEST(DetokenizerTest, FlushReplacesAnUnfinishedCharacter) {
  ByteTokenizer tok({"<eos>", "a", "\xF0\x9F"});
  IncrementalDetokenizer detok(&tok);
  EXPECT_EQ(detok.Push(1), "a");
  EXPECT_EQ(detok.Push(2), "");
  EXPECT_EQ(detok.Flush(), "\xEF\xBF\xBD");
}

// Streams `ids` through a detokenizer with stop strings: the deltas, then whether it stopped
// and at which push.
struct StopRun {
  std::vector<std::string> deltas;  // one per Push, then Flush's
  int stopped_at = -1;              // index of the push that found a stop string
  std::string text() const {
    std::string all;
    for (const std::string& d : deltas) all += d;
    return all;
  }
};

StopRun RunWithStops(const Tokenizer& tok, const std::vector<int32_t>& ids,
                     std::vector<std::string> stop) {
  IncrementalDetokenizer detok(&tok, std::move(stop));
  StopRun run;
  for (size_t i = 0; i < ids.size() && run.stopped_at < 0; ++i) {
    run.deltas.push_back(detok.Push(ids[i]));
    if (detok.stopped()) run.stopped_at = static_cast<int>(i);
  }
  run.deltas.push_back(detok.Flush());
  return run;
}

TEST(DetokenizerStopTest, StopStringSplitAcrossTokens) {
  ByteTokenizer tok({"<eos>", "Hello ", "wo", "rld", "!", " wor", "k"});
  // "world" arrives as "wo" + "rld": "wo" is held back, then the match cuts before it.
  StopRun run = RunWithStops(tok, {1, 2, 3, 4}, {"world"});
  EXPECT_EQ(run.deltas, (std::vector<std::string>{"Hello ", "", "", ""}));
  EXPECT_EQ(run.stopped_at, 2);
  EXPECT_EQ(run.text(), "Hello ");
  // A held-back prefix that turns out not to match is released: " wor" + "k".
  run = RunWithStops(tok, {1, 5, 6, 4}, {"world"});
  EXPECT_EQ(run.deltas, (std::vector<std::string>{"Hello ", " ", "work", "!", ""}));
  EXPECT_EQ(run.stopped_at, -1);
  // Held-back text is released by Flush when the request ends for another reason.
  run = RunWithStops(tok, {1, 2}, {"world"});
  EXPECT_EQ(run.deltas, (std::vector<std::string>{"Hello ", "", "wo"}));
}

TEST(DetokenizerStopTest, StopInsideOneToken) {
  ByteTokenizer tok({"<eos>", "abc\ndef", "x"});
  const StopRun run = RunWithStops(tok, {1, 2}, {"\n"});
  EXPECT_EQ(run.deltas, (std::vector<std::string>{"abc", ""}));
  EXPECT_EQ(run.stopped_at, 0);
}

TEST(DetokenizerStopTest, StopAtTheVeryStart) {
  ByteTokenizer tok({"<eos>", "Answer", ": yes"});
  const StopRun run = RunWithStops(tok, {1, 2}, {"Ans"});
  EXPECT_EQ(run.text(), "");
  EXPECT_EQ(run.stopped_at, 0);
}

TEST(DetokenizerStopTest, SeveralStopsTheEarliestWins) {
  ByteTokenizer tok({"<eos>", "one two", " three", " four"});
  // "three" ends first in the stream but "two" starts earlier in the same text.
  StopRun run = RunWithStops(tok, {1, 2, 3}, {"three", "two three", "four"});
  EXPECT_EQ(run.text(), "one ");
  EXPECT_EQ(run.stopped_at, 1);
  // Prefixes of "o tx" and "e fo" are held back, then released or matched across tokens.
  run = RunWithStops(tok, {1, 2, 3}, {"o tx", "e fo", "zzz"});
  EXPECT_EQ(run.text(), "one two thre");
  EXPECT_EQ(run.deltas, (std::vector<std::string>{"one tw", "o thre", "", ""}));
  EXPECT_EQ(run.stopped_at, 2);
}

TEST(DetokenizerStopTest, MultiByteCharactersAcrossTokens) {
  // "€" = E2 82 AC arrives in two tokens; the stop string "€5" spans three.
  const std::string euro = "\xE2\x82\xAC";
  ByteTokenizer tok({"<eos>", "cost: ", "\xE2\x82", "\xAC", "5", euro + "4"});
  StopRun run = RunWithStops(tok, {1, 2, 3, 4}, {euro + "5"});
  EXPECT_EQ(run.deltas, (std::vector<std::string>{"cost: ", "", "", "", ""}));
  EXPECT_EQ(run.stopped_at, 3);
  EXPECT_EQ(run.text(), "cost: ");
  // "€4" is not "€5": the held "€" is released with the "4".
  run = RunWithStops(tok, {1, 5}, {euro + "5"});
  EXPECT_EQ(run.deltas, (std::vector<std::string>{"cost: ", euro + "4", ""}));
  // A stop string that ends in a multi-byte character.
  run = RunWithStops(tok, {1, 2, 3, 4}, {": " + euro});
  EXPECT_EQ(run.text(), "cost");
  EXPECT_EQ(run.stopped_at, 2);
}

TEST(DetokenizerStopTest, SpecialTokensAreInvisibleToStops) {
  ByteTokenizer tok({"<eos>", "ab", "cd"});
  const StopRun run = RunWithStops(tok, {1, 0, 2}, {"bc"});
  EXPECT_EQ(run.text(), "a");
  EXPECT_EQ(run.stopped_at, 2);
}

TEST(DetokenizerStopTest, NoTextAfterTheStop) {
  ByteTokenizer tok({"<eos>", "a.b", "c"});
  IncrementalDetokenizer detok(&tok, {"."});
  EXPECT_EQ(detok.Push(1), "a");
  EXPECT_TRUE(detok.stopped());
  EXPECT_EQ(detok.Push(2), "");
  EXPECT_EQ(detok.Flush(), "");
}

// Streams `ids` one token at a time, as the engine does, and returns all the text.
std::string Stream(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  IncrementalDetokenizer detok(&tok);
  std::string text;
  for (const int32_t id : ids) text += detok.Push(id);
  return text + detok.Flush();
}

// SentencePiece (Mistral): the dummy prefix's space is dropped once, "▁" becomes a space,
// byte-fallback tokens are joined into characters; the streamed text is what Hugging Face
// decodes with skip_special_tokens for every case of the parity corpus.
TEST(DetokenizerTest, SentencePieceStreamsAsHfDecodes) {
  auto tok = LoadHfTokenizer(testing::SourcePath("tests/fixtures/mistral_spm"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  const Tokenizer& t = **tok;
  const int32_t hello = t.FindToken("\xE2\x96\x81Hello").value_or(-1);
  const int32_t world = t.FindToken("\xE2\x96\x81world").value_or(-1);
  ASSERT_GE(hello, 0);
  ASSERT_GE(world, 0);
  {
    IncrementalDetokenizer detok(&t);
    EXPECT_EQ(detok.Push(1), "");  // <s>
    EXPECT_EQ(detok.Push(hello), "Hello");
    EXPECT_EQ(detok.Push(world), " world");
  }
  // "中" is three byte tokens: nothing until the character is complete.
  const std::vector<int32_t> ids = t.Encode("\xE4\xB8\xAD\xF0\x9F\xAB\xA0", true);
  {
    IncrementalDetokenizer detok(&t);
    std::vector<std::string> pieces;
    for (const int32_t id : ids) pieces.push_back(detok.Push(id));
    for (const std::string& piece : pieces) {
      EXPECT_TRUE(piece.empty() || piece == " " || piece.size() >= 3) << piece;
    }
  }

  std::ifstream in(testing::SourcePath("tests/fixtures/mistral_spm_tokenizer_cases.json"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const nlohmann::json cases = nlohmann::json::parse(buffer.str());
  for (const nlohmann::json& c : cases["encode_cases"]) {
    const auto case_ids = c["ids"].get<std::vector<int32_t>>();
    const std::string want = c.value("decoded_skip_special", c["decoded"].get<std::string>());
    EXPECT_EQ(Stream(t, case_ids), want) << c["text"].dump();
  }
}

TEST(TakeCompleteUtf8Test, ReplacesInvalidAndKeepsIncompleteTail) {
  struct Case {
    std::string in, valid;
    size_t taken;
  };
  const std::string r = "\xEF\xBF\xBD";
  const Case cases[] = {
      {"abc", "abc", 3},
      {"a\xC3", "a", 1},  // incomplete: wait
      {"\xFF"
       "b",
       r + "b", 2},  // invalid lead byte
      {"\xC3"
       "b",
       r + "b", 2},                            // lead without continuation
      {"\xE0\x80\x80", r + r + r, 3},          // overlong: E0 needs A0..BF next
      {"\xED\xA0\x80", r + r + r, 3},          // surrogate
      {"\xF4\x90\x80\x80", r + r + r + r, 4},  // above U+10FFFF
      {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80", 4},
      {"\xF0\x9F\x98", "", 0},
  };
  for (const Case& c : cases) {
    std::string valid;
    EXPECT_EQ(TakeCompleteUtf8(c.in, &valid), c.taken) << c.in;
    EXPECT_EQ(valid, c.valid) << c.in;
  }
}

}  // namespace
}  // namespace moeserve
