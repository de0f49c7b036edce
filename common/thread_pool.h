// A fixed pool of worker threads for data-parallel loops on the CPU backend. The calling
// thread takes part in the work, so a pool of N threads keeps N cores busy with N-1
// workers. ParallelFor blocks until every chunk is done; it is meant to be called from one
// thread at a time (the engine thread), which the pool checks.
#ifndef MOESERVE_COMMON_THREAD_POOL_H_
#define MOESERVE_COMMON_THREAD_POOL_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace moeserve {

class ThreadPool {
 public:
  // num_threads counts the caller: 1 means no workers, everything runs inline.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) split into at most num_threads() contiguous ranges of
  // at least `grain` items each. Returns when all calls have returned.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Number of cores this process may use (sched affinity), at least 1.
  static int DefaultNumThreads();

 private:
  void WorkerLoop(int worker_index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  // The current job: valid while generation_ changes and pending_ > 0.
  const std::function<void(int64_t, int64_t)>* job_ ABSL_GUARDED_BY(mutex_) = nullptr;
  int64_t job_n_ ABSL_GUARDED_BY(mutex_) = 0;
  int job_chunks_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mutex_) = 0;
  int pending_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stop_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace moeserve

#endif  // MOESERVE_COMMON_THREAD_POOL_H_
