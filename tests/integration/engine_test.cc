// The Engine facade on the real SmolLM2 model: the loop thread, request handles, greedy
// and seeded sampling, EOS and length finishes, concurrency, aborts and submit errors.
#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

struct Collected {
  std::string text;
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  absl::Status error;
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  std::vector<TokenLogprob> logprobs;
};

Collected Collect(RequestHandle& handle) {
  Collected c;
  while (true) {
    std::optional<RequestOutput> out = handle.Next(absl::Seconds(120));
    if (!out.has_value()) {
      c.error = absl::DeadlineExceededError("no output within 120 s");
      return c;
    }
    c.text += out->text_delta;
    c.tokens.insert(c.tokens.end(), out->token_ids.begin(), out->token_ids.end());
    c.logprobs.insert(c.logprobs.end(), out->logprobs.begin(), out->logprobs.end());
    c.prompt_tokens = out->prompt_tokens;
    c.completion_tokens = out->completion_tokens;
    if (out->finished()) {
      c.finish = out->finish_reason;
      c.error = out->error;
      return c;
    }
  }
}

// The outputs of a request with n choices, per choice, until every choice finished.
std::vector<Collected> CollectChoices(RequestHandle& handle, int32_t n) {
  std::vector<Collected> choices(n);
  int32_t num_finished = 0;
  while (num_finished < n) {
    std::optional<RequestOutput> out = handle.Next(absl::Seconds(120));
    if (!out.has_value()) {
      for (Collected& c : choices) c.error = absl::DeadlineExceededError("no output within 120 s");
      return choices;
    }
    EXPECT_TRUE(out->index >= 0 && out->index < n) << out->index;
    if (out->index < 0 || out->index >= n) return choices;
    Collected& c = choices[out->index];
    EXPECT_EQ(c.finish, FinishReason::kNone) << "output after the final of choice " << out->index;
    c.text += out->text_delta;
    c.tokens.insert(c.tokens.end(), out->token_ids.begin(), out->token_ids.end());
    c.prompt_tokens = out->prompt_tokens;
    c.completion_tokens = out->completion_tokens;
    if (out->finished()) {
      c.finish = out->finish_reason;
      c.error = out->error;
      ++num_finished;
    }
  }
  EXPECT_FALSE(handle.Next(absl::Milliseconds(1)).has_value()) << "the handle ends after all";
  return choices;
}

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::DefaultModelPath().empty()) return;
    EngineConfig config;
    config.model_path = testing::DefaultModelPath();
    config.max_model_len = 512;
    config.max_num_seqs = 4;
    config.max_num_batched_tokens = 64;  // long prompts are chunked
    auto engine = Engine::Create(config);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = engine->release();
    std::ifstream in(testing::SourcePath("tests/fixtures/smollm2_greedy.json"));
    fixture_ = new nlohmann::json(nlohmann::json::parse(in));
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete fixture_;
  }
  void SetUp() override {
    if (engine_ == nullptr) GTEST_SKIP() << "default model not installed (scripts/bootstrap.sh)";
  }

  static Request MakeRequest(int prompt_index, int32_t max_tokens, float temperature = 0.0f) {
    Request r;
    r.id = "test-" + std::to_string(prompt_index);
    r.prompt_token_ids =
        (*fixture_)["prompts"][prompt_index]["prompt_ids"].get<std::vector<int32_t>>();
    r.sampling.max_tokens = max_tokens;
    r.sampling.temperature = temperature;
    return r;
  }

  static std::vector<int32_t> FixtureTokens(int prompt_index) {
    std::vector<int32_t> tokens;
    for (const auto& step : (*fixture_)["prompts"][prompt_index]["steps"]) {
      tokens.push_back(step["token"].get<int32_t>());
    }
    return tokens;
  }

  static Collected Run(Request r) {
    auto handle = engine_->Submit(std::move(r));
    EXPECT_TRUE(handle.ok()) << handle.status();
    if (!handle.ok()) return {};
    return Collect(**handle);
  }

  static Engine* engine_;
  static nlohmann::json* fixture_;
};
Engine* EngineTest::engine_ = nullptr;
nlohmann::json* EngineTest::fixture_ = nullptr;

