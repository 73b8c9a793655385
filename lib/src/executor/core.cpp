#include "troupe/executor/detail/core.hpp"

#include <mpi.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "troupe/core/config.hpp"
#include "troupe/core/error.hpp"
#include "troupe/executor/detail/credits.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/messaging/messenger.hpp"
#include "troupe/pool/thread_pool.hpp"
#include "troupe/runtime/detail/arrival.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/detail/trace.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/wire/callable.hpp"
#include "troupe/wire/exception.hpp"

namespace troupe::detail {

namespace {

using messaging::Kind;

// The default of ExecutorOptions::credits_per_thread, and the factor for a rank whose cores
// are shared (Runtime::shared_cores()): 4 x 256 = 1024 tasks in flight per thread. Measured
// at 4 ranks on 2 cores (bench/oversub_bench.cpp): the root ran 98% of a chunksize-1 map
// with 4 per thread, 57% with 256, 27% (an even share) with 1024.
constexpr std::uint64_t kCreditsPerThread = 4;
constexpr std::uint64_t kSharedCreditFactor = 256;

// The executor's records (messaging/kinds.hpp lists their kinds).
struct TaskRecord {  // followed by the encoded call: [callable id][state][args]
  std::uint64_t id = 0;
  TROUPE_FIELDS(id)
};
enum class Outcome : std::uint8_t { kOk = 0, kFailed = 1, kCancelled = 2 };
struct ResultRecord {  // followed by the value (kOk) or an exception record (kFailed)
  std::uint64_t id = 0;
  std::uint8_t outcome = 0;
  TROUPE_FIELDS(id, outcome)
};

// Runs an encoded call ([callable id][state][args]) as a serving rank does: the result
// into @p out, or the exception as an encode_exception record.
Outcome run_encoded(std::span<const std::byte> call, wire::Writer& out, int rank, const std::string& host, int size,
                    const std::shared_ptr<wire::BlockSet>& blocks = nullptr) {
  try {
    wire::Reader args(call);
    if (blocks) args.attach_blocks(blocks);  // the arguments' large parts (staged)
    wire::decode_and_invoke(args, out);
    return Outcome::kOk;
  } catch (...) {
    out = wire::Writer{};
    try {
      wire::encode_exception(out, std::current_exception(), rank, host, size);
    } catch (...) {
      out = wire::Writer{};
      wire::encode_exception(out, std::make_exception_ptr(Error("exception could not be encoded")), rank, host, size);
    }
    return Outcome::kFailed;
  }
}

// Executors alive in this process, and the one whose pool the calling thread works for.
std::mutex g_live_mu;
std::vector<ExecutorCore*> g_live;
thread_local ExecutorCore* tls_core = nullptr;

}  // namespace

ExecutorCore* current_executor_core() noexcept {
  if (tls_core) return tls_core;
  std::lock_guard lock(g_live_mu);
  return g_live.size() == 1 ? g_live.front() : nullptr;
}

struct ExecutorCore::Impl {
  Executor& owner;
  Runtime& rt;
  ExecutorOptions options;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
  std::size_t total_threads = 0;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<messaging::Messenger> msgr;

  std::mutex mu;  // dispatch state
  std::deque<std::unique_ptr<Envelope>> ready;
  // Tasks dispatched to this rank, oldest first. Each pool task runs the oldest one, not
  // its own: a worker's deque is LIFO, and a map's chunks that the root dispatches to itself
  // from a finishing worker must still run in order (an ordered map streams).
  std::mutex local_mu;
  std::deque<std::unique_ptr<Envelope>> local;
  bool wire_local = false;
  CreditTable credits;  // free credits and broken ranks per rank; the choice in O(log P)
  std::unordered_map<std::uint64_t, std::unique_ptr<Envelope>> remote;  // sent, awaiting a result
  std::string broken_reason;
  bool broken = false;

