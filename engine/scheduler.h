// Decides, each engine step, which sequences run and how many of their tokens: a pure
// step function in the manner of vLLM v1 — Schedule() returns {sequence -> num_tokens},
// Update() records what the step computed. It never touches a device.
//
// Policy: one token budget per step (max_num_batched_tokens) shared by decodes and prefill
// chunks, so a long prompt never stalls running streams. Running sequences first, in
// admission order; then waiting ones, first come first served, up to max_num_seqs. KV
// blocks are allocated as sequences grow; when the pool runs dry the newest running
// sequence is preempted (its blocks freed, recomputed later from its tokens) and no new
// sequence is admitted that step.
#ifndef MOESERVE_ENGINE_SCHEDULER_H_
#define MOESERVE_ENGINE_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "engine/kv_cache_manager.h"
#include "engine/sequence.h"

namespace moeserve {

struct SchedulerConfig {
  int32_t max_num_seqs = 16;
  int32_t max_num_batched_tokens = 2048;

  absl::Status Validate() const;
};

struct ScheduledChunk {
  Sequence* seq = nullptr;
  int32_t num_tokens = 0;  // its next uncomputed tokens, starting at seq->num_computed
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;  // running order; at most one per sequence
  std::vector<Sequence*> preempted;    // preempted this step (now waiting)
  int32_t num_tokens = 0;
};

class Scheduler {
 public:
  // `kv` must outlive the scheduler.
  Scheduler(const SchedulerConfig& config, KvCacheManager* kv) : config_(config), kv_(kv) {}

  void Add(std::unique_ptr<Sequence> seq) { waiting_.push_back(std::move(seq)); }

  SchedulerOutput Schedule();

  // Records that the step computed every scheduled chunk.
  void Update(const SchedulerOutput& output);

  // Takes out every sequence (waiting or running) matching `pred`, freeing its blocks:
  // finished ones after a step, aborted ones before, everything at shutdown.
  std::vector<std::unique_ptr<Sequence>> RemoveIf(const std::function<bool(const Sequence&)>& pred);

  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  bool has_work() const { return !running_.empty() || !waiting_.empty(); }

 private:
  // Moves the newest running sequence to the front of the waiting queue.
  Sequence* PreemptNewest();

  const SchedulerConfig config_;
  KvCacheManager* const kv_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;  // admission order
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_SCHEDULER_H_