TEST_F(EngineTest, GreedyMatchesTransformersAndStopsAtLength) {
  Request r = MakeRequest(1, 32);
  r.sampling.ignore_eos = true;
  const Collected c = Run(std::move(r));
  ASSERT_TRUE(c.error.ok()) << c.error;
  EXPECT_EQ(c.tokens, FixtureTokens(1));
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.completion_tokens, 32);
  EXPECT_EQ(c.text, engine_->tokenizer().Decode(c.tokens, /*skip_special=*/true));
}

TEST_F(EngineTest, StopsAtEndOfTurn) {
  const Collected c = Run(MakeRequest(0, 64));
  ASSERT_TRUE(c.error.ok()) << c.error;
  EXPECT_EQ(c.finish, FinishReason::kStop);
  EXPECT_EQ(c.text, "The capital of France is Paris.");
  EXPECT_LT(c.completion_tokens, 64);
}

TEST_F(EngineTest, ConcurrentRequestsMatchSequentialOnes) {
  const int n = static_cast<int>((*fixture_)["prompts"].size());
  std::vector<Collected> sequential;
  for (int i = 0; i < n; ++i) sequential.push_back(Run(MakeRequest(i, 24)));
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < n; ++i) {
    auto h = engine_->Submit(MakeRequest(i, 24));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*h);
  }
  std::vector<Collected> concurrent(n);
  std::vector<std::thread> readers;
  for (int i = 0; i < n; ++i)
    readers.emplace_back([&, i] { concurrent[i] = Collect(*handles[i]); });
  for (std::thread& t : readers) t.join();
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(concurrent[i].tokens, sequential[i].tokens) << "prompt " << i;
    EXPECT_EQ(concurrent[i].text, sequential[i].text) << "prompt " << i;
  }
}

// Waits until the engine thread has published a state with every block free.
bool AllBlocksReturn(const Engine& engine) {
  for (int i = 0; i < 500; ++i) {
    const EngineStats stats = engine.stats();
    if (stats.num_free_blocks == stats.num_blocks && stats.num_running == 0 &&
        stats.num_waiting == 0) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// A KV cache too small for all requests at once forces preemption, and a 16-token budget
// chunks every prompt: the greedy outputs must still be the sequential ones, and every
// block must come back.
TEST_F(EngineTest, PreemptionAndChunkingChangeNothing) {
  const int n = static_cast<int>((*fixture_)["prompts"].size());
  std::vector<Collected> sequential;
  for (int i = 0; i < n; ++i) sequential.push_back(Run(MakeRequest(i, 24)));

  EngineConfig config;
  config.model_path = testing::DefaultModelPath();
  config.max_num_seqs = 8;
  config.max_num_batched_tokens = 16;
  config.kv_cache_memory_bytes = int64_t{14} * 2 * 30 * 16 * 3 * 64 * 4;  // 14 blocks: 224 tokens
  auto small = Engine::Create(config);
  ASSERT_TRUE(small.ok()) << small.status();
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < n; ++i) {
    auto h = (*small)->Submit(MakeRequest(i, 24));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*h);
  }
  for (int i = 0; i < n; ++i) {
    const Collected c = Collect(*handles[i]);
    EXPECT_EQ(c.tokens, sequential[i].tokens) << "prompt " << i;
    EXPECT_EQ(c.text, sequential[i].text) << "prompt " << i;
  }
  EXPECT_GT((*small)->stats().num_preemptions, 0);
  EXPECT_TRUE(AllBlocksReturn(**small));
}