  std::atomic<std::uint64_t> next_id{1};
  std::atomic<std::uint64_t> submitted{0}, completed{0}, ran_here{0}, sent_remote{0}, served_remote{0},
      cancelled_remote{0}, retried{0}, lost_ranks{0};
  std::vector<bool> lost_rank;
  // Per sending rank, how many "cancel what you have not started" requests arrived. A task
  // notes the count when it arrives; if it has changed by the time the task starts, the
  // task was queued here when its sender cancelled, and it ends as cancelled instead.
  std::unique_ptr<std::atomic<std::uint32_t>[]> cancel_epoch;
  std::atomic<bool> closed{false};
  std::atomic<int> outside_submits{0};
  bool finished = false;
  Deadline startup;                         // of the construction and of start()'s census
  messaging::MessengerStats stats_at_stop;  // the messenger's counters, kept when it stops

  Impl(Executor& o, Runtime& r, const ExecutorOptions& opts) : owner(o), rt(r), options(opts) {}

  // Every submitted task ends here exactly once: the quiescence count and the stats.
  void ended() noexcept {
    completed.fetch_add(1, std::memory_order_acq_rel);
    msgr->end_work();
  }

  // The table of tasks sent to other ranks (mu held); the engine naps short while it is
  // not empty: replies are expected.
  // The failure detector watches every rank that runs a task for us.
  void track(std::unique_ptr<Envelope> env) {
    const auto id = env->id;
    const int target = env->target;
    remote.emplace(id, std::move(env));
    msgr->engine().expect(1);
    msgr->watch(target, +1);
  }
  std::unique_ptr<Envelope> untrack(std::unordered_map<std::uint64_t, std::unique_ptr<Envelope>>::iterator it) {
    auto env = std::move(it->second);
    remote.erase(it);
    msgr->engine().expect(-1);
    msgr->watch(env->target, -1);
    return env;
  }

  // --- dispatch (call with mu held) ------------------------------------------------
  // The rank with the most free credits (the least loaded relative to its prefetch
  // window); ties go to this rank for tasks submitted by tasks (locality), else round robin.
  // O(log P): detail::CreditTable.
  int pick(bool nested) { return credits.pick(nested, rank); }

  void dispatch(std::unique_ptr<Envelope> env, int target, ExecutorCore* self) {
    if (env->attempts == 0 && !env->start()) {  // cancelled while queued (a retry runs already)
      ended();
      return;
    }
    credits.add(target, -1);
    env->target = target;
    if (target == rank) {
      {
        std::lock_guard lock(local_mu);
        local.push_back(std::move(env));
      }
      pool->submit([self] { self->impl_->run_oldest_local(self); });
      return;
    }
    try {
      if (env->may_hold_blocks()) {
        send_task_blocks(target, *env);
      } else {
        // The call is encoded straight into the batch for the target: no copy on the way.
        msgr->send(target, Kind::kTask, [&](wire::Writer& w) {
          wire::save(w, TaskRecord{env->id});
          env->encode(w);
        });
      }
    } catch (...) {
      credits.add(target, +1);
      env->fail(std::current_exception());
      ended();
      return;
    }
    sent_remote.fetch_add(1, std::memory_order_relaxed);
    track(std::move(env));
  }

  // Large payloads (docs/wire.md): a call whose arguments hold blocks sends them as bulk
  // messages straight from the arguments (kept alive with the sends), the rest as a record.
  void send_task_blocks(int target, Envelope& env) {
    wire::Writer call;
    call.enable_blocks();
    env.encode(call);
    auto encode = [&](wire::Writer& w) {
      wire::save(w, TaskRecord{env.id});
      w.write_bytes(call.buffer().data(), call.size());
    };
    if (call.blocks().empty()) {
      msgr->send(target, Kind::kTask, encode);
    } else {
      msgr->send_blocks(target, Kind::kTask, call.blocks(), keep_of(call), encode);
    }
  }
  static std::shared_ptr<const void> keep_of(wire::Writer& w) {
    return std::make_shared<const std::vector<std::shared_ptr<const void>>>(w.take_keep());
  }

