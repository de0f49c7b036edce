#include "engine/request_handle.h"

#include <iterator>

#include "absl/time/clock.h"

namespace moeserve {

std::optional<RequestOutput> RequestHandle::Next(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (finals_taken_ >= num_choices_) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  if (!ready_.wait_until(lock, deadline, [this] { return !queue_.empty(); })) {
    return std::nullopt;
  }
  RequestOutput merged = std::move(queue_.front());
  queue_.pop_front();
  while (!queue_.empty() && !merged.finished() && queue_.front().index == merged.index) {
    RequestOutput& next = queue_.front();
    merged.text_delta += next.text_delta;
    merged.token_ids.insert(merged.token_ids.end(), next.token_ids.begin(), next.token_ids.end());
    merged.logprobs.insert(merged.logprobs.end(), std::make_move_iterator(next.logprobs.begin()),
                           std::make_move_iterator(next.logprobs.end()));
    merged.finish_reason = next.finish_reason;
    merged.error = next.error;
    merged.prompt_tokens = next.prompt_tokens;
    merged.completion_tokens = next.completion_tokens;
    queue_.pop_front();
  }
  if (merged.finished()) ++finals_taken_;
  return merged;
}

void RequestHandle::Push(RequestOutput output) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(output));
  }
  ready_.notify_one();
}

}  // namespace moeserve