// Sixteen requests at once, some sharing prompt prefixes, on an engine with prefix caching
// give exactly the greedy tokens each gets alone on an engine without it; the shared
// prefixes are found in the cache, and every block comes back.
TEST_F(EngineTest, SixteenConcurrentRequestsWithPrefixCachingMatchSequentialOnes) {
  const int num_prompts = static_cast<int>((*fixture_)["prompts"].size());
  std::vector<Request> requests;
  for (int i = 0; i < 16; ++i) {
    Request r = MakeRequest(i % num_prompts, 16 + i % 5);
    r.id = "r" + std::to_string(i);
    // Requests past the first round extend a fixture prompt: a shared prefix of 2+ blocks.
    for (int j = 0; j < i / num_prompts; ++j) r.prompt_token_ids.push_back(100 + 7 * i + j);
    requests.push_back(r);
  }
  EngineConfig plain_config;
  plain_config.model_path = testing::DefaultModelPath();
  plain_config.enable_prefix_caching = false;
  auto plain = Engine::Create(plain_config);
  ASSERT_TRUE(plain.ok()) << plain.status();
  std::vector<Collected> sequential;
  for (const Request& r : requests) {
    auto h = (*plain)->Submit(r);
    ASSERT_TRUE(h.ok()) << h.status();
    sequential.push_back(Collect(**h));
  }
  EXPECT_EQ((*plain)->stats().prefix_cache_hits, 0);

  EngineConfig cached_config = plain_config;
  cached_config.enable_prefix_caching = true;
  cached_config.max_num_seqs = 16;
  cached_config.max_num_batched_tokens = 128;  // not every prompt is admitted at once
  auto cached = Engine::Create(cached_config);
  ASSERT_TRUE(cached.ok()) << cached.status();
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (const Request& r : requests) {
    auto h = (*cached)->Submit(r);
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*h);
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    const Collected c = Collect(*handles[i]);
    EXPECT_EQ(c.tokens, sequential[i].tokens) << requests[i].id;
    EXPECT_EQ(c.text, sequential[i].text) << requests[i].id;
  }
  EXPECT_GT((*cached)->stats().prefix_cache_hits, 0);
  EXPECT_TRUE(AllBlocksReturn(**cached));

  // Run again after all finished: every prompt's full blocks are in the cache now.
  const int64_t hits_before = (*cached)->stats().prefix_cache_hits;
  auto again = (*cached)->Submit(requests[15]);
  ASSERT_TRUE(again.ok()) << again.status();
  const Collected c = Collect(**again);
  EXPECT_EQ(c.tokens, sequential[15].tokens);
  const int64_t prompt_len = static_cast<int64_t>(requests[15].prompt_token_ids.size());
  EXPECT_EQ((*cached)->stats().prefix_cache_hits - hits_before, (prompt_len - 1) / 16 * 16);
  EXPECT_TRUE(AllBlocksReturn(**cached));
}

// Aborts from other threads at random moments under load leave no block behind.
TEST_F(EngineTest, RandomAbortsLeakNoBlocks) {
  std::mt19937 rng(5);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < 12; ++i) {
    auto h = engine_->Submit(MakeRequest(i % 6, 40));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*h);
  }
  std::vector<std::thread> aborters;
  for (auto& h : handles) {
    const int delay_ms = std::uniform_int_distribution<int>(0, 400)(rng);
    aborters.emplace_back([h, delay_ms] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      h->Abort();
    });
  }
  for (auto& h : handles) {
    const Collected c = Collect(*h);
    EXPECT_TRUE(c.finish == FinishReason::kAbort || c.finish == FinishReason::kStop ||
                c.finish == FinishReason::kLength);
  }
  for (std::thread& t : aborters) t.join();
  EXPECT_TRUE(AllBlocksReturn(*engine_));
}

