// The scheduler as a pure step function over fake sequences: budgets, chunked prefill,
// decode-first ordering, FCFS admission, preemption of the newest, and every block back.
#include "engine/scheduler.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace moeserve {
namespace {

constexpr int32_t kBlock = 4;

std::unique_ptr<Sequence> MakeSeq(const std::string& id, int32_t prompt_len) {
  Request r;
  r.id = id;
  r.prompt_token_ids.assign(prompt_len, 5);
  return std::make_unique<Sequence>(std::move(r), std::make_shared<RequestHandle>(id), nullptr,
                                    0);
}

// What the engine does after a step: sequences whose tokens are all computed get one more.
void SampleOne(const SchedulerOutput& out) {
  for (const ScheduledChunk& c : out.chunks) {
    if (c.seq->num_uncomputed() == 0) c.seq->tokens.push_back(7);
  }
}

std::vector<std::pair<std::string, int32_t>> Plan(const SchedulerOutput& out) {
  std::vector<std::pair<std::string, int32_t>> plan;
  for (const ScheduledChunk& c : out.chunks) plan.emplace_back(c.seq->request.id, c.num_tokens);
  return plan;
}

using P = std::vector<std::pair<std::string, int32_t>>;

TEST(SchedulerTest, ChunksLongPromptsAndPutsDecodesFirst) {
  KvCacheManager kv(100, kBlock);
  Scheduler s({/*max_num_seqs=*/4, /*max_num_batched_tokens=*/10}, &kv);
  s.Add(MakeSeq("a", 3));
  s.Add(MakeSeq("b", 25));
  SchedulerOutput out = s.Schedule();
  EXPECT_EQ(Plan(out), (P{{"a", 3}, {"b", 7}}));
  s.Update(out);
  SampleOne(out);  // a decodes next; b is mid-prefill
  out = s.Schedule();
  EXPECT_EQ(Plan(out), (P{{"a", 1}, {"b", 9}}));  // a's decode first, b's chunk fills the rest
  s.Update(out);
  SampleOne(out);
  out = s.Schedule();
  EXPECT_EQ(Plan(out), (P{{"a", 1}, {"b", 9}}));
  s.Update(out);
  SampleOne(out);  // b's prompt is done: it samples
  EXPECT_EQ(s.num_running(), 2);
  EXPECT_EQ(Plan(s.Schedule()), (P{{"a", 1}, {"b", 1}}));
}

TEST(SchedulerTest, AdmitsFirstComeFirstServedUpToMaxNumSeqs) {
  KvCacheManager kv(100, kBlock);
  Scheduler s({2, 100}, &kv);
  for (const char* id : {"a", "b", "c"}) s.Add(MakeSeq(id, 2));
  SchedulerOutput out = s.Schedule();
  EXPECT_EQ(Plan(out), (P{{"a", 2}, {"b", 2}}));
  EXPECT_EQ(s.num_waiting(), 1);
  s.Update(out);
  SampleOne(out);
  for (auto& done : s.RemoveIf([](const Sequence& q) { return q.request.id == "a"; })) {
    EXPECT_TRUE(done->blocks.empty());
  }
  EXPECT_EQ(Plan(s.Schedule()), (P{{"b", 1}, {"c", 2}}));
}

TEST(SchedulerTest, PreemptsTheNewestWhenBlocksRunOutAndRecomputesIt) {
  // 4 blocks of 4 tokens; a and b each hold 2 blocks after 8 tokens of prompt.
  KvCacheManager kv(4, kBlock);
  Scheduler s({4, 100}, &kv);
  s.Add(MakeSeq("a", 8));
  s.Add(MakeSeq("b", 8));
  SchedulerOutput out = s.Schedule();
  EXPECT_EQ(Plan(out), (P{{"a", 8}, {"b", 8}}));
  EXPECT_EQ(kv.num_free_blocks(), 0);
  s.Update(out);
  SampleOne(out);
  // a's 9th token needs a third block: b (the newest) is preempted, and nothing is admitted.
  out = s.Schedule();
  EXPECT_EQ(Plan(out), (P{{"a", 1}}));
  ASSERT_EQ(out.preempted.size(), 1u);
  EXPECT_EQ(out.preempted[0]->request.id, "b");
  EXPECT_EQ(out.preempted[0]->num_computed, 0);
  EXPECT_EQ(out.preempted[0]->num_tokens(), 9);  // keeps its sampled token for recompute
  EXPECT_EQ(s.num_waiting(), 1);
  s.Update(out);
  SampleOne(out);
  // a finishes: b comes back and recomputes all 9 tokens.
  s.RemoveIf([](const Sequence& q) { return q.request.id == "a"; });
  EXPECT_EQ(kv.num_free_blocks(), 4);
  out = s.Schedule();
  EXPECT_EQ(Plan(out), (P{{"b", 9}}));
  EXPECT_EQ(out.chunks[0].seq->num_preemptions, 1);
}

TEST(SchedulerTest, ALoneSequenceThatCannotGrowPreemptsItself) {
  KvCacheManager kv(2, kBlock);
  Scheduler s({4, 100}, &kv);
  s.Add(MakeSeq("a", 8));
  SchedulerOutput out = s.Schedule();
  s.Update(out);
  SampleOne(out);
  out = s.Schedule();  // needs a third block that does not exist
  EXPECT_TRUE(out.chunks.empty());
  ASSERT_EQ(out.preempted.size(), 1u);
  EXPECT_EQ(kv.num_free_blocks(), 2);
}

TEST(SchedulerTest, RemoveIfFreesEveryBlockAtAnyStage) {
  KvCacheManager kv(20, kBlock);
  Scheduler s({3, 6}, &kv);
  for (const char* id : {"a", "b", "c", "d"}) s.Add(MakeSeq(id, 9));
  for (int step = 0; step < 3; ++step) {
    SchedulerOutput out = s.Schedule();
    s.Update(out);
    SampleOne(out);
  }
  EXPECT_LT(kv.num_free_blocks(), 20);
  EXPECT_EQ(s.RemoveIf([](const Sequence&) { return true; }).size(), 4u);
  EXPECT_EQ(kv.num_free_blocks(), 20);
  EXPECT_FALSE(s.has_work());
}

}  // namespace
}  // namespace moeserve
