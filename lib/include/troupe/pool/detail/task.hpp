#pragma once
// What the pool's queues hold: a pointer to a TaskBase. A submitted task and its
// future's state are one allocation (FutureTask), so submit costs one new.
#include <exception>
#include <optional>
#include <utility>

#include "troupe/core/detail/wait.hpp"
#include "troupe/future/detail/shared_state.hpp"

namespace troupe::detail {

class TaskBase {
 public:
  /// Runs the task (or skips it if cancelled) and gives up the queue's reference.
  virtual void execute() noexcept = 0;
  /// Called by shutdown(cancel_futures): cancel if not started. Default: run anyway.
  virtual void cancel_pending() noexcept {}

 protected:
  ~TaskBase() = default;
};

template <class R, class Fn>
class FutureTask final : public SharedState<R>, public TaskBase {
 public:
  /// @p ticket: the pool's gate for outside waiters (empty: they do not help).
  FutureTask(Fn&& fn, const HelpTicket& ticket) : fn_(std::move(fn)), ticket_(ticket) {
    this->add_ref();  // + the queue's reference
  }

  void execute() noexcept override {
    if (this->try_start()) {
      try {
        if constexpr (std::is_void_v<R>) {
          (*fn_)();
          fn_.reset();
          this->set_value();
        } else {
          auto&& r = (*fn_)();
          this->set_value(std::forward<decltype(r)>(r));
          fn_.reset();
        }
      } catch (...) {
        fn_.reset();
        this->set_error(std::current_exception());
      }
    }
    this->release();
  }
  void cancel_pending() noexcept override { this->cancel(); }

 protected:
  const HelpTicket* help_ticket() const noexcept override { return &ticket_; }

 private:
  std::optional<Fn> fn_;
  HelpTicket ticket_;
};

/// A fire-and-forget task; the callable must not throw (the library wraps user code).
template <class Fn>
class PlainTask final : public TaskBase {
 public:
  explicit PlainTask(Fn&& fn) : fn_(std::move(fn)) {}
  void execute() noexcept override {
    fn_();
    delete this;
  }

 private:
  Fn fn_;
};

}  // namespace troupe::detail