TEST_F(EngineTest, SameSeedSameSampleDifferentSeedDifferentSample) {
  auto sample = [](uint64_t seed) {
    Request r = MakeRequest(1, 24, 1.0f);
    r.sampling.seed = seed;
    r.sampling.ignore_eos = true;
    return Run(std::move(r)).tokens;
  };
  const std::vector<int32_t> a = sample(7), b = sample(7), c = sample(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

// n = 3 greedy choices are three copies of the n = 1 greedy output. On a fresh engine the
// siblings, admitted in one step, find the prompt's full blocks of the first in the prefix
// cache: the hits are exactly the two other choices' full prompt blocks.
TEST_F(EngineTest, GreedyChoicesAreIdenticalAndShareThePromptBlocks) {
  EngineConfig config;
  config.model_path = testing::DefaultModelPath();
  config.max_model_len = 512;
  auto fresh = Engine::Create(config);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  Request r = MakeRequest(1, 32);
  r.sampling.ignore_eos = true;
  r.sampling.n = 3;
  const int64_t prompt_len = static_cast<int64_t>(r.prompt_token_ids.size());
  ASSERT_GE(prompt_len, 2 * config.block_size) << "the prompt must span two full blocks";
  auto handle = (*fresh)->Submit(r);
  ASSERT_TRUE(handle.ok()) << handle.status();
  const std::vector<Collected> choices = CollectChoices(**handle, 3);

  r.sampling.n = 1;
  const Collected single = Run(r);
  ASSERT_TRUE(single.error.ok()) << single.error;
  EXPECT_EQ(single.tokens, FixtureTokens(1));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(choices[i].error.ok()) << choices[i].error;
    EXPECT_EQ(choices[i].tokens, single.tokens) << "choice " << i;
    EXPECT_EQ(choices[i].text, single.text) << "choice " << i;
    EXPECT_EQ(choices[i].finish, FinishReason::kLength);
    EXPECT_EQ(choices[i].completion_tokens, 32);
    EXPECT_EQ(choices[i].prompt_tokens, prompt_len);
  }
  const int64_t full_blocks = (prompt_len - 1) / config.block_size;
  EXPECT_GT((*fresh)->stats().prefix_cache_hits, 0);
  EXPECT_EQ((*fresh)->stats().prefix_cache_hits, 2 * full_blocks * config.block_size);
  EXPECT_TRUE(AllBlocksReturn(**fresh));
}

// Seeded choices: choice i samples as an n = 1 request with seed + i, so a request is
// reproducible and its choices differ.
TEST_F(EngineTest, SeededChoicesAreReproducibleAndDiffer) {
  Request r = MakeRequest(1, 24, 1.0f);
  r.sampling.seed = 7;
  r.sampling.ignore_eos = true;
  r.sampling.n = 3;
  auto first = engine_->Submit(r);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::vector<Collected> a = CollectChoices(**first, 3);
  auto second = engine_->Submit(r);
  ASSERT_TRUE(second.ok()) << second.status();
  const std::vector<Collected> b = CollectChoices(**second, 3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(a[i].error.ok()) << a[i].error;
    EXPECT_EQ(a[i].tokens.size(), 24u);
    EXPECT_EQ(a[i].tokens, b[i].tokens) << "choice " << i;
    Request single = r;
    single.sampling.n = 1;
    single.sampling.seed = 7 + i;
    EXPECT_EQ(Run(single).tokens, a[i].tokens) << "choice " << i;
  }
  EXPECT_FALSE(a[0].tokens == a[1].tokens && a[1].tokens == a[2].tokens);

  // Without a seed each choice draws its own.
  r.sampling.seed.reset();
  auto unseeded = engine_->Submit(r);
  ASSERT_TRUE(unseeded.ok()) << unseeded.status();
  const std::vector<Collected> c = CollectChoices(**unseeded, 3);
  EXPECT_FALSE(c[0].tokens == c[1].tokens && c[1].tokens == c[2].tokens);
}

// Aborting the one handle of an n = 4 request ends every choice and frees every block.
TEST_F(EngineTest, AbortOfSeveralChoicesFreesEveryBlock) {
  Request r = MakeRequest(2, 400, 1.0f);
  r.sampling.ignore_eos = true;
  r.sampling.n = 4;
  auto handle = engine_->Submit(std::move(r));
  ASSERT_TRUE(handle.ok()) << handle.status();
  std::optional<RequestOutput> first = (*handle)->Next(absl::Seconds(60));
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->finished());
  (*handle)->Abort();
  std::vector<Collected> rest = CollectChoices(**handle, 4);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(rest[i].error.ok()) << rest[i].error;
    EXPECT_EQ(rest[i].finish, FinishReason::kAbort) << "choice " << i;
    EXPECT_LT(rest[i].completion_tokens, 400);
  }
  EXPECT_TRUE(AllBlocksReturn(*engine_));
}

