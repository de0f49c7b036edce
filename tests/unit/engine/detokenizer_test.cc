#include "engine/detokenizer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

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
