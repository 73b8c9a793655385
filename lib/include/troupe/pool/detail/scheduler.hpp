#pragma once
// The engine of ThreadPool: workers with work-stealing deques, an injection queue for
// outside submitters, and a sleep/wake protocol that costs nothing while workers are busy.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "troupe/core/detail/wait.hpp"
#include "troupe/pool/detail/task.hpp"

namespace troupe::detail {

struct SchedulerConfig {
  std::size_t threads = 1;
  std::chrono::microseconds spin{50};
  std::function<void()> initializer;
  std::string name;
  /// Threads outside the pool that wait on one of its tasks run its tasks meanwhile.
  bool outside_help = true;
};

struct WorkerStats {
  std::uint64_t tasks_run = 0;
  std::uint64_t steals = 0;
  std::uint64_t sleeps = 0;
};

/// Fairness bound: a worker takes its newest task (LIFO, cache-warm) except that every
/// kFairnessInterval-th take is the head of the injection queue (tasks submitted from
/// outside the pool) and every kOwnFairnessInterval-th take the oldest task of its own deque
/// (that turn first when both fall on one take). So a task that its worker keeps feeding
/// its own deque (a task that re-submits itself) delays the head of the injection queue by
/// at most 2 * kFairnessInterval - 1 takes of that worker, and the oldest task of that
/// worker's deque by at most kOwnFairnessInterval - 1; other workers also steal and take
/// outside work as soon as they are idle. The own-deque turn is rarer because taking the
/// oldest task breaks the depth-first order of nested tasks: at 64 it cost a spawn tree
/// 5-8% CPU, at 512 nothing measurable (docs/scheduling.md).
inline constexpr std::uint32_t kFairnessInterval = 64;
inline constexpr std::uint32_t kOwnFairnessInterval = 8 * kFairnessInterval;

/// Seats lent to threads outside the pool that help while they wait (as TBB's arena
/// reserves a slot for the thread that enters it): each is a worker's deque and identity
/// for the length of one wait. A waiter that finds every seat taken waits without helping.
inline constexpr std::size_t kOutsideSeats = 2;

class Scheduler final : public HelpSource {
 public:
  explicit Scheduler(SchedulerConfig config);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Queues a task: on the calling worker's own deque, else on the injection queue.
  /// Throws InvalidStateError (naming @p api) after shutdown, except from this
  /// scheduler's own workers (children of accepted work still run).
  void push(TaskBase* task, const char* api);
  /// Runs one queued task in the calling thread if there is one (for helping waits).
  bool run_one();
  /// What this pool's futures carry for outside waiters (empty gate: they do not help).
  const HelpTicket& ticket() const noexcept { return ticket_; }
  /// HelpSource: a waiting thread outside the pool takes a seat and runs one task there.
  bool help_outside(void*& seat) noexcept override;
  void leave_outside(void* seat) noexcept override;

  std::size_t size() const noexcept { return nthreads_; }
  /// Index of the calling thread among this scheduler's workers, or -1 (also for an
  /// outside thread running one of its tasks on a lent seat).
  int worker_index() const noexcept;
  /// True in this scheduler's workers and in an outside thread while it runs one of its
  /// tasks (helping): the threads whose pushes go to a deque of this scheduler.
  bool on_pool_thread() const noexcept;
  bool is_shutdown() const noexcept { return shutdown_.load(std::memory_order_acquire); }

  /// Stops accepting outside work; cancels queued futures when asked; joins when asked.
  void shutdown(bool wait, bool cancel_futures);
  std::vector<WorkerStats> stats() const;
  /// The scheduler whose worker is the calling thread, or nullptr.
  static Scheduler* current() noexcept;

 private:
  struct Worker;
  TaskBase* find_task(Worker* self);
  TaskBase* take_injected();
  bool has_work() const noexcept;
  void worker_main(Worker* self);
  void notify_one() noexcept;
  void wake_one() noexcept;
  void notify_all() noexcept;
  void cancel_queued();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::size_t nthreads_;
  std::atomic<bool> shutdown_{false};
  HelpTicket ticket_;
};

}  // namespace troupe::detail