// Greedy with a stop string: the greedy text cut right before the stop's first occurrence.
TEST_F(EngineTest, StopStringTruncatesTheGreedyText) {
  Request full = MakeRequest(1, 32);
  full.sampling.ignore_eos = true;
  const Collected whole = Run(full);
  ASSERT_TRUE(whole.error.ok()) << whole.error;
  ASSERT_EQ(whole.tokens, FixtureTokens(1));
  ASSERT_GT(whole.text.size(), 20u);
  // A stop string that straddles tokens: the last 2 bytes of the 3rd token's text and the
  // first 2 bytes of the 4th's (every SmolLM2 greedy token here is ASCII text).
  const Tokenizer& tok = engine_->tokenizer();
  std::string prefix;
  for (int i = 0; i < 3; ++i) prefix += tok.TokenBytes(whole.tokens[i]);
  const std::string fourth = tok.TokenBytes(whole.tokens[3]);
  ASSERT_GE(prefix.size(), 2u);
  ASSERT_GE(fourth.size(), 2u);
  const std::string stop = prefix.substr(prefix.size() - 2) + fourth.substr(0, 2);
  const size_t at = whole.text.find(stop);
  ASSERT_NE(at, std::string::npos);

  Request r = full;
  r.sampling.stop = {"never appears \x01", stop};
  const Collected cut = Run(r);
  ASSERT_TRUE(cut.error.ok()) << cut.error;
  EXPECT_EQ(cut.finish, FinishReason::kStop);
  EXPECT_EQ(cut.text, whole.text.substr(0, at));
  EXPECT_LT(cut.completion_tokens, 32);
  EXPECT_EQ(cut.tokens,
            std::vector<int32_t>(whole.tokens.begin(), whole.tokens.begin() + cut.tokens.size()));
}

// vLLM's stop_token_ids: the 5th greedy token ends the request, its text kept.
TEST_F(EngineTest, StopTokenIdsEndTheRequestKeepingTheTokensText) {
  const std::vector<int32_t> greedy = FixtureTokens(1);
  const auto fifth = std::find(greedy.begin(), greedy.end(), greedy[4]);
  Request r = MakeRequest(1, 32);
  r.sampling.ignore_eos = true;
  r.sampling.stop_token_ids = {greedy[4]};
  const Collected c = Run(std::move(r));
  ASSERT_TRUE(c.error.ok()) << c.error;
  EXPECT_EQ(c.finish, FinishReason::kStop);
  EXPECT_EQ(c.tokens, std::vector<int32_t>(greedy.begin(), fifth + 1));
  EXPECT_EQ(c.text, engine_->tokenizer().Decode(c.tokens, /*skip_special=*/true));
}

TEST_F(EngineTest, GreedyLogprobsPutTheChosenTokenFirst) {
  Request r = MakeRequest(1, 32);
  r.sampling.ignore_eos = true;
  r.sampling.logprobs = true;
  r.sampling.top_logprobs = 5;
  const Collected c = Run(std::move(r));
  ASSERT_TRUE(c.error.ok()) << c.error;
  EXPECT_EQ(c.tokens, FixtureTokens(1)) << "asking for logprobs changes nothing";
  ASSERT_EQ(c.logprobs.size(), c.tokens.size());
  for (size_t i = 0; i < c.tokens.size(); ++i) {
    const TokenLogprob& lp = c.logprobs[i];
    EXPECT_EQ(lp.token, c.tokens[i]);
    ASSERT_EQ(lp.top.size(), 5u);
    EXPECT_EQ(lp.top[0].token, lp.token) << i;
    EXPECT_EQ(lp.top[0].logprob, lp.logprob) << i;
    EXPECT_LE(lp.logprob, 0.0f);
    for (size_t j = 1; j < lp.top.size(); ++j) EXPECT_LE(lp.top[j].logprob, lp.top[j - 1].logprob);
  }
}

