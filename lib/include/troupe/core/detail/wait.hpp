#pragma once
// The one way a troupe thread blocks. Every wait of the library (a future, as_completed,
// a map iteration, an idle pool worker, Event, Barrier, Semaphore, Timer, the engine's
// idle sleep) goes through wait_until() below, with one policy:
//
//   1. spin   for WaitParams::spin (kWaitSpin, 8 µs): look at the condition between short
//             pause loops, and on each round
//   2. help   run one other pool task if the waiting thread is a pool worker (HelpHook),
//             or, for a thread outside any pool that waits on a pool task with no
//             deadline, one task of that pool (OutsideHelp),
//   3. drive  poll every registered ProgressSource once (an executor's MPI engine);
//             anything useful done in 2 or 3 restarts the spin, which after progress
//             lasts at least the sources' linger (a source without a progress thread:
//             its waiters poll as long as its progress thread would have);
//   4. sleep  on the target's futex word. A thread that can still help or drive progress
//             naps with bounded doubling back-off (1 µs, 2 µs, ... up to
//             wait_backoff_ceiling(): TROUPE_WAIT_BACKOFF_US, 500 µs) and does 2 and 3
//             between naps; a thread
//             that can do neither sleeps until it is notified or its deadline passes, with
//             no polling at all.
//
// When the process's threads share cores with other ranks' (cores_shared() below), step 1
// has no window: the thread helps and drives progress while that finds something to do,
// then goes to step 4 at once, without pause loops or yields, since a spinning thread there
// takes the core from the thread it waits for.
//
// A deadline ends the wait with WaitStatus::kTimeout, a stop request on the token with
// kCancelled; a condition that holds wins over both. docs/guide.md ("How troupe waits")
// explains the constants.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "troupe/core/deadline.hpp"

namespace troupe::detail {

// ---------------------------------------------------------------------------------------
// Helping: a pool worker installs a hook in its thread; waits call it to run one other
// task instead of sleeping (what makes a wait inside a pool task deadlock free).

class HelpHook {
 public:
  /// Runs at most one pending task; true if it ran one.
  virtual bool help_one() = 0;

 protected:
  ~HelpHook() = default;
};

/// The hook of the calling thread (nullptr outside pool workers).
HelpHook* current_help_hook() noexcept;
/// Installs a hook for the calling thread; returns the previous one.
HelpHook* set_help_hook(HelpHook* hook) noexcept;

// ---------------------------------------------------------------------------------------
// Helping from outside: a thread that is no pool worker and waits on a pool task's future
// runs that pool's tasks meanwhile (as a thread in TBB's task_group::wait does). The
// future reaches its pool through a HelpTicket; the pool may be destroyed while a waiter
// still holds the ticket, so the ticket names a HelpGate, which is never freed, and a
// generation that the pool's end retires.

/// A pool that outside waiters may help.
class HelpSource {
 public:
  /// Runs at most one task in the calling thread, which is outside the pool and waits on
  /// one of its tasks; true if it ran one. @p seat is the waiter's own state for the
  /// length of one wait (nullptr before the first call): what the pool lends it.
  virtual bool help_outside(void*& seat) noexcept = 0;
  /// The end of that wait: gives back what help_outside lent in @p seat.
  virtual void leave_outside(void* seat) noexcept = 0;

 protected:
  ~HelpSource() = default;
};

/// Where a waiter finds the pool of its task. Never freed: a retired gate is reused.
struct HelpGate {
  std::atomic<HelpSource*> source{nullptr};
  std::atomic<std::uint32_t> generation{0};  // bumped when its pool ends
  std::atomic<std::uint32_t> users{0};       // waiters helping through it now
};

/// What a pool task's future carries: the gate and the generation of its pool.
struct HelpTicket {
  HelpGate* gate = nullptr;
  std::uint32_t generation = 0;
};

/// A gate for @p source (a pool at its start); its ticket goes into every task it makes.
HelpTicket open_help_gate(HelpSource* source);
/// The pool's end: no waiter helps through @p ticket's gate from now on; returns once no
/// waiter is inside it (they leave as soon as their task is done). Then the gate is reused.
void close_help_gate(const HelpTicket& ticket) noexcept;

/// The HelpHook of one outside wait: enters the gate at the first help, leaves it (and
/// gives back the seat) at the end of the wait. A gate closed meanwhile makes it do nothing.
class OutsideHelp final : public HelpHook {
 public:
  explicit OutsideHelp(const HelpTicket& ticket) noexcept : ticket_(ticket) {}
  ~OutsideHelp();
  OutsideHelp(const OutsideHelp&) = delete;
  OutsideHelp& operator=(const OutsideHelp&) = delete;
  bool help_one() override;

