// The per-request output channel between the engine thread (producer) and the server
// thread serving the client (consumer). Thread-safe. A request with n choices has one
// handle; its outputs carry their choice's index and interleave in any order. Abort() may
// be called from any thread at any time; the engine sees it at its next step and sends a
// final kAbort output for every choice still running.
#ifndef MOESERVE_ENGINE_REQUEST_HANDLE_H_
#define MOESERVE_ENGINE_REQUEST_HANDLE_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "engine/request.h"

namespace moeserve {

class RequestHandle {
 public:
  explicit RequestHandle(std::string request_id, int32_t num_choices = 1)
      : request_id_(std::move(request_id)), num_choices_(num_choices) {}
  RequestHandle(const RequestHandle&) = delete;
  RequestHandle& operator=(const RequestHandle&) = delete;

  const std::string& request_id() const { return request_id_; }
  int32_t num_choices() const { return num_choices_; }

  // Consumer side. Waits up to `timeout` for the next output; nullopt on timeout, or when
  // the final output of every choice has already been taken. Consecutive outputs of the
  // same choice that piled up are merged into one (up to and including its final one).
  std::optional<RequestOutput> Next(absl::Duration timeout);

  // Asks the engine to stop this request; idempotent.
  void Abort() { aborted_.store(true, std::memory_order_relaxed); }
  bool aborted() const { return aborted_.load(std::memory_order_relaxed); }

  // Producer side (engine thread only).
  void Push(RequestOutput output);

 private:
  const std::string request_id_;
  const int32_t num_choices_;
  std::atomic<bool> aborted_{false};
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<RequestOutput> queue_ ABSL_GUARDED_BY(mutex_);
  int32_t finals_taken_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_REQUEST_HANDLE_H_