TEST_F(EngineTest, LogitBiasBansTheGreedyFirstToken) {
  const std::vector<int32_t> greedy = FixtureTokens(1);
  Request r = MakeRequest(1, 4);
  r.sampling.ignore_eos = true;
  r.sampling.logit_bias = {{greedy[0], -100.0f}};
  const Collected c = Run(std::move(r));
  ASSERT_TRUE(c.error.ok()) << c.error;
  ASSERT_FALSE(c.tokens.empty());
  EXPECT_NE(c.tokens[0], greedy[0]);
  EXPECT_EQ(std::count(c.tokens.begin(), c.tokens.end(), greedy[0]), 0);
}

TEST_F(EngineTest, PenaltiesChangeGreedyOutputAndAreReproducibleWithASeed) {
  Request plain = MakeRequest(2, 48);
  plain.sampling.ignore_eos = true;
  Request penalized = plain;
  penalized.sampling.frequency_penalty = 2.0f;
  penalized.sampling.presence_penalty = 2.0f;
  penalized.sampling.repetition_penalty = 1.5f;
  const Collected a = Run(plain);
  const Collected b = Run(penalized);
  EXPECT_NE(a.tokens, b.tokens);
  // Penalising every repeat leaves more distinct tokens than plain greedy.
  auto distinct = [](std::vector<int32_t> tokens) {
    std::sort(tokens.begin(), tokens.end());
    return std::unique(tokens.begin(), tokens.end()) - tokens.begin();
  };
  EXPECT_GT(distinct(b.tokens), distinct(a.tokens));

  penalized.sampling.temperature = 1.0f;
  penalized.sampling.min_p = 0.05f;
  penalized.sampling.seed = 99;
  EXPECT_EQ(Run(penalized).tokens, Run(penalized).tokens);
}

TEST_F(EngineTest, SubmitRejectsTokenIdsOutsideTheVocabulary) {
  Request r = MakeRequest(0, 8);
  r.sampling.logit_bias = {{engine_->model_info().vocab_size, 1.0f}};
  absl::Status status = engine_->Submit(r).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("logit_bias"), absl::string_view::npos) << status;
  r.sampling.logit_bias.clear();
  r.sampling.stop_token_ids = {-1};
  status = engine_->Submit(r).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("stop_token_ids"), absl::string_view::npos) << status;
}

TEST_F(EngineTest, AbortEndsTheRequestAndTheEngineGoesOn) {
  Request r = MakeRequest(2, 400);
  r.sampling.ignore_eos = true;
  auto handle = engine_->Submit(std::move(r));
  ASSERT_TRUE(handle.ok());
  std::optional<RequestOutput> first = (*handle)->Next(absl::Seconds(60));
  ASSERT_TRUE(first.has_value());
  (*handle)->Abort();
  const Collected rest = Collect(**handle);
  EXPECT_EQ(rest.finish, FinishReason::kAbort);
  EXPECT_LT(rest.completion_tokens, 400);
  EXPECT_EQ(Run(MakeRequest(0, 64)).text, "The capital of France is Paris.");
}