  // A result with blocks: the value was kept alive by the writer (wire::save_kept).
  void reply_blocks(int dest, const ResultRecord& head, wire::Writer& body) {
    try {
      msgr->send_blocks(dest, Kind::kResult, body.blocks(), keep_of(body), [&](wire::Writer& w) {
        wire::save(w, head);
        w.write_bytes(body.buffer().data(), body.size());
      });
    } catch (...) {  // stopping: nobody is left to tell
    }
    msgr->end_work();
  }

  // A result whose blocks are on their way: decoded now, the blocks are received straight
  // into the value, the future completes when they arrived.
  std::function<void(bool)> on_result_blocks(int src, wire::Reader& in, ExecutorCore* self) {
    ResultRecord head;
    wire::load(in, head);
    if (head.outcome != static_cast<std::uint8_t>(Outcome::kOk)) {
      throw wire::DecodeError("a result with blocks must be a value, got outcome " + std::to_string(head.outcome));
    }
    std::unique_ptr<Envelope> env;
    {
      std::lock_guard lock(mu);
      auto it = remote.find(head.id);
      if (it == remote.end()) return {};  // failed already (its rank was declared broken)
      env = untrack(it);
    }
    try {
      env->begin_blocks(in);
    } catch (...) {
      env->fail(std::current_exception());
      on_done(src, self);
      throw;  // the messenger's error policy: the owner breaks, the blocks are drained
    }
    std::shared_ptr<Envelope> e(std::move(env));
    return [this, e, src, self, blocks = in.blocks()](bool ok) {
      e->finish_blocks(blocks, ok);
      on_done(src, self);
    };
  }

  void run_oldest_local(ExecutorCore* self) {
    std::unique_ptr<Envelope> e;
    {
      std::lock_guard lock(local_mu);
      e = std::move(local.front());
      local.pop_front();
    }
    trace::Span span("local task", "executor");  // TROUPE_TRACE: a task the root kept
    if (wire_local) {
      run_wired(*e);
    } else {
      e->run_local();
    }
    ran_here.fetch_add(1, std::memory_order_relaxed);
    on_done(rank, self);
  }

  // The TROUPE_WIRE_LOCAL path: the task goes through every step a remote one does.
  void run_wired(Envelope& e) noexcept {
    try {
      wire::Writer call;
      e.encode(call);
      wire::Writer out;
      if (run_encoded(call.buffer(), out, rank, rt.host(), size) == Outcome::kOk) {
        e.complete_remote(out.buffer());
      } else {
        wire::Reader r(out.buffer());
        e.fail(wire::decode_exception(r));
      }
    } catch (...) {  // the call could not be encoded: as dispatch() to another rank
      e.fail(std::current_exception());
    }
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
    credits.add(from, +1);
    ended();
    pump(self);
  }

  // --- server side -----------------------------------------------------------------
  void on_task(int src, wire::Reader& in, ExecutorCore* self) {
    TaskRecord head;
    wire::load(in, head);
    auto view = in.read_view(in.remaining());
    std::vector<std::byte> call(view.begin(), view.end());
    const std::uint32_t epoch = cancel_epoch[static_cast<std::size_t>(src)].load(std::memory_order_acquire);
    msgr->begin_work();  // ends once the reply is on its way
    pool->submit([self, src, id = head.id, epoch, call = std::move(call), blocks = in.blocks()] {
      auto& im = *self->impl_;
      if (im.cancel_epoch[static_cast<std::size_t>(src)].load(std::memory_order_acquire) != epoch) {
        // Its sender cancelled it while it was queued here.
        im.cancelled_remote.fetch_add(1, std::memory_order_relaxed);
        im.reply(src, ResultRecord{id, static_cast<std::uint8_t>(Outcome::kCancelled)}, {});
        return;
      }
      trace::Span span("remote task", "executor");  // TROUPE_TRACE: who sent it, its size
      span.arg("from", src), span.arg("id", static_cast<std::int64_t>(id)), span.arg("bytes", std::ssize(call));
      wire::Writer out;
      out.enable_blocks();  // a large result is sent from where it is (docs/wire.md)
      const Outcome outcome = run_encoded(call, out, im.rank, im.rt.host(), im.size, blocks);
      im.served_remote.fetch_add(1, std::memory_order_relaxed);
      if (!out.blocks().empty()) {
        im.reply_blocks(src, ResultRecord{id, static_cast<std::uint8_t>(outcome)}, out);
        return;
      }
      im.reply(src, ResultRecord{id, static_cast<std::uint8_t>(outcome)}, out.buffer());
    });
  }

