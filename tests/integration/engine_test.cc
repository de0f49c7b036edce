// The Engine facade on the real SmolLM2 model: the loop thread, request handles, greedy
// and seeded sampling, EOS and length finishes, concurrency, aborts and submit errors.
#include "engine/engine.h"

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
    c.prompt_tokens = out->prompt_tokens;
    c.completion_tokens = out->completion_tokens;
    if (out->finished()) {
      c.finish = out->finish_reason;
      c.error = out->error;
      return c;
    }
  }
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
