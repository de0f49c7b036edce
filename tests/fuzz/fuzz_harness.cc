#include "tests/fuzz/fuzz_harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string_view>
#include <thread>

#include "gtest/gtest.h"
#include "tests/fuzz/mutator.h"
#include "tests/testing/test_paths.h"

// Sanitizer settings compiled in, so running the binary by hand behaves as under ctest:
// an abort (CHECK failure, uncaught exception) is reported with a stack trace and runs the
// death callback that saves the input; leaks are bugs too; no input may make a parser
// allocate more than 1 GiB (they are all small, so that means a length field was trusted).
extern "C" const char* __asan_default_options() {
  return "handle_abort=1:detect_leaks=1:allocator_may_return_null=0:"
         "max_allocation_size_mb=1024:detect_stack_use_after_return=0";
}
extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }

namespace moeserve::fuzz {
namespace {

constexpr uint64_t kDefaultSeed = 0x6d6f657365727665ULL;  // "moeserve"

// What is running now, for the death callback, the watchdog and Violation().
struct Current {
  std::string target;
  uint64_t run_seed = 0;
  int64_t iteration = -1;  // -1 for a seed or a replayed file
  const std::string* input = nullptr;
  std::string crash_path;  // where the death callback writes the input
};
// Never destroyed: the leak check at exit may still run the death callback.
Current& g_current = *new Current;
std::atomic<int64_t> g_started_ns{0};  // 0 while no input runs
pthread_t g_main_thread;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// CPU seconds this process has used (the wall clock says little on a shared machine).
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::strtoll(value, nullptr, 0);
}

uint64_t RunSeed() {
  const char* value = std::getenv("MOESERVE_FUZZ_SEED");
  if (value == nullptr || *value == '\0') return kDefaultSeed;
  if (std::string_view(value) == "random") return static_cast<uint64_t>(NowNs());
  return std::strtoull(value, nullptr, 0);
}

std::string ReplayHint() {
  std::ostringstream out;
  out << "target " << g_current.target << ", MOESERVE_FUZZ_SEED=" << g_current.run_seed;
  if (g_current.iteration >= 0) out << ", iteration " << g_current.iteration;
  out << "; replay: MOESERVE_FUZZ_INPUT=" << g_current.crash_path
      << " fuzz_parsers_test --gtest_filter='*/" << g_current.target << "'";
  return out.str();
}

// Async-signal-safe: only write(2) on buffers prepared before the input ran.
void SaveCurrentInput() {
  if (g_current.input == nullptr) return;
  const int fd = ::open(g_current.crash_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  const char* data = g_current.input->data();
  size_t left = g_current.input->size();
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n <= 0) break;
    data += n;
    left -= static_cast<size_t>(n);
  }
  ::close(fd);
}

void OnDeath() {
  if (g_current.input == nullptr) return;  // not while a parser runs (e.g. the exit leak check)
  SaveCurrentInput();
  const std::string hint =
      "\nfuzz_parsers_test: the input above crashed the parser (" + ReplayHint() + ")\n";
  if (::write(STDERR_FILENO, hint.data(), hint.size()) < 0) return;
}

// Aborts the main thread (so the sanitizer prints the stack of the stuck parser) when one
// input runs longer than MOESERVE_FUZZ_HANG_S.
class Watchdog {
 public:
  explicit Watchdog(int64_t limit_ns) : limit_ns_(limit_ns), thread_([this] { Loop(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_; })) {
      const int64_t started = g_started_ns.load();
      if (started != 0 && NowNs() - started > limit_ns_) {
        const std::string message = "fuzz_parsers_test: an input has run for more than " +
                                    std::to_string(limit_ns_ / 1000000000) +
                                    " s: a hang; aborting the parser\n";
        if (::write(STDERR_FILENO, message.data(), message.size()) < 0) return;
        pthread_kill(g_main_thread, SIGABRT);
        return;
      }
    }
  }

  const int64_t limit_ns_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// CPU time of this thread: what an input costs, whatever else the machine is running.
int64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

struct Verdict {
  absl::Status status;
  int64_t cpu_ns = 0;  // the parser's CPU time on this thread
};

Verdict RunOne(const FuzzTarget& target, const std::string& input, int64_t iteration) {
  g_current.iteration = iteration;
  g_current.input = &input;
  g_started_ns.store(NowNs());
  const int64_t cpu_start = ThreadCpuNs();
  Verdict verdict;
  verdict.status = target.run(input);
  verdict.cpu_ns = ThreadCpuNs() - cpu_start;
  g_started_ns.store(0);
  return verdict;
}

}  // namespace

void Violation(const std::string& what) {
  const std::string saved = g_current.crash_path;
  g_current.crash_path = testing::TempDir() + "/fuzz-" + g_current.target + "-violation-" +
                         std::to_string(g_current.iteration) + ".bin";
  SaveCurrentInput();
  ADD_FAILURE() << what << " (" << ReplayHint() << ")";
  g_current.crash_path = saved;
}

