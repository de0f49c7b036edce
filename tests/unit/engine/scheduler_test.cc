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
  return std::make_unique<Sequence>(std::move(r), std::make_shared<RequestHandle>(id), nullptr, 0);
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

std::unique_ptr<Sequence> MakeSeqWithTokens(const std::string& id, std::vector<int32_t> tokens) {
  Request r;
  r.id = id;
  r.prompt_token_ids = std::move(tokens);
  return std::make_unique<Sequence>(std::move(r), std::make_shared<RequestHandle>(id), nullptr, 0);
}

// Runs the scheduler until nothing is left, finishing each sequence after `generate`
// tokens; returns what each step scheduled.
std::vector<P> RunToCompletion(Scheduler& s, int32_t generate) {
  std::vector<P> plans;
  while (s.has_work()) {
    SchedulerOutput out = s.Schedule();
    plans.push_back(Plan(out));
    s.Update(out);
    SampleOne(out);
    s.RemoveIf([&](const Sequence& q) { return q.num_generated() >= generate; });
  }
  return plans;
}

// A shared system prompt is computed once: later requests start from its cached blocks.
TEST(SchedulerPrefixCacheTest, SharedPrefixIsComputedOnce) {
  KvCacheManager kv(20, kBlock, /*enable_prefix_caching=*/true);
  Scheduler s({4, 64}, &kv);
  std::vector<int32_t> system(10);  // two full blocks and a half
  for (int32_t i = 0; i < 10; ++i) system[i] = 100 + i;
  auto with_question = [&](int32_t q) {
    std::vector<int32_t> t = system;
    t.push_back(q);
    t.push_back(q + 1);
    return t;
  };
  s.Add(MakeSeqWithTokens("a", with_question(1)));
  EXPECT_EQ(RunToCompletion(s, 2), (std::vector<P>{{{"a", 12}}, {{"a", 1}}}));
  EXPECT_EQ(kv.prefix_cache_hits(), 0);
  EXPECT_EQ(kv.num_free_blocks(), 20);

  // b shares a's first two blocks (8 tokens): it computes only the 4 after them.
  s.Add(MakeSeqWithTokens("b", with_question(50)));
  EXPECT_EQ(RunToCompletion(s, 2), (std::vector<P>{{{"b", 4}}, {{"b", 1}}}));
  EXPECT_EQ(kv.prefix_cache_hits(), 8);
  EXPECT_EQ(kv.prefix_cache_queries(), 24);

  // Two at once, after a and b: both hit, and hold the shared blocks together.
  s.Add(MakeSeqWithTokens("c", with_question(60)));
  s.Add(MakeSeqWithTokens("d", with_question(70)));
  SchedulerOutput out = s.Schedule();
  EXPECT_EQ(Plan(out), (P{{"c", 4}, {"d", 4}}));
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[0].seq->blocks[0], out.chunks[1].seq->blocks[0]);
  EXPECT_EQ(kv.pool().ref_count(out.chunks[0].seq->blocks[0]), 2);
  s.RemoveIf([](const Sequence&) { return true; });
  EXPECT_EQ(kv.num_free_blocks(), 20);
}

// Siblings admitted in the same step (an n > 1 request) share the first one's full blocks:
// they are registered when scheduled, and the model writes a layer's K/V before reading.
TEST(SchedulerPrefixCacheTest, SiblingsInOneStepShareThePromptBlocks) {
  KvCacheManager kv(20, kBlock, true);
  Scheduler s({4, 64}, &kv);
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  for (const char* id : {"n0", "n1", "n2"}) s.Add(MakeSeqWithTokens(id, prompt));
  SchedulerOutput out = s.Schedule();
  EXPECT_EQ(Plan(out), (P{{"n0", 10}, {"n1", 2}, {"n2", 2}}));
  ASSERT_EQ(out.chunks.size(), 3u);
  for (int b = 0; b < 2; ++b) {
    EXPECT_EQ(out.chunks[1].seq->blocks[b], out.chunks[0].seq->blocks[b]);
    EXPECT_EQ(out.chunks[2].seq->blocks[b], out.chunks[0].seq->blocks[b]);
    EXPECT_EQ(kv.pool().ref_count(out.chunks[0].seq->blocks[b]), 3);
  }
  // Each has its own partial last block.
  EXPECT_NE(out.chunks[1].seq->blocks[2], out.chunks[0].seq->blocks[2]);
  EXPECT_EQ(kv.num_free_blocks(), 20 - 2 - 3);
  s.RemoveIf([](const Sequence&) { return true; });
  EXPECT_EQ(kv.num_free_blocks(), 20);
}

// An identical prompt still computes its last token (the step must produce its logits),
// and a prompt that is exactly whole blocks reuses all but its last block.
TEST(SchedulerPrefixCacheTest, TheLastTokenIsAlwaysComputed) {
  KvCacheManager kv(20, kBlock, true);
  Scheduler s({4, 64}, &kv);
  const std::vector<int32_t> eight = {1, 2, 3, 4, 5, 6, 7, 8};
  s.Add(MakeSeqWithTokens("a", eight));
  RunToCompletion(s, 1);
  s.Add(MakeSeqWithTokens("b", eight));
  EXPECT_EQ(Plan(s.Schedule()), (P{{"b", 4}}));
  EXPECT_EQ(kv.prefix_cache_hits(), 4);
}

TEST(SchedulerPrefixCacheTest, DisabledMeansNoHits) {
  KvCacheManager kv(20, kBlock, false);
  Scheduler s({4, 64}, &kv);
  const std::vector<int32_t> nine = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  s.Add(MakeSeqWithTokens("a", nine));
  RunToCompletion(s, 1);
  s.Add(MakeSeqWithTokens("b", nine));
  EXPECT_EQ(Plan(s.Schedule()), (P{{"b", 9}}));
  EXPECT_EQ(kv.prefix_cache_hits(), 0);
  EXPECT_EQ(kv.pool().num_cached(), 0);
}

// A preempted sequence comes back to its own cached blocks instead of recomputing them.
TEST(SchedulerPrefixCacheTest, PreemptedSequenceReusesItsCachedBlocks) {
  KvCacheManager kv(4, kBlock, true);
  Scheduler s({4, 64}, &kv);
  std::vector<int32_t> a(8, 1), b(8, 2);
  for (int32_t i = 0; i < 8; ++i) b[i] = 200 + i;
  s.Add(MakeSeqWithTokens("a", a));
  s.Add(MakeSeqWithTokens("b", b));
  SchedulerOutput out = s.Schedule();  // both prompts: all 4 blocks
  EXPECT_EQ(Plan(out), (P{{"a", 8}, {"b", 8}}));
  s.Update(out);
  SampleOne(out);
  out = s.Schedule();  // a's decode needs a fifth block: b (newest) is preempted
  EXPECT_EQ(Plan(out), (P{{"a", 1}}));
  ASSERT_EQ(out.preempted.size(), 1u);
  s.Update(out);
  SampleOne(out);
  s.RemoveIf([](const Sequence& q) { return q.request.id == "a"; });
  // b comes back: its first block was never reused, so only 5 tokens are recomputed...
  out = s.Schedule();
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].seq->request.id, "b");
  EXPECT_LT(out.chunks[0].num_tokens, 9);
  EXPECT_GE(kv.prefix_cache_hits(), 4);
  s.RemoveIf([](const Sequence&) { return true; });
  EXPECT_EQ(kv.num_free_blocks(), 4);
}

}  // namespace
}  // namespace moeserve
