#include "troupe/executor/detail/core.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "troupe/core/detail/futex.hpp"
#include "troupe/core/error.hpp"
#include "troupe/engine/engine.hpp"
#include "troupe/future/detail/help.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/pool/thread_pool.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/wire/callable.hpp"
#include "troupe/wire/exception.hpp"

namespace troupe::detail {

namespace {
// Engine message types of the executor.
constexpr std::uint16_t kTask = 1;    // [u64 id][call]
constexpr std::uint16_t kResult = 2;  // [u64 id][u8 status][value or exception record]
constexpr std::uint16_t kMail = 3;    // [u64 key][bytes]: collectives over engine messages
constexpr std::uint16_t kCancelQueued = 4;  // [u64 0]: drop the sender's tasks not started here
constexpr std::uint8_t kOk = 0;
constexpr std::uint8_t kFailed = 1;
constexpr std::uint8_t kCancelled = 2;

std::atomic<ExecutorCore*> g_current{nullptr};

template <class T>
void put(std::vector<std::byte>& b, T v) {
  const auto at = b.size();
  b.resize(at + sizeof v);
  std::memcpy(b.data() + at, &v, sizeof v);
}
template <class T>
T get(std::span<const std::byte> b, std::size_t at) {
  T v{};
  if (b.size() < at + sizeof v) throw wire::DecodeError("executor message too short");
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
}  // namespace

ExecutorCore* current_executor_core() noexcept { return g_current.load(std::memory_order_acquire); }

struct ExecutorCore::Impl {
  Runtime& rt;
  ExecutorOptions options;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
  std::vector<std::size_t> threads_of;  // per rank
  std::size_t total_threads = 0;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<engine::Engine> engine;

  std::mutex mu;  // dispatch state
  std::deque<std::unique_ptr<Envelope>> ready;
  std::vector<long long> credits;
  std::size_t rr = 0;
  std::unordered_map<std::uint64_t, std::unique_ptr<Envelope>> remote;  // sent, awaiting a result
  std::vector<bool> broken_rank;
  std::string broken_reason;
  bool broken = false;

  std::atomic<std::uint64_t> next_id{1};
  std::atomic<long long> submitted{0}, completed{0};
  std::atomic<std::uint64_t> ran_here{0}, sent_remote{0}, served_remote{0}, cancelled_remote{0};
  // Per sending rank, how many "cancel what you have not started" requests arrived. A task
  // notes the count when it arrives; if it has changed by the time the task starts, the
  // task was queued here when its sender cancelled, and it ends as cancelled instead.
  // (One atomic load per task: no registry on the hot path.)
  std::unique_ptr<std::atomic<std::uint32_t>[]> cancel_epoch;
  std::atomic<bool> closed{false};
  std::atomic<int> outside_submits{0};
  bool finished = false;

  // Mailbox of the collectives built on engine messages: (source, key) -> bytes.
  std::mutex mail_mu;
  std::condition_variable mail_cv;
  std::map<std::pair<int, std::uint64_t>, std::vector<std::byte>> mail;
  std::uint64_t collective_seq = 0;

  Impl(Runtime& r, const ExecutorOptions& o) : rt(r), options(o) {}

  // --- dispatch (call with mu held) ------------------------------------------------
  // The rank with the most free credits (the least loaded relative to its prefetch
  // window); ties go to this rank for tasks submitted by tasks (locality), else round robin.
  int pick(bool nested) {
    long long best = 0;
    int choice = -1;
    for (int k = 0; k < size; ++k) {
      const int r = static_cast<int>((rr + static_cast<std::size_t>(k)) % static_cast<std::size_t>(size));
      const long long free = credits[static_cast<std::size_t>(r)];
      if (broken_rank[static_cast<std::size_t>(r)] || free <= 0) continue;
      if (free > best || (free == best && nested && r == rank)) {
        best = free;
        choice = r;
      }
    }
    if (choice >= 0) rr = static_cast<std::size_t>(choice) + 1;
    return choice;
  }