TEST_F(EngineTest, SubmitRejectsBadRequests) {
  Request empty = MakeRequest(0, 8);
  empty.prompt_token_ids.clear();
  EXPECT_EQ(engine_->Submit(empty).status().code(), absl::StatusCode::kInvalidArgument);

  Request too_long = MakeRequest(0, 600);
  const absl::Status status = engine_->Submit(too_long).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("maximum context length is 512"), std::string::npos) << status;

  Request bad_token = MakeRequest(0, 8);
  bad_token.prompt_token_ids.push_back(engine_->model_info().vocab_size);
  EXPECT_EQ(engine_->Submit(bad_token).status().code(), absl::StatusCode::kInvalidArgument);

  Request bad_temperature = MakeRequest(0, 8, -1.0f);
  EXPECT_EQ(engine_->Submit(bad_temperature).status().code(), absl::StatusCode::kInvalidArgument);

  for (const int32_t n : {0, -1, kMaxChoices + 1}) {
    Request bad_n = MakeRequest(0, 8);
    bad_n.sampling.n = n;
    EXPECT_EQ(engine_->Submit(bad_n).status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

TEST(EngineCreateTest, MissingAndTruncatedModelsNameTheFile) {
  EngineConfig config;
  config.model_path = "/nonexistent/model.gguf";
  absl::Status status = Engine::Create(config).status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("/nonexistent/model.gguf"), std::string::npos) << status;

  const std::string model = testing::DefaultModelPath();
  if (model.empty()) GTEST_SKIP() << "default model not installed";
  const std::string truncated = testing::TempDir() + "/truncated.gguf";
  {
    std::ifstream in(model, std::ios::binary);
    std::vector<char> head(20'000'000);
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream out(truncated, std::ios::binary);
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
  }
  config.model_path = truncated;
  status = Engine::Create(config).status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(truncated), std::string::npos) << status;
}

TEST(EngineCreateTest, DeviceAndDtypeAreChecked) {
  if (testing::DefaultModelPath().empty()) GTEST_SKIP() << "default model not installed";
  EngineConfig config;
  config.model_path = testing::DefaultModelPath();
  config.kv_cache_memory_bytes = int64_t{16} << 20;
  config.device = "tpu";
  auto bad = Engine::Create(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("device must be auto, cpu or cuda"), std::string::npos);
  config.device = "cpu";
  config.dtype = "float16";
  bad = Engine::Create(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("dtype must be auto, float32 or bfloat16"),
            std::string::npos);
  // --device cuda ends startup with a clear message where there is no device (or no CUDA
  // in this build), and serves where there is one.
  config.dtype = "auto";
  config.device = "cuda";
  auto cuda = Engine::Create(config);
  if (!cuda.ok()) {
    EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(cuda.status().message().find("--device cuda"), std::string::npos) << cuda.status();
  } else {
    EXPECT_EQ((*cuda)->model_info().device, "cuda");
  }
  // On the CPU, --dtype bfloat16 serves from bf16 weights.
  config.device = "cpu";
  config.dtype = "bfloat16";
  auto bf16 = Engine::Create(config);
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_EQ((*bf16)->model_info().device, "cpu");
  EXPECT_EQ((*bf16)->model_info().dtype, "bfloat16");
  Request r;
  r.id = "bf16";
  r.prompt_token_ids = {1, 2, 3, 4};
  r.sampling.temperature = 0.0f;
  r.sampling.max_tokens = 4;
  r.sampling.ignore_eos = true;
  auto handle = (*bf16)->Submit(std::move(r));
  ASSERT_TRUE(handle.ok()) << handle.status();
  const Collected c = Collect(**handle);
  EXPECT_EQ(c.completion_tokens, 4);
  EXPECT_EQ(c.finish, FinishReason::kLength);
}

TEST(EngineCreateTest, MaxModelLenMustFitTheModelAndTheCache) {
  if (testing::DefaultModelPath().empty()) GTEST_SKIP() << "default model not installed";
  EngineConfig config;
  config.model_path = testing::DefaultModelPath();
  config.max_model_len = 9000;  // SmolLM2's context is 8192
  absl::Status status = Engine::Create(config).status();
  EXPECT_NE(status.message().find("larger than the model's context length 8192"), std::string::npos)
      << status;

  // 64 blocks of 16 tokens: 1024 tokens of cache.
  config.kv_cache_memory_bytes = 64 * 2 * 30 * 16 * 3 * 64 * 4;
  config.max_model_len = 2048;
  status = Engine::Create(config).status();
  EXPECT_NE(status.message().find("larger than the 1024 tokens the KV cache holds"),
            std::string::npos)
      << status;

  config.max_model_len = 0;  // the model's own 8192 is lowered to what fits
  auto engine = Engine::Create(config);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->model_info().max_model_len, 1024);
}

