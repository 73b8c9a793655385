#pragma once
// The state shared by a Future and whoever completes it (a pool task, a Promise, a
// remote reply). One 32-bit word holds the phase, a "someone sleeps on me" bit, a tiny
// lock for the callback list and a counter that a stop request bumps to end a sleep, so
// the hot path (complete with no waiters and no callbacks) is one CAS and no system call.
// Waiters sleep on that word through the one wait loop of core/detail/wait.hpp.
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "troupe/core/deadline.hpp"

namespace troupe::detail {

struct HelpTicket;  // core/detail/wait.hpp

class StateBase {
 public:
  enum Phase : std::uint32_t { kPending = 0, kRunning = 1, kFinished = 2, kCancelled = 3 };
  static constexpr std::uint32_t kPhaseMask = 3;
  static constexpr std::uint32_t kWaiters = 4;
  static constexpr std::uint32_t kLocked = 8;
  static constexpr std::uint32_t kPoke = 16;  // bits 4..31: bumped to end a sleep (stop request)

  StateBase() noexcept = default;
  StateBase(const StateBase&) = delete;
  StateBase& operator=(const StateBase&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }

  /// True when the caller's reference is the only one (no other handle, no task holding it).
  bool unique() const noexcept { return refs_.load(std::memory_order_acquire) == 1; }

  /// Readers: the Future handles on this state, plus each callback added through a Future
  /// that may read the value (counted from its addition until it has run). A producer's
  /// reference (a Promise, a pool task, an executor envelope) is a reference, not a reader:
  /// once it has set the value it never reads it, so it does not stop a taker.
  void add_reader() noexcept { readers_.fetch_add(1, std::memory_order_relaxed); }
  /// Ends a reader; its reads happen before a later sole_reader() that sees it gone.
  void drop_reader() noexcept { readers_.fetch_sub(1, std::memory_order_release); }
  /// True when the caller's Future is the only reader: nothing else can read the value, so
  /// it may be moved out (what a producer still holds does not count).
  bool sole_reader() const noexcept { return readers_.load(std::memory_order_acquire) == 1; }

  Phase phase(std::memory_order mo = std::memory_order_acquire) const noexcept {
    return static_cast<Phase>(state_.load(mo) & kPhaseMask);
  }
  bool is_terminal() const noexcept { return phase() >= kFinished; }
  bool has_error() const noexcept { return error_ != nullptr; }
  const std::exception_ptr& error() const noexcept { return error_; }

  /// pending -> running; false when cancelled (or already started).
  bool try_start() noexcept;
  /// pending -> cancelled and fire callbacks; false when running or done.
  bool cancel() noexcept;
  /// Store an exception and finish (from pending or running). False if already terminal.
  bool set_error(std::exception_ptr e) noexcept;

  /// Waits until terminal (detail::wait_until: spin, help, drive progress, sleep). Returns
  /// false on deadline. Throws CancelledError when `token` is stopped first. A pool worker
  /// helps (runs other tasks) while it waits; so does a thread outside any pool waiting
  /// without deadline or token on a pool task (help_ticket()), with that task's pool.
  bool wait(const Deadline& deadline, const std::stop_token* token = nullptr) const;

  /// Runs `cb(this)` once terminal: now (in the caller) if already terminal, else in the
  /// completing thread; in order of addition.
  void add_callback(std::function<void()> cb);

 protected:
  virtual ~StateBase();
  virtual void destroy() noexcept { delete this; }
  /// The pool a waiter outside it may help (a ThreadPool task); nullptr: none.
  virtual const HelpTicket* help_ticket() const noexcept { return nullptr; }
  /// Moves to a terminal phase and runs callbacks; caller has stored value or error.
  bool finish(Phase terminal, bool from_pending_only = false) noexcept;

  std::exception_ptr error_;

 private:
  struct Callback {
    std::function<void()> fn;
    Callback* next;
  };
  bool lock_nonterminal() noexcept;  // takes kLocked unless terminal
  void unlock() noexcept { state_.fetch_and(~kLocked, std::memory_order_release); }
  void run_callbacks(Callback* head) noexcept;

  mutable std::atomic<std::uint32_t> state_{kPending};
  std::atomic<std::uint32_t> refs_{1};
  std::atomic<std::uint32_t> readers_{0};
  Callback* callbacks_ = nullptr;       // guarded by kLocked
  Callback* callbacks_tail_ = nullptr;  // guarded by kLocked
};

template <class T>
class SharedState : public StateBase {
 public:
  using value_type = T;
  template <class... A>
  bool set_value(A&&... a) {
    if (is_terminal()) return false;
    value_.emplace(std::forward<A>(a)...);
    return finish(kFinished);
  }
  const T& value() const noexcept { return *value_; }
  T& value() noexcept { return *value_; }

 protected:
  std::optional<T> value_;
};

template <>
class SharedState<void> : public StateBase {
 public:
  using value_type = void;
  bool set_value() { return finish(kFinished); }
};

/// Intrusive owning pointer to a state.
template <class S>
class StatePtr {
 public:
  StatePtr() noexcept = default;
  explicit StatePtr(S* p, bool adopt = true) noexcept : p_(p) {
    if (p_ && !adopt) p_->add_ref();
  }
  StatePtr(const StatePtr& o) noexcept : p_(o.p_) {
    if (p_) p_->add_ref();
  }
  StatePtr(StatePtr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  StatePtr& operator=(StatePtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~StatePtr() {
    if (p_) p_->release();
  }
  S* get() const noexcept { return p_; }
  S* operator->() const noexcept { return p_; }
  S& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  S* detach() noexcept { return std::exchange(p_, nullptr); }

 private:
  S* p_ = nullptr;
};

/// A Future's pointer to its state: one reference and one reader (StateBase::add_reader).
template <class S>
class ReaderPtr {
 public:
  ReaderPtr() noexcept = default;
  explicit ReaderPtr(StatePtr<S> p) noexcept : p_(std::move(p)) {
    if (p_) p_->add_reader();
  }
  ReaderPtr(const ReaderPtr& o) noexcept : p_(o.p_) {
    if (p_) p_->add_reader();
  }
  ReaderPtr(ReaderPtr&& o) noexcept = default;  // the source's StatePtr is left empty
  ReaderPtr& operator=(ReaderPtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~ReaderPtr() {
    if (p_) p_->drop_reader();
  }
  S* get() const noexcept { return p_.get(); }
  S* operator->() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(p_); }

 private:
  StatePtr<S> p_;
};

}  // namespace troupe::detail