  void dispatch(std::unique_ptr<Envelope> env, int target, ExecutorCore* self) {
    if (!env->start()) {  // cancelled while queued
      completed.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    --credits[static_cast<std::size_t>(target)];
    env->target = target;
    if (target == rank) {
      pool->submit([self, e = std::move(env)]() mutable {
        e->run_local();
        self->impl_->ran_here.fetch_add(1, std::memory_order_relaxed);
        self->impl_->on_done(self->impl_->rank, self);
      });
      return;
    }
    std::vector<std::byte> msg;
    put<std::uint64_t>(msg, env->id);
    wire::Writer w;
    try {
      env->encode(w);
    } catch (...) {
      ++credits[static_cast<std::size_t>(target)];
      env->fail(std::current_exception());
      completed.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    auto& call = w.buffer();
    msg.insert(msg.end(), call.begin(), call.end());
    remote.emplace(env->id, std::move(env));
    sent_remote.fetch_add(1, std::memory_order_relaxed);
    engine->expect(1);
    engine->send(target, kTask, std::move(msg));
  }

  void pump(ExecutorCore* self) {
    while (!ready.empty()) {
      const int t = pick(ready.front()->nested);
      if (t < 0) return;
      auto env = std::move(ready.front());
      ready.pop_front();
      dispatch(std::move(env), t, self);
    }
  }

  void on_done(int from, ExecutorCore* self) {
    std::lock_guard lock(mu);
    ++credits[static_cast<std::size_t>(from)];
    completed.fetch_add(1, std::memory_order_acq_rel);
    pump(self);
  }

  // --- server side -----------------------------------------------------------------
  void on_task(int src, std::span<const std::byte> payload, ExecutorCore* self) {
    if (payload.size() < 8) {
      std::fprintf(stderr, "[troupe] executor: task message of %zu bytes from rank %d dropped (too short)\n",
                   payload.size(), src);
      return;
    }
    const auto id = get<std::uint64_t>(payload, 0);
    std::vector<std::byte> call(payload.begin() + 8, payload.end());
    const std::uint32_t epoch = cancel_epoch[static_cast<std::size_t>(src)].load(std::memory_order_acquire);
    pool->submit([self, src, id, epoch, call = std::move(call)] {
      auto& im = *self->impl_;
      std::vector<std::byte> reply;
      if (im.cancel_epoch[static_cast<std::size_t>(src)].load(std::memory_order_acquire) != epoch) {
        put<std::uint64_t>(reply, id);  // its sender cancelled it while it was queued here
        put<std::uint8_t>(reply, kCancelled);
        im.cancelled_remote.fetch_add(1, std::memory_order_relaxed);
        im.engine->send(src, kResult, std::move(reply));
        return;
      }
      put<std::uint64_t>(reply, id);
      wire::Writer out;
      std::uint8_t status = kOk;
      try {
        wire::Reader in(call);
        wire::decode_and_invoke(in, out);
      } catch (...) {
        status = kFailed;
        out = wire::Writer{};
        try {
          wire::encode_exception(out, std::current_exception(), im.rt.rank(), im.rt.host(), im.rt.size());
        } catch (...) {
          out = wire::Writer{};
          wire::encode_exception(out, std::make_exception_ptr(Error("exception could not be encoded")), im.rank,
                                 im.rt.host(), im.size);
        }
      }
      put<std::uint8_t>(reply, status);
      auto& body = out.buffer();
      reply.insert(reply.end(), body.begin(), body.end());
      im.served_remote.fetch_add(1, std::memory_order_relaxed);
      im.engine->send(src, kResult, std::move(reply));
    });
  }

  // The sender cancels what it sent here that has not started: each such task ends with a
  // "cancelled" result when it comes up, so the sender's accounting and credits stay exact.
  void on_cancel_queued(int src) { cancel_epoch[static_cast<std::size_t>(src)].fetch_add(1, std::memory_order_acq_rel); }

  void on_result(int src, std::span<const std::byte> payload, ExecutorCore* self) {
    if (payload.size() < 9) {
      std::fprintf(stderr, "[troupe] executor: result message of %zu bytes from rank %d dropped (too short)\n",
                   payload.size(), src);
      return;
    }
    const auto id = get<std::uint64_t>(payload, 0);
    const auto status = get<std::uint8_t>(payload, 8);
    std::unique_ptr<Envelope> env;
    {
      std::lock_guard lock(mu);
      auto it = remote.find(id);
      if (it == remote.end()) return;  // failed already (broken rank)
      env = std::move(it->second);
      remote.erase(it);
    }
    engine->expect(-1);
    auto body = payload.subspan(9);
    if (status == kOk) {
      env->complete_remote(body);
    } else if (status == kCancelled) {
      env->fail(std::make_exception_ptr(
          CancelledError("Executor: cancelled on rank " + std::to_string(src) + " before it started")));
    } else {
      try {
        wire::Reader in(body);
        env->fail(wire::decode_exception(in));
      } catch (...) {
        env->fail(std::current_exception());
      }
    }
    on_done(src, self);
  }

  void on_mail(int src, std::span<const std::byte> payload) {
    if (payload.size() < 8) return;
    const auto key = get<std::uint64_t>(payload, 0);
    {
      std::lock_guard lock(mail_mu);
      mail[{src, key}] = std::vector<std::byte>(payload.begin() + 8, payload.end());
    }
    mail_cv.notify_all();
  }
};

ExecutorCore::ExecutorCore(Runtime& rt, const ExecutorOptions& options) : impl_(std::make_unique<Impl>(rt, options)) {
  auto& im = *impl_;
  if (options.credits_per_thread == 0) throw ValueError("Executor: credits_per_thread must be >= 1, got 0");
  if (options.root < 0 || options.root >= rt.size()) {
    throw ValueError("Executor: root must be a rank in [0, " + std::to_string(rt.size()) + "), got " +
                     std::to_string(options.root));
  }
  ExecutorCore* expected = nullptr;
  if (!g_current.compare_exchange_strong(expected, this)) {
    throw InvalidStateError("Executor: another Executor exists in this process; destroy it first (one per process)");
  }
  try {
    wire::finalize_callable_table();
    // Private communicator: executor traffic never meets the program's or another layer's.
    TROUPE_MPI_CHECK(MPI_Comm_dup(rt.comm(), &im.comm));
    TROUPE_MPI_CHECK(MPI_Comm_rank(im.comm, &im.rank));
    TROUPE_MPI_CHECK(MPI_Comm_size(im.comm, &im.size));
    // Same callable table everywhere, or a clear error (one allreduce of min and max).
    unsigned long long digest = wire::callable_table_digest(), lo = 0, hi = 0;
    TROUPE_MPI_CHECK(MPI_Allreduce(&digest, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, im.comm));
    TROUPE_MPI_CHECK(MPI_Allreduce(&digest, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, im.comm));
    if (lo != hi) {
      throw Error("Executor: the ranks' tables of remote callables differ (digests " + std::to_string(lo) + " .. " +
                  std::to_string(hi) + "); every rank must run the same executable");
    }
    PoolOptions po;
    po.threads = options.threads != 0 ? options.threads : rt.threads();
    po.initializer = options.initializer;
    im.pool = std::make_unique<ThreadPool>(po);
    unsigned long long mine = im.pool->size();
    std::vector<unsigned long long> all(static_cast<std::size_t>(im.size));
    TROUPE_MPI_CHECK(MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all.data(), 1, MPI_UNSIGNED_LONG_LONG, im.comm));
    for (auto t : all) {
      im.threads_of.push_back(static_cast<std::size_t>(t));
      im.total_threads += static_cast<std::size_t>(t);
      im.credits.push_back(static_cast<long long>(t * options.credits_per_thread));
    }
    im.broken_rank.assign(static_cast<std::size_t>(im.size), false);
    im.cancel_epoch = std::make_unique<std::atomic<std::uint32_t>[]>(static_cast<std::size_t>(im.size));
    engine::EngineOptions eo;
    // A progress thread makes MPI calls beside the program's own threads: that needs
    // MPI_THREAD_MULTIPLE. Below it, the thread that builds the executor drives MPI itself
    // while it waits (the FUNNELED way), whatever the option says.
    eo.progress_thread = options.progress_thread && rt.thread_level() == ThreadLevel::Multiple;
    im.options.progress_thread = eo.progress_thread;
    im.engine = std::make_unique<engine::Engine>(im.comm, eo);
    im.engine->on(kTask, [this](int src, std::span<const std::byte> p) { impl_->on_task(src, p, this); });
    im.engine->on(kResult, [this](int src, std::span<const std::byte> p) { impl_->on_result(src, p, this); });
    im.engine->on(kMail, [this](int src, std::span<const std::byte> p) { impl_->on_mail(src, p); });
    im.engine->on(kCancelQueued, [this](int src, std::span<const std::byte>) { impl_->on_cancel_queued(src); });
  } catch (...) {
    impl_->engine.reset();
    impl_->pool.reset();
    if (impl_->comm != MPI_COMM_NULL) MPI_Comm_free(&impl_->comm);
    g_current.store(nullptr);
    throw;
  }
}

ExecutorCore::~ExecutorCore() {
  auto& im = *impl_;
  if (im.engine) set_progress_hook(nullptr, nullptr);
  im.engine.reset();  // joins the progress thread
  im.pool.reset();
  if (im.comm != MPI_COMM_NULL) MPI_Comm_free(&im.comm);
  ExecutorCore* self = this;
  g_current.compare_exchange_strong(self, nullptr);
}

void ExecutorCore::start() {
  auto& im = *impl_;
  im.engine->start();
  set_progress_hook([](void* e) { return static_cast<engine::Engine*>(e)->try_progress(); }, im.engine.get());
}

int ExecutorCore::rank() const noexcept { return impl_->rank; }
int ExecutorCore::size() const noexcept { return impl_->size; }
std::size_t ExecutorCore::total_workers() const noexcept { return impl_->total_threads; }
std::size_t ExecutorCore::local_workers() const noexcept { return impl_->pool->size(); }
ThreadPool& ExecutorCore::pool() noexcept { return *impl_->pool; }
engine::Engine& ExecutorCore::engine() noexcept { return *impl_->engine; }
bool ExecutorCore::closed() const noexcept { return impl_->closed.load(std::memory_order_acquire); }
bool ExecutorCore::in_worker() const noexcept { return impl_->pool && impl_->pool->in_worker(); }

void ExecutorCore::submit(std::unique_ptr<Envelope> env, const char* api, int pin) {
  auto& im = *impl_;
  if (pin >= im.size || pin < -1) {
    throw ValueError(std::string(api) + ": rank must be in [0, " + std::to_string(im.size) + "), got " + std::to_string(pin));
  }
  const bool nested = in_worker();
  if (!nested) im.outside_submits.fetch_add(1, std::memory_order_seq_cst);
  struct Leave {
    Impl& im;
    bool nested;
    ~Leave() {
      if (!nested) im.outside_submits.fetch_sub(1, std::memory_order_seq_cst);
    }
  } leave{im, nested};
  if (!nested && im.closed.load(std::memory_order_seq_cst)) {
    throw InvalidStateError(std::string(api) + ": cannot schedule new tasks after shutdown");
  }
  env->id = im.next_id.fetch_add(1, std::memory_order_relaxed);
  env->nested = nested;
  std::lock_guard lock(im.mu);
  if (im.broken) throw BrokenExecutor(std::string(api) + ": the executor is broken: " + im.broken_reason);
  if (pin >= 0 && im.broken_rank[static_cast<std::size_t>(pin)]) {
    throw BrokenExecutor(std::string(api) + ": rank " + std::to_string(pin) + " cannot be reached");
  }
  im.submitted.fetch_add(1, std::memory_order_acq_rel);
  if (pin >= 0) {  // placed by the caller: over the credit limit if need be
    im.dispatch(std::move(env), pin, this);
    return;
  }
  if (im.ready.empty()) {
    int t = im.pick(nested);
    // A task submitted by a task may not wait for a credit that tasks blocked on it hold:
    // it runs here, over the credit limit (work stealing inside the pool balances it).
    if (t < 0 && nested) t = im.rank;
    if (t >= 0) {
      im.dispatch(std::move(env), t, this);
      return;
    }
  } else if (nested) {
    im.dispatch(std::move(env), im.rank, this);
    return;
  }
  im.ready.push_back(std::move(env));
}

void ExecutorCore::break_rank(int r, const std::string& why) {
  auto& im = *impl_;
  std::vector<std::unique_ptr<Envelope>> failed;
  {
    std::lock_guard lock(im.mu);
    if (r < 0 || r >= im.size) throw ValueError("Executor: no rank " + std::to_string(r));
    im.broken_rank[static_cast<std::size_t>(r)] = true;
    im.broken = true;
    im.broken_reason = "rank " + std::to_string(r) + " cannot be reached (" + why + ")";
    for (auto it = im.remote.begin(); it != im.remote.end();) {
      if (it->second->target == r) {
        failed.push_back(std::move(it->second));
        it = im.remote.erase(it);
        im.engine->expect(-1);
      } else {
        ++it;
      }
    }
    for (auto& e : im.ready) failed.push_back(std::move(e));
    im.ready.clear();
  }
  for (auto& e : failed) {
    e->start();
    e->fail(std::make_exception_ptr(BrokenExecutor("Executor: " + im.broken_reason)));
    im.completed.fetch_add(1, std::memory_order_acq_rel);
  }
}

std::vector<long long> ExecutorCore::allreduce_sum(std::vector<long long> values) {
  if (!impl_->engine) throw InvalidStateError("Executor: the executor is shut down");
  std::atomic<std::uint32_t> done{0};
  std::vector<long long> out;
  impl_->engine->allreduce_sum(std::move(values), [&](std::vector<long long> v) {
    out = std::move(v);
    done.store(1, std::memory_order_release);
    futex_wake(done, 1);
  });
  // The engine completes it. Without a progress thread this thread drives the engine
  // (FUNNELED); either way it sleeps between looks (an idle serving rank must not spin).
  auto nap = std::chrono::microseconds(10);
  while (done.load(std::memory_order_acquire) == 0) {
    if (impl_->engine->try_progress()) {
      nap = std::chrono::microseconds(10);
      continue;
    }
    futex_wait(done, 0, Deadline::at(Clock::now() + nap));
    nap = std::min(nap * 2, impl_->options.progress_thread ? std::chrono::microseconds(50000) : std::chrono::microseconds(1000));
  }
  return out;
}

std::uint64_t ExecutorCore::next_collective() noexcept { return impl_->collective_seq++; }

void ExecutorCore::post(int dest, std::uint64_t key, std::vector<std::byte> bytes) {
  auto& im = *impl_;
  if (!im.engine) throw InvalidStateError("Executor: the executor is shut down");
  std::vector<std::byte> msg;
  put<std::uint64_t>(msg, key);
  msg.insert(msg.end(), bytes.begin(), bytes.end());
  im.engine->send(dest, kMail, std::move(msg));
}

std::vector<std::byte> ExecutorCore::take(int src, std::uint64_t key) {
  auto& im = *impl_;
  if (!im.engine) throw InvalidStateError("Executor: the executor is shut down");
  const auto slot = std::make_pair(src, key);
  std::unique_lock lock(im.mail_mu);
  while (im.mail.find(slot) == im.mail.end()) {
    // Without a progress thread this thread must move MPI itself (FUNNELED).
    lock.unlock();
    const bool progressed = im.engine->try_progress();
    lock.lock();
    if (!progressed && im.mail.find(slot) == im.mail.end()) im.mail_cv.wait_for(lock, std::chrono::microseconds(200));
  }
  auto bytes = std::move(im.mail[slot]);
  im.mail.erase(slot);
  return bytes;
}

void ExecutorCore::shutdown(bool wait, bool cancel_futures) {
  auto& im = *impl_;
  if (wait && !im.finished && in_worker()) {
    throw InvalidStateError("Executor::shutdown: wait=true from one of the executor's own tasks would deadlock");
  }
  im.closed.store(true, std::memory_order_seq_cst);
  while (im.outside_submits.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  if (cancel_futures) {
    std::deque<std::unique_ptr<Envelope>> dropped;
    {
      std::lock_guard lock(im.mu);
      dropped.swap(im.ready);
    }
    for (auto& e : dropped) {
      e->cancel();
      im.completed.fetch_add(1, std::memory_order_acq_rel);
    }
    // Reach the tasks already sent that no rank has started yet.
    if (im.engine) {
      for (int r = 0; r < im.size; ++r) {
        if (r != im.rank) im.engine->send(r, kCancelQueued, std::vector<std::byte>(8));
      }
    }
  }
  if (!wait || im.finished) return;
  if (in_worker()) throw InvalidStateError("Executor::shutdown: wait=true from one of the executor's own tasks would deadlock");
  // Termination: sum (outstanding, submitted) over ranks until two rounds agree that
  // nothing is outstanding and nothing new was submitted in between.
  long long previous = -1;
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    const long long outstanding = im.submitted.load() - im.completed.load();
    auto v = allreduce_sum({outstanding, im.submitted.load()});
    if (v[0] == 0 && v[1] == previous) break;
    previous = v[0] == 0 ? v[1] : -1;
    if (v[0] != 0) {
      const auto until = Clock::now() + pause;
      while (Clock::now() < until) {
        if (!im.engine->try_progress()) std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
      pause = std::min(pause * 2, std::chrono::microseconds(5000));
    }
  }
  im.finished = true;
  set_progress_hook(nullptr, nullptr);
  im.engine.reset();
  im.pool->shutdown(true);
}

ExecutorCore::Stats ExecutorCore::stats() const noexcept {
  auto& im = *impl_;
  return Stats{static_cast<std::uint64_t>(im.submitted.load()), static_cast<std::uint64_t>(im.completed.load()),
               im.ran_here.load(), im.sent_remote.load(), im.served_remote.load(), im.cancelled_remote.load()};
}

std::vector<std::byte> encode_current_exception() noexcept {
  try {
    wire::Writer w;
    const Runtime* rt = Runtime::current();
    wire::encode_exception(w, std::current_exception(), rt ? rt->rank() : 0, rt ? rt->host() : std::string(),
                           rt ? rt->size() : 0);
    return w.take();
  } catch (...) {
    return {};
  }
}

}  // namespace troupe::detail

namespace troupe {

namespace {
std::atomic<Executor*> g_executor{nullptr};
}

Executor::Executor(Runtime& rt, ExecutorOptions options)
    : core_(std::make_unique<detail::ExecutorCore>(rt, options)), root_(options.root) {
  // Published before the engine runs: a task arriving at once may call this_executor().
  g_executor.store(this, std::memory_order_release);
  core_->start();
}

Executor::~Executor() {
  try {
    core_->shutdown(true, false);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[troupe] Executor shutdown failed: %s\n", e.what());
  }
  Executor* self = this;
  g_executor.compare_exchange_strong(self, nullptr);
}

Executor& this_executor() {
  Executor* ex = g_executor.load(std::memory_order_acquire);
  if (!ex) throw InvalidStateError("this_executor: no Executor exists in this process");
  return *ex;
}

}  // namespace troupe
