#pragma once
/// @file
/// @brief Timeouts as deadlines, and the cancellation token used by every blocking call.
///
/// A timeout is turned into a Deadline once, at the API boundary; inner waits get
/// the remainder. A negative timeout is a ValueError (Python clamps it; troupe
/// treats it as the bug it usually is).

#include <chrono>
#include <cmath>
#include <optional>
#include <stop_token>
#include <string>

#include "troupe/core/error.hpp"

namespace troupe {

/// @brief The clock of every troupe timeout.
using Clock = std::chrono::steady_clock;

/// @brief Cancellation token honoured by blocking calls and long operations.
///
/// troupe uses the standard std::stop_token / std::stop_source: pass a token to a
/// wait and the wait ends with CancelledError once the source requests a stop.
using CancellationToken = std::stop_token;
/// @brief Owner side of a CancellationToken (std::stop_source).
using CancellationSource = std::stop_source;

/// @brief A point in time after which a blocking call gives up, or "never".
class Deadline {
 public:
  /// @brief A deadline that never passes.
  constexpr Deadline() noexcept = default;

  /// @brief Deadline `timeout` from now; throws ValueError naming @p api when negative or NaN.
  template <class Rep, class Period>
  static Deadline after(std::chrono::duration<Rep, Period> timeout, const char* api) {
    auto seconds = std::chrono::duration<double>(timeout).count();
    if (!(seconds >= 0.0)) {  // also rejects NaN
      throw ValueError(std::string(api) + ": timeout must be >= 0, got " + std::to_string(seconds) + "s");
    }
    Deadline d;
    d.infinite_ = false;
    // Huge timeouts saturate rather than overflow.
    if (seconds > 1e9) return Deadline{};
    d.at_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    return d;
  }
  /// @brief Deadline from an optional timeout: nullopt means never.
  template <class Rep, class Period>
  static Deadline after(const std::optional<std::chrono::duration<Rep, Period>>& timeout, const char* api) {
    return timeout ? after(*timeout, api) : Deadline{};
  }
  /// @brief Deadline at an absolute time point.
  static Deadline at(Clock::time_point tp) noexcept {
    Deadline d;
    d.infinite_ = false;
    d.at_ = tp;
    return d;
  }

  /// @brief True for a deadline that never passes.
  bool infinite() const noexcept { return infinite_; }
  /// @brief True once the deadline has passed.
  bool expired() const noexcept { return !infinite_ && Clock::now() >= at_; }
  /// @brief Time left (zero when expired; a very large value when infinite).
  Clock::duration remaining() const noexcept {
    if (infinite_) return Clock::duration::max();
    auto now = Clock::now();
    return now >= at_ ? Clock::duration::zero() : at_ - now;
  }
  /// @brief The absolute time point (meaningless when infinite()).
  Clock::time_point time_point() const noexcept { return at_; }

 private:
  bool infinite_ = true;
  Clock::time_point at_{};
};

}  // namespace troupe
