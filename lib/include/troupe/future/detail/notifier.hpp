#pragma once
// A wake-up channel for waits on conditions other than one future (as_completed, wait,
// parallel_for completion): the waiter sleeps on a futex sequence word; a pool worker
// helps run tasks instead.
#include <atomic>
#include <cstdint>
#include <stop_token>

#include "troupe/core/deadline.hpp"

namespace troupe::detail {

class Notifier {
 public:
  /// Call after making the condition true (the RMW publishes it to the waiter).
  void notify_all() noexcept;

  /// Waits until pred() holds; false when the deadline passed first. Throws
  /// CancelledError (naming @p api) when @p token is stopped.
  template <class Pred>
  bool wait(Pred&& pred, const Deadline& deadline, const std::stop_token* token = nullptr,
            const char* api = "wait") {
    return wait_impl(
        [](void* p) { return static_cast<bool>((*static_cast<std::remove_reference_t<Pred>*>(p))()); }, &pred,
        deadline, token, api);
  }

 private:
  bool wait_impl(bool (*pred)(void*), void* ctx, const Deadline& deadline, const std::stop_token* token,
                 const char* api);
  std::atomic<std::uint32_t> seq_{0};
  std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace troupe::detail
