#include "engine/request_handle.h"

#include <thread>

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