void RunFuzzTarget(const FuzzTarget& target) {
  static const bool callback_set = [] {
    __sanitizer_set_death_callback(OnDeath);
    return true;
  }();
  (void)callback_set;
  g_main_thread = pthread_self();
  g_current.input = nullptr;
  g_current.iteration = -1;
  g_current.target = target.name;
  g_current.run_seed = RunSeed();
  g_current.crash_path = testing::TempDir() + "/fuzz-" + target.name + "-crash.bin";
  const int64_t slow_ns = EnvInt("MOESERVE_FUZZ_SLOW_MS", 2000) * 1000000;
  const bool leak_check_each = EnvInt("MOESERVE_FUZZ_LEAK_CHECK_EACH", 0) != 0;
  Watchdog watchdog(EnvInt("MOESERVE_FUZZ_HANG_S", 60) * 1000000000);

  auto check_time = [&](const Verdict& v) {
    if (v.cpu_ns > slow_ns) {
      Violation("slow input: " + std::to_string(v.cpu_ns / 1000000) + " ms of CPU (limit " +
                std::to_string(slow_ns / 1000000) + " ms)");
    }
  };

  if (const char* replay = std::getenv("MOESERVE_FUZZ_INPUT"); replay && *replay) {
    const std::string input = ReadFile(replay);
    g_current.crash_path = replay;  // a crash rewrites the same bytes
    const Verdict v = RunOne(target, input, -1);
    std::printf("fuzz %s: %s (%zu bytes): %s in %.1f ms\n", target.name.c_str(), replay,
                input.size(), v.status.ok() ? "accepted" : v.status.ToString().c_str(),
                v.cpu_ns / 1e6);
    check_time(v);
    g_current.input = nullptr;
    return;
  }

  ASSERT_FALSE(target.seeds.empty()) << target.name << " has no seed inputs";
  for (const std::string& seed : target.seeds) {
    const Verdict v = RunOne(target, seed, -1);
    EXPECT_TRUE(v.status.ok()) << target.name << " rejects its seed input (" << seed.size()
                               << " bytes): " << v.status;
    check_time(v);
    if (leak_check_each && __lsan_do_recoverable_leak_check() != 0) Violation("memory leak");
  }

  std::vector<std::string> corpus = target.seeds;
  corpus.insert(corpus.end(), target.extra_corpus.begin(), target.extra_corpus.end());
  MutationContext context;
  context.corpus = &corpus;
  context.dictionary = &target.dictionary;
  size_t largest = 0;
  for (const std::string& s : corpus) largest = std::max(largest, s.size());
  context.max_size = std::max<size_t>(4096, largest * 2);

  const int64_t iterations = EnvInt("MOESERVE_FUZZ_ITERATIONS", target.iterations);
  int64_t accepted = 0;
  int64_t slowest_ns = 0;
  const int64_t begin = NowNs();
  const double cpu_begin = CpuSeconds();
  for (int64_t i = 0; i < iterations; ++i) {
    Rng rng(IterationSeed(g_current.run_seed, target.name, static_cast<uint64_t>(i)));
    std::string input;
    if (rng.OneIn(32)) {
      input = RandomBytes(rng.Below(2048), target.text, rng);
    } else {
      input = Mutate(corpus[rng.Below(corpus.size())], context, rng);
    }
    const Verdict v = RunOne(target, input, i);
    if (v.status.ok()) ++accepted;
    slowest_ns = std::max(slowest_ns, v.cpu_ns);
    check_time(v);
    if (leak_check_each && __lsan_do_recoverable_leak_check() != 0) Violation("memory leak");
    if (::testing::Test::HasFailure()) break;  // one reported input is enough to start on
  }
  g_current.input = nullptr;
  // Leaks are bugs too. LeakSanitizer reports every leaked block each time it looks, so
  // only the first target that leaks is blamed.
  static bool leaked = false;
  if (!leaked && __lsan_do_recoverable_leak_check() != 0) {
    leaked = true;
    ADD_FAILURE() << target.name << " leaked memory (report above); find the input with "
                  << "MOESERVE_FUZZ_LEAK_CHECK_EACH=1 --gtest_filter='*/" << target.name << "'";
  }
  std::printf(
      "fuzz %-19s seed %llu: %lld inputs (%lld accepted) in %.1f s (%.1f s CPU), "
      "slowest %.1f ms CPU\n",
      target.name.c_str(), static_cast<unsigned long long>(g_current.run_seed),
      static_cast<long long>(iterations), static_cast<long long>(accepted), (NowNs() - begin) / 1e9,
      CpuSeconds() - cpu_begin, slowest_ns / 1e6);
  std::fflush(stdout);
}

}  // namespace moeserve::fuzz