 private:
  HelpTicket ticket_;
  HelpSource* source_ = nullptr;
  void* seat_ = nullptr;
  enum class Stage { kNew, kIn, kClosed } stage_ = Stage::kNew;
};

// ---------------------------------------------------------------------------------------
// Progress sources: things a waiting thread can advance itself (an executor's engine
// takes its reply off the wire). Several may be registered at once (two executors on
// disjoint communicators in one process).

class ProgressSource {
 public:
  /// Makes what progress it can without blocking; true if anything happened. Called
  /// concurrently from any waiting thread; must not throw.
  virtual bool try_progress() noexcept = 0;
  /// How long a waiting thread that just moved something here should keep polling before
  /// it naps (the linger of a source that has no progress thread of its own: replies and
  /// the next request of a conversation come soon, and only waiters move them). Zero: the
  /// wait's own spin.
  virtual std::chrono::nanoseconds linger() const noexcept { return std::chrono::nanoseconds(0); }

 protected:
  ~ProgressSource() = default;
};

/// The most sources registered at once.
inline constexpr int kMaxProgressSources = 64;

/// Registers @p src: from now on waiting threads poll it. Throws InvalidStateError when
/// kMaxProgressSources are registered or @p src is already registered.
void add_progress_source(ProgressSource* src);
/// Unregisters @p src and waits until no thread is inside src->try_progress() any more,
/// so that @p src may be destroyed afterwards. Never call it from inside a try_progress()
/// (it would wait for itself). Unknown or null sources are ignored.
void remove_progress_source(ProgressSource* src) noexcept;
/// Polls every registered source once; true if one made progress. Any thread may call it;
/// one relaxed load when nothing is registered.
bool drive_progress() noexcept;
/// The longest linger() of the registered sources (zero when none asks for one).
std::chrono::nanoseconds progress_linger() noexcept;
/// True while at least one source is registered.
bool has_progress_sources() noexcept;

// ---------------------------------------------------------------------------------------
// Shared cores: the one fact that switches the policy from spinning to sleeping.

/// True when this process's threads share cores with other processes' troupe threads (ranks
/// oversubscribing a node): waits, idle pool workers and the engine's progress thread then
/// sleep instead of spinning. Set by troupe::Runtime (TROUPE_SHARED_CORES, else detected
/// from the node's affinity masks, troupe/runtime/topology.hpp); without a Runtime, true
/// only for TROUPE_SHARED_CORES=1. Thread-safe, one relaxed load once known; never throws.
bool cores_shared() noexcept;
/// Sets the fact for this process (troupe::Runtime at start-up; tests). Thread-safe.
void set_cores_shared(bool shared) noexcept;
/// Forgets what set_cores_shared() said: back to TROUPE_SHARED_CORES (a Runtime that ends).
void reset_cores_shared() noexcept;

/// The spin window a wait with @p params uses: params.spin, or zero when cores are shared.
std::chrono::nanoseconds effective_spin(std::chrono::nanoseconds spin) noexcept;

// ---------------------------------------------------------------------------------------
// The policy and the primitive.

/// How long a wait spins before it sleeps: long enough to catch "the worker is about to
/// finish" (a pool round trip is ~2 µs), short enough not to cost a core when it is not.
inline constexpr std::chrono::nanoseconds kWaitSpin{8'000};

/// Longest nap of a thread that keeps helping or driving progress while it sleeps:
/// troupe::settings().wait_backoff (TROUPE_WAIT_BACKOFF_US, 500 µs by default).
std::chrono::nanoseconds wait_backoff_ceiling() noexcept;

/// How one wait may behave; the defaults are the policy above.
struct WaitParams {
  /// Length of the spin phase (0: go straight to sleep). Zero in effect when cores are
  /// shared (cores_shared()), except that a waiter that may help or drive progress still
  /// does so until that finds nothing to do.
  std::chrono::nanoseconds spin = kWaitSpin;
  /// Run other pool tasks while waiting, if the caller is a pool worker.
  bool help = true;
  /// The hook of a thread that has none of its own (it is no pool worker): the pool of
  /// the awaited task (OutsideHelp). Used while spinning and, if the thread polls
  /// anyway (progress sources), between naps; it never makes a thread poll by itself.
  HelpHook* outside_help = nullptr;
  /// Keep helping / driving progress between naps once the spin is over. False for threads
  /// that something else wakes and that must cost nothing at rest: an idle pool worker
  /// (a push wakes it), a Timer's own thread.
  bool poll_while_asleep = true;
  /// Longest nap while polling; zero: wait_backoff_ceiling(). For a thread with a ceiling
  /// of its own (the engine's progress thread: TROUPE_ENGINE_BACKOFF_US).
  std::chrono::nanoseconds max_nap{0};
};

enum class WaitStatus { kReady, kTimeout, kCancelled };

/// What wait_until() waits for: a condition and the futex word its changes are announced on.
class WaitTarget {
 public:
  /// The condition. Called often; keep it cheap and non-throwing.
  virtual bool ready() noexcept = 0;
  /// The futex word the thread sleeps on.
  virtual std::atomic<std::uint32_t>& word() noexcept = 0;
  /// Announces that this thread is about to sleep and returns the word's value to sleep
  /// on. wait_until() checks ready() after arm() and before sleeping, so a notifier that
  /// makes the condition true after arm() must change the word (and wake sleepers).
  virtual std::uint32_t arm() noexcept = 0;
  /// Withdraws what arm() announced (once per arm()).
  virtual void disarm() noexcept {}
  /// Changes the word and wakes every sleeper: a stop request ends a sleep this way.
  virtual void poke() noexcept = 0;
  /// True when word() lies in memory shared between processes (a node-shared window): the
  /// loop then sleeps with futex_wait_shared, and the notifier must wake with
  /// futex_wake_shared.
  virtual bool process_shared() const noexcept { return false; }

 protected:
  ~WaitTarget() = default;
};

/// The wait loop (policy above). Returns kReady as soon as target.ready() holds, kTimeout
/// when @p deadline passes first, kCancelled when @p token is stopped first. Does not throw
/// unless a helped task's machinery does.
WaitStatus wait_until(WaitTarget& target, const Deadline& deadline, const std::stop_token* token = nullptr,
                      const WaitParams& params = {});

/// Throws CancelledError "<api>: cancelled by token".
[[noreturn]] void throw_wait_cancelled(const char* api);

/// The end of a wait as its callers report it: kReady -> true, kTimeout -> false,
/// kCancelled -> @p on_cancel() (which throws: CancelledError with the caller's words).
template <class OnCancel>
bool ready_or_timeout(WaitStatus status, OnCancel&& on_cancel) {
  if (status == WaitStatus::kCancelled) on_cancel();
  return status == WaitStatus::kReady;
}

/// The generic form: wait until pred() holds, woken by notify_*() on this word. Waiters
/// sleep on a sequence number; notify costs one atomic RMW and no system call while no
/// thread sleeps.
///
/// Protocol: make the condition true (any store), then call notify_all() / notify_one().
class WaitWord {
 public:
  WaitWord() noexcept = default;
  WaitWord(const WaitWord&) = delete;
  WaitWord& operator=(const WaitWord&) = delete;

  /// Wakes every sleeping waiter. Call after making the condition true.
  void notify_all() noexcept {
    // seq_cst RMW then seq_cst load, against the waiter's seq_cst RMW on waiters_ then
    // load of seq_: one of the two sees the other (no lost wake-up).
    seq_.fetch_add(1, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) != 0) wake(false);
  }
  /// Wakes one sleeping waiter (for conditions that one waiter consumes, like a unit of a
  /// semaphore). Spinning or helping waiters see the change without a wake-up.
  void notify_one() noexcept {
    seq_.fetch_add(1, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) != 0) wake(true);
  }