// A whole Hugging Face directory (config.json, weights, tokenizer.json and the chat
// template in tokenizer_config.json) served through the engine gives transformers' greedy
// tokens: the tiny random Llama of tests/fixtures/tiny_llama, in both weight formats.
TEST(EngineHfDirectoryTest, ServesAHuggingFaceDirectory) {
  std::ifstream in(testing::SourcePath("tests/fixtures/tiny_llama/expected.json"));
  const nlohmann::json expected = nlohmann::json::parse(in);
  for (const std::string format : {"safetensors", "bin"}) {
    const std::string dir = testing::TempDir() + "/tiny_llama_" + format;
    std::filesystem::create_directories(dir);
    const std::string fixtures = testing::SourcePath("tests/fixtures/tiny_llama/");
    for (const auto& entry : std::filesystem::directory_iterator(fixtures + format)) {
      std::filesystem::copy_file(entry.path(), dir + "/" + entry.path().filename().string(),
                                 std::filesystem::copy_options::overwrite_existing);
    }
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
      std::filesystem::copy_file(fixtures + "tokenizer/" + name, dir + "/" + name,
                                 std::filesystem::copy_options::overwrite_existing);
    }
    EngineConfig config;
    config.model_path = dir;
    auto engine = Engine::Create(config);
    ASSERT_TRUE(engine.ok()) << engine.status();
    EXPECT_EQ((*engine)->model_info().max_model_len, 128);
    for (const nlohmann::json& prompt : expected["prompts"]) {
      Request r;
      r.id = "tiny";
      r.prompt_token_ids = prompt["prompt_ids"].get<std::vector<int32_t>>();
      r.sampling.temperature = 0.0f;
      r.sampling.max_tokens = static_cast<int32_t>(prompt["steps"].size());
      r.sampling.ignore_eos = true;
      auto handle = (*engine)->Submit(r);
      ASSERT_TRUE(handle.ok()) << handle.status();
      std::vector<int32_t> want;
      for (const auto& step : prompt["steps"]) want.push_back(step["token"].get<int32_t>());
      EXPECT_EQ(Collect(**handle).tokens, want) << format;
    }
    auto rendered = (*engine)->chat_template().Render({{"user", "hi"}}, true);
    ASSERT_TRUE(rendered.ok()) << rendered.status();
    EXPECT_EQ(*rendered, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  }
}

TEST(EngineShutdownTest, ShutdownAbortsWhatIsInFlight) {
  if (testing::DefaultModelPath().empty()) GTEST_SKIP() << "default model not installed";
  EngineConfig config;
  config.model_path = testing::DefaultModelPath();
  config.max_model_len = 256;
  auto engine = Engine::Create(config);
  ASSERT_TRUE(engine.ok()) << engine.status();
  Request r;
  r.id = "long";
  r.prompt_token_ids = {1, 9690, 198};
  r.sampling.max_tokens = 200;
  r.sampling.ignore_eos = true;
  auto handle = (*engine)->Submit(r);
  ASSERT_TRUE(handle.ok());
  ASSERT_TRUE((*handle)->Next(absl::Seconds(60)).has_value());
  // Two threads shutting down at once: one joins, neither crashes.
  std::thread other([&] { (*engine)->Shutdown(); });
  (*engine)->Shutdown();
  other.join();
  const Collected rest = Collect(**handle);
  EXPECT_EQ(rest.finish, FinishReason::kAbort);
  EXPECT_EQ((*engine)->Submit(r).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace moeserve
