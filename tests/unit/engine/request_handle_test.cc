#include "engine/request_handle.h"

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace moeserve {
namespace {

RequestOutput Text(std::string s, FinishReason reason = FinishReason::kNone) {
  RequestOutput out;
  out.text_delta = std::move(s);
  out.token_ids = {7};
  out.finish_reason = reason;
  return out;
}

TEST(RequestHandleTest, MergesPiledUpOutputsUpToTheFinalOne) {
  RequestHandle handle("r");
  handle.Push(Text("a"));
  handle.Push(Text("b"));
  handle.Push(Text("c", FinishReason::kStop));
  std::optional<RequestOutput> out = handle.Next(absl::Seconds(1));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->text_delta, "abc");
  EXPECT_EQ(out->token_ids.size(), 3u);
  EXPECT_EQ(out->finish_reason, FinishReason::kStop);
  EXPECT_FALSE(handle.Next(absl::Milliseconds(1)).has_value());  // nothing after the final
}

TEST(RequestHandleTest, MergesLogprobsWithTheirTokens) {
  RequestHandle handle("r");
  RequestOutput a = Text("a");
  a.logprobs.push_back(TokenLogprob{7, -0.5f, {{7, -0.5f}}});
  RequestOutput b = Text("b", FinishReason::kStop);
  b.logprobs.push_back(TokenLogprob{8, -1.5f, {{8, -1.5f}}});
  handle.Push(a);
  handle.Push(b);
  std::optional<RequestOutput> out = handle.Next(absl::Seconds(1));
  ASSERT_TRUE(out.has_value());
  ASSERT_EQ(out->logprobs.size(), 2u);
  EXPECT_EQ(out->logprobs[0].token, 7);
  EXPECT_EQ(out->logprobs[1].token, 8);
  EXPECT_EQ(out->logprobs[1].logprob, -1.5f);
}

RequestOutput Choice(int32_t index, std::string s, FinishReason reason = FinishReason::kNone) {
  RequestOutput out = Text(std::move(s), reason);
  out.index = index;
  return out;
}

TEST(RequestHandleTest, MergesOnlyConsecutiveOutputsOfOneChoice) {
  RequestHandle handle("r", /*num_choices=*/2);
  EXPECT_EQ(handle.num_choices(), 2);
  handle.Push(Choice(0, "a"));
  handle.Push(Choice(0, "b"));
  handle.Push(Choice(1, "x"));
  handle.Push(Choice(0, "c"));
  handle.Push(Choice(1, "y"));
  handle.Push(Choice(1, "z", FinishReason::kStop));
  std::vector<std::pair<int32_t, std::string>> got;
  while (std::optional<RequestOutput> out = handle.Next(absl::Milliseconds(1))) {
    got.emplace_back(out->index, out->text_delta);
  }
  EXPECT_EQ(got, (std::vector<std::pair<int32_t, std::string>>{
                     {0, "ab"}, {1, "x"}, {0, "c"}, {1, "yz"}}));
}

TEST(RequestHandleTest, EndsOnlyAfterTheFinalOfEveryChoice) {
  RequestHandle handle("r", /*num_choices=*/3);
  handle.Push(Choice(1, "a", FinishReason::kStop));
  handle.Push(Choice(1, "late"));  // never merged into a final output
  std::optional<RequestOutput> out = handle.Next(absl::Seconds(1));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->text_delta, "a");
  EXPECT_TRUE(out->finished());
  out = handle.Next(absl::Seconds(1));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->text_delta, "late");
  EXPECT_FALSE(handle.Next(absl::Milliseconds(1)).has_value());  // a timeout, not the end
  handle.Push(Choice(0, "b", FinishReason::kLength));
  RequestOutput error = Choice(2, "");
  error.error = absl::InternalError("boom");
  handle.Push(error);
  out = handle.Next(absl::Seconds(1));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->index, 0);
  out = handle.Next(absl::Seconds(1));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->index, 2);
  EXPECT_FALSE(out->error.ok());
  // Every choice has finished: nothing more, even if something were pushed.
  handle.Push(Choice(0, "after"));
  EXPECT_FALSE(handle.Next(absl::Seconds(1)).has_value());
}

TEST(RequestHandleTest, TimesOutWhenEmptyAndWakesOnPush) {
  RequestHandle handle("r");
  EXPECT_FALSE(handle.Next(absl::Milliseconds(5)).has_value());
  std::thread producer([&] { handle.Push(Text("x", FinishReason::kLength)); });
  std::optional<RequestOutput> out = handle.Next(absl::Seconds(10));
  producer.join();
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->text_delta, "x");
}

TEST(RequestHandleTest, AbortIsIdempotentAndVisible) {
  RequestHandle handle("r");
  EXPECT_FALSE(handle.aborted());
  handle.Abort();
  handle.Abort();
  EXPECT_TRUE(handle.aborted());
}

}  // namespace
}  // namespace moeserve