  void reply(int dest, const ResultRecord& head, const std::vector<std::byte>& body) {
    try {
      msgr->send(dest, Kind::kResult, [&](wire::Writer& w) {
        wire::save(w, head);
        w.write_bytes(body.data(), body.size());
      });
    } catch (...) {  // stopping: nobody is left to tell
    }
    msgr->end_work();
  }

  // The sender cancels what it sent here that has not started: each such task ends with a
  // "cancelled" result when it comes up, so the sender's accounting and credits stay exact.
  void on_cancel_queued(int src) {
    cancel_epoch[static_cast<std::size_t>(src)].fetch_add(1, std::memory_order_acq_rel);
  }

  void on_result(int src, wire::Reader& in, ExecutorCore* self) {
    ResultRecord head;
    wire::load(in, head);
    const auto body = in.read_view(in.remaining());
    if (head.outcome > static_cast<std::uint8_t>(Outcome::kCancelled)) {
      throw wire::DecodeError("result outcome " + std::to_string(head.outcome) + " is not 0, 1 or 2");
    }
    std::unique_ptr<Envelope> env;
    {
      std::lock_guard lock(mu);
      auto it = remote.find(head.id);
      if (it == remote.end()) return;  // failed already (its rank was declared broken)
      env = untrack(it);
    }
    switch (static_cast<Outcome>(head.outcome)) {
      case Outcome::kOk:
        env->complete_remote(body);
        break;
      case Outcome::kCancelled:
        env->fail(std::make_exception_ptr(
            CancelledError("Executor: cancelled on rank " + std::to_string(src) + " before it started")));
        break;
      case Outcome::kFailed:
        try {
          wire::Reader r(body);
          env->fail(wire::decode_exception(r));
        } catch (...) {
          env->fail(std::current_exception());
        }
        break;
    }
    on_done(src, self);
  }
};

ExecutorCore::ExecutorCore(Executor& owner, Runtime& rt, const ExecutorOptions& options)
    : impl_(std::make_unique<Impl>(owner, rt, options)) {
  auto& im = *impl_;
  if (options.credits_per_thread && *options.credits_per_thread == 0) {
    throw ValueError("Executor: credits_per_thread must be >= 1, got 0");
  }
  const MPI_Comm base = options.comm.value_or(rt.comm());
  if (base == MPI_COMM_NULL)
    throw ValueError("Executor: options.comm is MPI_COMM_NULL (is this rank outside the split?)");
  int base_size = 0;
  TROUPE_MPI_CHECK(MPI_Comm_size(base, &base_size));
  if (options.root < 0 || options.root >= base_size) {
    throw ValueError("Executor: root must be a rank in [0, " + std::to_string(base_size) + "), got " +
                     std::to_string(options.root));
  }
  try {
    wire::finalize_callable_table();
    // Private communicator: executor traffic never meets the program's or another layer's.
    // Made within the start-up timeout, naming the ranks that did not come.
    const auto startup = options.startup_timeout.value_or(settings().startup_timeout);
    if (startup.count() <= 0) {
      throw ValueError("Executor: startup_timeout must be > 0 ms, got " + std::to_string(startup.count()));
    }
    im.startup = Deadline::after(startup, "Executor");
    im.comm = collective_dup(base, rt.comm(), im.startup, "Executor");
    PoolOptions po;
    po.threads = options.threads != 0 ? options.threads : rt.threads();
    po.initializer = [this, user = options.initializer] {
      tls_core = this;
      if (user) user();
    };
    im.pool = std::make_unique<ThreadPool>(po);
    messaging::MessengerOptions mo = options.messaging;
    // A progress thread makes MPI calls beside the program's own threads: that needs
    // MPI_THREAD_MULTIPLE, or SERIALIZED with every MPI call of the process under one token
    // (MpiMode::Serialized). Otherwise the thread that builds the executor drives MPI itself
    // while it waits (MpiMode::Funneled), whatever the option says.
    mo.engine.progress_thread = options.progress_thread && rt.progress_threads();
    im.options.progress_thread = mo.engine.progress_thread;
    // Failure detection needs the peers' progress while they are silent: on by default only
    // with a progress thread.
    const auto ft = options.failure_timeout.value_or(mo.engine.progress_thread ? settings().failure_timeout
                                                                               : std::chrono::milliseconds(0));
    if (ft.count() < 0) {
      throw ValueError("Executor: failure_timeout must be >= 0 ms (0: off), got " + std::to_string(ft.count()));
    }
    mo.failure_timeout = ft;
    im.wire_local = options.wire_local.value_or(settings().wire_local);
    im.msgr = std::make_unique<messaging::Messenger>(im.comm, mo);
    im.rank = im.msgr->rank();
    im.size = im.msgr->size();
    im.cancel_epoch = std::make_unique<std::atomic<std::uint32_t>[]>(static_cast<std::size_t>(im.size));
    im.credits = CreditTable(im.size);  // no credits until the census in start()
    im.msgr->on(Kind::kTask, [this](int src, wire::Reader& in) { impl_->on_task(src, in, this); });
    im.msgr->on(Kind::kResult, [this](int src, wire::Reader& in) { impl_->on_result(src, in, this); });
    im.msgr->on_blocks(Kind::kResult,
                       [this](int src, wire::Reader& in) { return impl_->on_result_blocks(src, in, this); });
    im.msgr->on(Kind::kCancelQueued, [this](int src, wire::Reader&) { impl_->on_cancel_queued(src); });
    im.msgr->on_broken([this](int r, const std::string& cause) { break_rank(r, cause); });
    im.msgr->on_lost([this](int r, const std::string& cause) { lose_rank(r, cause); });
    im.lost_rank.assign(static_cast<std::size_t>(im.size), false);
    std::lock_guard lock(g_live_mu);
    g_live.push_back(this);
  } catch (...) {
    impl_->msgr.reset();
    impl_->pool.reset();
    if (impl_->comm != MPI_COMM_NULL) TROUPE_MPI_UNCHECKED(MPI_Comm_free(&impl_->comm));
    throw;
  }
}

void ExecutorCore::start() {
  auto& im = *impl_;
  try {
    im.msgr->start();
    // Same callable table everywhere, or a clear error; and every rank's thread count, in
    // rank order (one tree allreduce).
    // The census is {min digest, max digest, then per rank in rank order: its threads and
    // whether its cores are shared}.
    const std::uint64_t digest = wire::callable_table_digest();
    const auto all = im.msgr->allreduce_value(
        std::vector<std::uint64_t>{digest, digest, im.pool->size(), im.rt.shared_cores() ? 1U : 0U},
        [](std::vector<std::uint64_t> a, const std::vector<std::uint64_t>& b) {
          a[0] = std::min(a[0], b[0]);
          a[1] = std::max(a[1], b[1]);
          a.insert(a.end(), b.begin() + 2, b.end());
          return a;
        },
        im.startup);
    if (all[0] != all[1]) {
      throw Error("Executor: the ranks' tables of remote callables differ (digests " + std::to_string(all[0]) + " .. " +
                  std::to_string(all[1]) + "); every rank must run the same executable");
    }
    // Nested tasks that arrived before the census ran here over the (zero) limit; their
    // credits come back on top of these.
    std::lock_guard lock(im.mu);
    for (int r = 0; r < im.size; ++r) {
      const auto ri = static_cast<std::size_t>(r);
      const std::uint64_t threads = all[2 * ri + 2];
      // A rank whose cores are shared answers when the scheduler runs it (milliseconds on a
      // loaded node) while this rank's own credits come back at once: with the usual window
      // it would get almost nothing. Its window covers that latency (kSharedCreditFactor).
      // A window the program gave holds for every rank.
      const std::uint64_t per_thread = im.options.credits_per_thread.value_or(
          all[2 * ri + 3] != 0 ? kCreditsPerThread * kSharedCreditFactor : kCreditsPerThread);
      im.total_threads += static_cast<std::size_t>(threads);
      im.credits.add(r, static_cast<long long>(threads * per_thread));
    }
  } catch (...) {
    {
      std::lock_guard lock(g_live_mu);
      std::erase(g_live, this);
    }
    impl_->msgr.reset();
    impl_->pool.reset();
    if (impl_->comm != MPI_COMM_NULL) TROUPE_MPI_UNCHECKED(MPI_Comm_free(&impl_->comm));
    throw;
  }
}

ExecutorCore::~ExecutorCore() {
  auto& im = *impl_;
  im.msgr.reset();  // joins the progress thread
  im.pool.reset();
  if (im.comm != MPI_COMM_NULL) TROUPE_MPI_UNCHECKED(MPI_Comm_free(&im.comm));
  std::lock_guard lock(g_live_mu);
  std::erase(g_live, this);
}

int ExecutorCore::rank() const noexcept { return impl_->rank; }
int ExecutorCore::size() const noexcept { return impl_->size; }
std::size_t ExecutorCore::total_workers() const noexcept { return impl_->total_threads; }
ThreadPool& ExecutorCore::pool() noexcept { return *impl_->pool; }
Executor& ExecutorCore::owner() noexcept { return impl_->owner; }
bool ExecutorCore::closed() const noexcept { return impl_->closed.load(std::memory_order_acquire); }
bool ExecutorCore::in_worker() const noexcept { return impl_->pool && impl_->pool->in_worker(); }

messaging::MessengerStats ExecutorCore::messenger_stats() const noexcept {
  return impl_->msgr ? impl_->msgr->stats() : impl_->stats_at_stop;
}

messaging::Messenger& ExecutorCore::messenger() {
  if (!impl_->msgr) throw InvalidStateError("Executor: the executor is shut down");
  return *impl_->msgr;
}

void ExecutorCore::submit(std::unique_ptr<Envelope> env, const char* api, int pin) {
  auto& im = *impl_;
  if (pin >= im.size || pin < -1) {
    throw ValueError(std::string(api) + ": rank must be in [0, " + std::to_string(im.size) + "), got " +
                     std::to_string(pin));
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
  if (pin >= 0 && im.credits.broken(pin)) {
    throw BrokenExecutor(std::string(api) + ": rank " + std::to_string(pin) +
                         (im.lost_rank[static_cast<std::size_t>(pin)] ? " was lost" : " cannot be reached"));
  }
  im.submitted.fetch_add(1, std::memory_order_acq_rel);
  im.msgr->begin_work();  // ends in Impl::ended(), whatever way the task ends
  if (pin >= 0) {         // placed by the caller: over the credit limit if need be
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
  std::string reason;
  {
    std::lock_guard lock(im.mu);
    if (r < 0 || r >= im.size) throw ValueError("Executor: no rank " + std::to_string(r));
    im.credits.set_broken(r);
    if (!im.broken) im.broken_reason = "rank " + std::to_string(r) + " cannot be used (" + why + ")";
    im.broken = true;
    reason = "Executor: rank " + std::to_string(r) + " cannot be used (" + why + ")";
    for (auto it = im.remote.begin(); it != im.remote.end();) {
      if (it->second->target == r) {
        auto next = std::next(it);
        failed.push_back(im.untrack(it));
        it = next;
      } else {
        ++it;
      }
    }
    for (auto& e : im.ready) failed.push_back(std::move(e));
    im.ready.clear();
  }
  for (auto& e : failed) {
    e->start();
    e->fail(std::make_exception_ptr(BrokenExecutor(reason)));
    im.ended();
  }
}

void ExecutorCore::lose_rank(int r, const std::string& why) {
  auto& im = *impl_;
  std::vector<std::unique_ptr<Envelope>> failed;
  const std::string reason = "Executor: rank " + std::to_string(r) + " was lost (" + why + ")";
  {
    std::lock_guard lock(im.mu);
    if (r < 0 || r >= im.size || r == im.rank || im.lost_rank[static_cast<std::size_t>(r)]) return;
    im.lost_rank[static_cast<std::size_t>(r)] = true;
    im.credits.set_broken(r);  // pick() skips it from now on
    im.credits.set(r, 0);
    im.lost_ranks.fetch_add(1, std::memory_order_relaxed);
    std::vector<std::unique_ptr<Envelope>> again;
    for (auto it = im.remote.begin(); it != im.remote.end();) {
      auto next = std::next(it);
      if (it->second->target == r) {
        auto env = im.untrack(it);
        (env->attempts < im.options.retries ? again : failed).push_back(std::move(env));
      }
      it = next;
    }
    // Sent again ahead of the queue, oldest first: a map's early chunks stay early.
    std::sort(again.begin(), again.end(), [](const auto& a, const auto& b) { return a->id > b->id; });
    for (auto& e : again) {
      ++e->attempts;
      e->target = -1;
      im.retried.fetch_add(1, std::memory_order_relaxed);
      im.ready.push_front(std::move(e));
    }
    im.pump(this);
  }
  for (auto& e : failed) {
    e->fail(std::make_exception_ptr(BrokenExecutor(reason)));
    im.ended();
  }
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
      im.ended();
    }
    // Reach the tasks already sent that no rank has started yet.
    if (im.msgr) {
      for (int r = 0; r < im.size; ++r) {
        if (r != im.rank) im.msgr->send(r, Kind::kCancelQueued, [](wire::Writer&) {});
      }
    }
  }
  if (!wait || im.finished) return;
  // Termination: every task submitted anywhere has ended and every record was handled.
  im.msgr->quiesce(Deadline::after(im.options.shutdown_timeout, "Executor::shutdown"));
  im.finished = true;
  im.stats_at_stop = im.msgr->stats();
  im.msgr.reset();
  im.pool->shutdown(true);
}

ExecutorStats ExecutorCore::stats() const noexcept {
  auto& im = *impl_;
  return ExecutorStats{im.submitted.load(),
                       im.completed.load(),
                       im.ran_here.load(),
                       im.sent_remote.load(),
                       im.served_remote.load(),
                       im.cancelled_remote.load(),
                       im.msgr ? im.msgr->stats().bad_records : im.stats_at_stop.bad_records,
                       im.retried.load(),
                       im.lost_ranks.load()};
}

std::exception_ptr as_sent(std::exception_ptr e) noexcept {
  if (!e) return e;
  try {
    std::rethrow_exception(e);
  } catch (...) {
    const auto record = encode_current_exception();
    if (record.empty()) return e;
    try {
      wire::Reader in(record);
      return wire::decode_exception(in);
    } catch (...) {
      return e;
    }
  }
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

Executor::Executor(Runtime& rt, ExecutorOptions options)
    : core_(std::make_unique<detail::ExecutorCore>(*this, rt, options)), root_(options.root) {
  // Serving starts only now that core_ is set: a task arriving at once may use this_executor().
  core_->start();
}

Executor::~Executor() {
  try {
    core_->shutdown(true, false);
  } catch (const std::exception& e) {  // a destructor must not throw: say it at least
    log(std::string("Executor: shutdown in the destructor failed: ") + e.what());
  }
}

Executor& this_executor() {
  detail::ExecutorCore* core = detail::current_executor_core();
  if (!core) {
    throw InvalidStateError(
        "this_executor: no Executor of this thread (call it from a task, or keep a reference when a process has "
        "several executors)");
  }
  return core->owner();
}

}  // namespace troupe