  /// Waits until pred() holds (checked first: a true condition wins over the deadline and
  /// the token). Returns false when @p deadline passed first; throws CancelledError
  /// ("<api>: cancelled by token") when @p token is stopped first.
  template <class Pred>
  bool wait(Pred&& pred, const Deadline& deadline, const std::stop_token* token = nullptr, const char* api = "wait",
            const WaitParams& params = {}) {
    return ready_or_timeout(wait_status(std::forward<Pred>(pred), deadline, token, params),
                            [api] { throw_wait_cancelled(api); });
  }

  /// As wait(), but reports a stop request as WaitStatus::kCancelled instead of throwing.
  template <class Pred>
  WaitStatus wait_status(Pred&& pred, const Deadline& deadline, const std::stop_token* token = nullptr,
                         const WaitParams& params = {}) {
    if (pred()) return WaitStatus::kReady;
    Target<std::remove_reference_t<Pred>> t{this, &pred};
    return wait_until(t, deadline, token, params);
  }

 private:
  template <class Pred>
  struct Target final : WaitTarget {
    Target(WaitWord* w, Pred* p) noexcept : self(w), pred(p) {}
    bool ready() noexcept override { return static_cast<bool>((*pred)()); }
    std::atomic<std::uint32_t>& word() noexcept override { return self->seq_; }
    std::uint32_t arm() noexcept override { return self->arm(); }
    void disarm() noexcept override { self->waiters_.fetch_sub(1, std::memory_order_seq_cst); }
    void poke() noexcept override { self->notify_all(); }
    WaitWord* self;
    Pred* pred;
  };
  std::uint32_t arm() noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    return seq_.load(std::memory_order_seq_cst);
  }
  void wake(bool one) noexcept;

  std::atomic<std::uint32_t> seq_{0};
  std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace troupe::detail
