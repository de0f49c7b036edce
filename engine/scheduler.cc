#include "engine/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace moeserve {

absl::Status SchedulerConfig::Validate() const {
  if (max_num_seqs < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_num_seqs must be >= 1, got ", max_num_seqs));
  }
  if (max_num_batched_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_num_batched_tokens must be >= 1, got ", max_num_batched_tokens));
  }
  return absl::OkStatus();
}

SchedulerOutput Scheduler::Schedule() {
  SchedulerOutput out;
  int32_t budget = config_.max_num_batched_tokens;

  // Running sequences first. Victims of preemption are taken from the back, so they are
  // never ones already scheduled this step.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i].get();
    const int32_t n = std::min(seq->num_uncomputed(), budget);
    if (n == 0) {
      ++i;
      continue;
    }
    bool preempted_itself = false;
    while (!kv_->AllocateSlots(*seq, seq->num_computed + n)) {
      Sequence* victim = PreemptNewest();
      out.preempted.push_back(victim);
      if (victim == seq) {
        preempted_itself = true;
        break;
      }
    }
    if (preempted_itself) break;  // seq was the last running sequence
    kv_->CacheFullBlocks(*seq, seq->num_computed + n);
    out.chunks.push_back({seq, n});
    out.num_tokens += n;
    budget -= n;
    ++i;
  }

  // Then waiting ones, unless memory was short this step.
  while (out.preempted.empty() && !waiting_.empty() && budget > 0 &&
         static_cast<int32_t>(running_.size()) < config_.max_num_seqs) {
    Sequence* seq = waiting_.front().get();
    kv_->AcquireCachedPrefix(*seq);
    const int32_t n = std::min(seq->num_uncomputed(), budget);
    if (!kv_->AllocateSlots(*seq, seq->num_computed + n)) {
      // FCFS: later ones wait too. Give back the cached prefix until next time.
      kv_->Free(*seq);
      seq->num_computed = 0;
      break;
    }
    kv_->CacheFullBlocks(*seq, seq->num_computed + n);
    out.chunks.push_back({seq, n});
    out.num_tokens += n;
    budget -= n;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  return out;
}

void Scheduler::Update(const SchedulerOutput& output) {
  for (const ScheduledChunk& chunk : output.chunks) {
    chunk.seq->num_computed += chunk.num_tokens;
    CHECK(chunk.seq->num_computed <= chunk.seq->num_tokens());
  }
}

std::vector<std::unique_ptr<Sequence>> Scheduler::RemoveIf(
    const std::function<bool(const Sequence&)>& pred) {
  std::vector<std::unique_ptr<Sequence>> removed;
  auto take = [&](auto& queue) {
    for (auto& seq : queue) {
      if (pred(*seq)) {
        kv_->Free(*seq);
        removed.push_back(std::move(seq));
      }
    }
    std::erase_if(queue, [](const std::unique_ptr<Sequence>& seq) { return seq == nullptr; });
  };
  take(running_);
  take(waiting_);
  return removed;
}

Sequence* Scheduler::PreemptNewest() {
  CHECK(!running_.empty());
  std::unique_ptr<Sequence> victim = std::move(running_.back());
  running_.pop_back();
  kv_->Free(*victim);
  victim->num_computed = 0;  // recomputed from its tokens when it runs again
  ++victim->num_preemptions;
  MOESERVE_LOG_DEBUG("preempted request {} ({} tokens) for lack of KV blocks", victim->request.id,
                     victim->num_tokens());
  Sequence* raw = victim.get();
  waiting_.push_front(std::move(victim));
  return raw;
}

}  // namespace moeserve
