#include "troupe/pool/detail/scheduler.hpp"

#include <climits>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "troupe/core/detail/futex.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/pool/detail/mpmc_queue.hpp"
#include "troupe/pool/detail/ws_deque.hpp"
#include "troupe/runtime/detail/trace.hpp"

namespace troupe::detail {

struct Scheduler::Worker final : HelpHook {
  Scheduler* owner = nullptr;
  std::size_t index = 0;
  WsDeque<TaskBase*> deque{1024};
  std::uint64_t rng = 0;
  std::uint32_t takes = 0;        // tasks this worker took, for the fairness turn (owner only)
  std::atomic<bool> lent{false};  // an outside seat: held by a helping waiter
  std::atomic<std::uint64_t> tasks_run{0};
  std::atomic<std::uint64_t> steals{0};
  std::atomic<std::uint64_t> sleeps{0};
  std::thread thread;

  bool help_one() override { return owner->run_one(); }
  std::size_t next_victim(std::size_t n) noexcept {
    rng ^= rng << 13;  // xorshift64
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return static_cast<std::size_t>(rng % n);
  }
};

namespace {
thread_local Scheduler* tls_scheduler = nullptr;
thread_local void* tls_worker = nullptr;
constexpr std::size_t kInjectCapacity = 1u << 15;

// Runs @p t; with TROUPE_TRACE on, as a "task" slice on this thread's lane.
void run_task(TaskBase* t) noexcept {
  trace::Span span("task", "pool");
  t->execute();
}
}  // namespace

struct Scheduler::Impl {
  explicit Impl(SchedulerConfig c) : config(std::move(c)), inject(kInjectCapacity) {}
  SchedulerConfig config;
  std::vector<std::unique_ptr<Worker>> workers;
  // The seats lent to outside helpers (kOutsideSeats), then `workers`: every deque, for
  // thieves and for has_work().
  std::vector<std::unique_ptr<Worker>> seats;
  std::vector<Worker*> deques;
  MpmcQueue<TaskBase*> inject;
  std::mutex overflow_mu;
  std::deque<TaskBase*> overflow;
  std::atomic<std::size_t> overflow_size{0};
  // Sleep protocol: a worker bumps `sleepers`, re-checks the queues, then sleeps on
  // `epoch`; a producer's RMW on `sleepers` after its push orders the two (no lost wake).
  alignas(64) std::atomic<std::uint32_t> sleepers{0};
  alignas(64) std::atomic<std::uint32_t> epoch{0};
  alignas(64) std::atomic<std::uint32_t> outside_pushes{0};  // submits in flight from outside
  WaitWord pushes_done;  // notified when outside_pushes drops to zero after shutdown
  std::atomic<bool> stop{false};
  std::mutex join_mu;
  bool joined = false;
};

Scheduler* Scheduler::current() noexcept { return tls_scheduler; }

Scheduler::Scheduler(SchedulerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {
  nthreads_ = impl_->config.threads == 0 ? 1 : impl_->config.threads;
  std::random_device rd;
  impl_->workers.reserve(nthreads_);
  for (std::size_t i = 0; i < nthreads_; ++i) {
    auto w = std::make_unique<Worker>();
    w->owner = this;
    w->index = i;
    w->rng = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ (i * 0x9E3779B97F4A7C15ull) ^ 1ull;
    impl_->workers.push_back(std::move(w));
  }
  if (impl_->config.outside_help) {
    for (std::size_t i = 0; i < kOutsideSeats; ++i) {
      auto w = std::make_unique<Worker>();
      w->owner = this;
      w->index = nthreads_ + i;
      w->rng = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ ((nthreads_ + i) * 0x9E3779B97F4A7C15ull) ^ 1ull;
      impl_->seats.push_back(std::move(w));
    }
  }
  for (auto& w : impl_->workers) impl_->deques.push_back(w.get());
  for (auto& w : impl_->seats) impl_->deques.push_back(w.get());
  if (impl_->config.outside_help) ticket_ = open_help_gate(this);
  for (auto& w : impl_->workers) {
    Worker* raw = w.get();
    raw->thread = std::thread([this, raw] { worker_main(raw); });
  }
}

Scheduler::~Scheduler() {
  shutdown(true, false);
  // No outside waiter helps from now on; wait for those inside (their tasks are done).
  close_help_gate(ticket_);
  // Tasks an outside helper pushed to its seat after the workers had left: run them here,
  // as shutdown() runs what is left in the injection queue.
  for (;;) {
    TaskBase* t = take_injected();
    for (auto& seat : impl_->seats) {
      if (t) break;
      t = seat->deque.steal();
    }
    if (!t) break;
    t->execute();
  }
}

int Scheduler::worker_index() const noexcept {
  if (tls_scheduler != this) return -1;
  const std::size_t i = static_cast<Worker*>(tls_worker)->index;
  return i < nthreads_ ? static_cast<int>(i) : -1;
}

bool Scheduler::on_pool_thread() const noexcept { return tls_scheduler == this; }

bool Scheduler::help_outside(void*& seat) noexcept {
  auto* w = static_cast<Worker*>(seat);
  if (w == nullptr) {
    for (auto& s : impl_->seats) {
      if (!s->lent.load(std::memory_order_relaxed) && !s->lent.exchange(true, std::memory_order_acquire)) {
        w = s.get();
        break;
      }
    }
    if (w == nullptr) return false;  // every seat is taken: wait without helping
    seat = w;
  }
  // For the length of the task this thread is the seat's worker: the task's pushes go to
  // the seat's deque (LIFO, stolen by the workers) and its waits help as a worker does.
  Scheduler* const prev_sched = std::exchange(tls_scheduler, this);
  void* const prev_worker = std::exchange(tls_worker, w);
  HelpHook* const prev_hook = set_help_hook(w);
  TaskBase* t = find_task(w);
  if (t) {
    run_task(t);
    w->tasks_run.fetch_add(1, std::memory_order_relaxed);
  }
  set_help_hook(prev_hook);
  tls_worker = prev_worker;
  tls_scheduler = prev_sched;
  return t != nullptr;
}

void Scheduler::leave_outside(void* seat) noexcept {
  // Tasks left in the seat's deque stay there for the workers to steal (or the next holder).
  if (seat != nullptr) static_cast<Worker*>(seat)->lent.store(false, std::memory_order_release);
}

void Scheduler::push(TaskBase* task, const char* api) {
  if (tls_scheduler == this) {
    static_cast<Worker*>(tls_worker)->deque.push(task);
    // The deque's bottom store and this load are both seq_cst, and so are a sleeper's
    // RMW on `sleepers` and its look at the deques: one of the two sees the other.
    // A plain load keeps the hot path free of a locked instruction on a shared line.
    if (impl_->sleepers.load(std::memory_order_seq_cst) != 0) wake_one();
    return;
  }
  auto& im = *impl_;
  im.outside_pushes.fetch_add(1, std::memory_order_seq_cst);
  if (shutdown_.load(std::memory_order_seq_cst)) {
    im.outside_pushes.fetch_sub(1, std::memory_order_seq_cst);
    im.pushes_done.notify_all();
    throw InvalidStateError(std::string(api) + ": cannot schedule new tasks after shutdown");
  }
  if (!im.inject.try_push(task)) {
    std::lock_guard lock(im.overflow_mu);
    im.overflow.push_back(task);
    im.overflow_size.fetch_add(1, std::memory_order_release);
  }
  notify_one();
  // seq_cst decrement then load, against shutdown()'s store then load: if we miss the flag,
  // shutdown sees the count drop.
  if (im.outside_pushes.fetch_sub(1, std::memory_order_seq_cst) == 1 && shutdown_.load(std::memory_order_seq_cst)) {
    im.pushes_done.notify_all();
  }
}

void Scheduler::notify_one() noexcept {
  // The RMW (not a plain load) orders our push before the check; see Impl.
  if (impl_->sleepers.fetch_add(0, std::memory_order_acq_rel) != 0) wake_one();
}

void Scheduler::wake_one() noexcept {
  auto& im = *impl_;
  im.epoch.fetch_add(1, std::memory_order_acq_rel);
  futex_wake(im.epoch, 1);
}

void Scheduler::notify_all() noexcept {
  auto& im = *impl_;
  im.epoch.fetch_add(1, std::memory_order_acq_rel);
  futex_wake(im.epoch, INT_MAX);
}

TaskBase* Scheduler::take_injected() {
  auto& im = *impl_;
  TaskBase* t = nullptr;
  if (im.inject.try_pop(t)) return t;
  if (im.overflow_size.load(std::memory_order_acquire) != 0) {
    std::lock_guard lock(im.overflow_mu);
    if (!im.overflow.empty()) {
      t = im.overflow.front();
      im.overflow.pop_front();
      im.overflow_size.fetch_sub(1, std::memory_order_release);
      return t;
    }
  }
  return nullptr;
}

bool Scheduler::has_work() const noexcept {
  auto& im = *impl_;
  if (!im.inject.empty_hint() || im.overflow_size.load(std::memory_order_acquire) != 0) return true;
  for (Worker* w : im.deques) {
    if (!w->deque.empty()) return true;
  }
  return false;
}

TaskBase* Scheduler::find_task(Worker* self) {
  auto& im = *impl_;
  if (self) {
    // Fairness (see kFairnessInterval): every kOwnFairnessInterval-th take is the oldest
    // task of the own deque, every other kFairnessInterval-th take the head of the injection
    // queue; otherwise LIFO, for locality. An empty queue costs its turn one failed pop.
    const std::uint32_t take = ++self->takes;
    if (take % kOwnFairnessInterval == 0) {
      if (TaskBase* t = self->deque.steal()) return t;  // a thief's take: the oldest task
    }
    if (take % kFairnessInterval == 0) {
      if (TaskBase* t = take_injected()) return t;
    }
    if (TaskBase* t = self->deque.pop()) return t;
  }
  if (TaskBase* t = take_injected()) {
    // More waiting outside work and someone asleep: pass the baton.
    if (!im.inject.empty_hint()) notify_one();
    return t;
  }
  const std::size_t n = im.deques.size();
  if (n == 0) return nullptr;
  const std::size_t start = self ? self->next_victim(n) : 0;
  for (std::size_t k = 0; k < n; ++k) {
    Worker* victim = im.deques[(start + k) % n];
    if (victim == self) continue;
    // A lost race returns nullptr although work remains; retry that victim a few times.
    for (int attempt = 0; attempt < 4 && !victim->deque.empty(); ++attempt) {
      if (TaskBase* t = victim->deque.steal()) {
        if (self) self->steals.fetch_add(1, std::memory_order_relaxed);
        return t;
      }
    }
  }
  return nullptr;
}

bool Scheduler::run_one() {
  Worker* self = tls_scheduler == this ? static_cast<Worker*>(tls_worker) : nullptr;
  TaskBase* t = find_task(self);
  if (!t) return false;
  run_task(t);
  if (self) self->tasks_run.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Scheduler::worker_main(Worker* self) {
  auto& im = *impl_;
  tls_scheduler = this;
  tls_worker = self;
  set_help_hook(self);
  trace::name_thread(std::string("worker ").append(std::to_string(self->index)));
  if (im.config.initializer) {
    try {
      im.config.initializer();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "[troupe] ThreadPool initializer threw on worker %zu: %s\n", self->index, e.what());
    } catch (...) {
      std::fprintf(stderr, "[troupe] ThreadPool initializer threw on worker %zu\n", self->index);
    }
  }
  // Idle wait: the one wait loop (core/detail/wait.hpp) with the pool's spin, driving
  // progress while it spins (a task that arrives from another rank is taken off the wire
  // and run by this very thread), then a sleep on `epoch` that only a push or shutdown
  // ends: a pool at rest costs no CPU. arm() is the sleeper registration of Impl.
  struct Idle final : WaitTarget {
    Scheduler* sched;
    Worker* self;
    Impl* im;
    bool ready() noexcept override { return sched->has_work() || im->stop.load(std::memory_order_acquire); }
    std::atomic<std::uint32_t>& word() noexcept override { return im->epoch; }
    std::uint32_t arm() noexcept override {
      const std::uint32_t e = im->epoch.load(std::memory_order_acquire);
      im->sleepers.fetch_add(1, std::memory_order_seq_cst);
      self->sleeps.fetch_add(1, std::memory_order_relaxed);
      return e;
    }
    void disarm() noexcept override { im->sleepers.fetch_sub(1, std::memory_order_acq_rel); }
    void poke() noexcept override { sched->notify_all(); }
  } idle;
  idle.sched = this;
  idle.self = self;
  idle.im = &im;
  WaitParams params;
  params.spin = im.config.spin;
  params.help = false;  // ready() is "there is work": finding it is this loop's job
  params.poll_while_asleep = false;
  for (;;) {
    if (TaskBase* t = find_task(self)) {
      run_task(t);
      self->tasks_run.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (im.stop.load(std::memory_order_acquire) && !has_work()) break;
    (void)wait_until(idle, Deadline{}, nullptr, params);
  }
  set_help_hook(nullptr);
  tls_scheduler = nullptr;
  tls_worker = nullptr;
}

void Scheduler::cancel_queued() {
  // Take every queued task from outside the workers (steal is safe from any thread),
  // cancel its future, then let it "run" (a cancelled task only drops its reference).
  std::vector<TaskBase*> taken;
  for (;;) {
    TaskBase* t = take_injected();
    if (!t) {
      for (Worker* w : impl_->deques) {
        while (TaskBase* s = w->deque.steal()) taken.push_back(s);
      }
      if (!impl_->inject.empty_hint() || impl_->overflow_size.load() != 0) continue;
      break;
    }
    taken.push_back(t);
  }
  for (TaskBase* t : taken) t->cancel_pending();
  for (TaskBase* t : taken) t->execute();
}

void Scheduler::shutdown(bool wait, bool cancel_futures) {
  auto& im = *impl_;
  shutdown_.store(true, std::memory_order_seq_cst);
  // Outside submitters that passed the check before we set the flag finish their push.
  WaitParams quiet;
  quiet.help = false;  // a worker calling shutdown(wait=false) must not run tasks here
  (void)im.pushes_done.wait([&] { return im.outside_pushes.load(std::memory_order_seq_cst) == 0; }, Deadline{}, nullptr,
                            "ThreadPool::shutdown", quiet);
  if (cancel_futures) cancel_queued();
  im.stop.store(true, std::memory_order_release);
  notify_all();
  if (!wait) return;
  if (tls_scheduler == this) {
    throw InvalidStateError("ThreadPool::shutdown: wait=true from one of the pool's own workers would deadlock");
  }
  std::lock_guard lock(im.join_mu);
  if (im.joined) return;
  for (auto& w : im.workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  im.joined = true;
  // Workers leave only with empty queues; anything left came from a race we forbid above.
  while (TaskBase* t = take_injected()) t->execute();
}

std::vector<WorkerStats> Scheduler::stats() const {
  std::vector<WorkerStats> out;
  for (auto& w : impl_->workers) {
    out.push_back({w->tasks_run.load(std::memory_order_relaxed), w->steals.load(std::memory_order_relaxed),
                   w->sleeps.load(std::memory_order_relaxed)});
  }
  return out;
}

}  // namespace troupe::detail
