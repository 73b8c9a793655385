#pragma once
/// @file
/// @brief troupe::Executor — submit, map and map_reduce over all ranks × threads
/// (mpi4py.futures MPICommExecutor / MPIPoolExecutor, SCOOP, multiprocessing.Pool).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <mpi.h>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/executor/detail/core.hpp"
#include "troupe/executor/stats.hpp"
#include "troupe/messaging/messenger.hpp"
#include "troupe/executor/stream_map.hpp"
#include "troupe/future/future.hpp"
#include "troupe/future/wait.hpp"
#include "troupe/pool/map_result.hpp"
#include "troupe/pool/thread_pool.hpp"
#include "troupe/wire/callable.hpp"
#include "troupe/wire/exception.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe {

class Runtime;

/// @brief How an Executor is built (the same on every rank).
struct ExecutorOptions {
  /// Worker threads of this rank's pool; 0: the Runtime's threads per rank.
  std::size_t threads = 0;
  /// The rank that runs the program's logic in the root-driven style (is_root()).
  int root = 0;
  /// Run on (a private duplicate of) this communicator instead of the Runtime's: a part of
  /// the ranks, e.g. from MPI_Comm_split; several executors may live in one process at once.
  /// Ranks and sizes are then those of this communicator. Collective over it.
  std::optional<MPI_Comm> comm = std::nullopt;
  /// Tasks kept in flight per worker thread of a rank (prefetch): enough to hide the
  /// network round trip, few enough that undispatched tasks stay cancellable and the
  /// load stays balanced (a map's chunks are handed out as workers free up). nullopt: 4,
  /// and 4 x 256 = 1024 for a rank whose cores are shared with other ranks
  /// (Runtime::shared_cores()), whose answers wait for the scheduler (docs/executor.md,
  /// "Scheduling"). A given value holds for every rank. 0 is a ValueError.
  std::optional<std::size_t> credits_per_thread = std::nullopt;
  /// Run once by every worker thread of every rank before it runs tasks (Pool's initializer).
  std::function<void()> initializer = {};
  /// Drive MPI from a progress thread (taken only at MPI_THREAD_MULTIPLE; below it the
  /// thread that built the executor drives MPI while it waits). This decides, whatever
  /// messaging.engine.progress_thread says.
  bool progress_thread = true;
  /// The messaging layer and engine under the executor: batch size, idle back-off and linger
  /// of the progress thread (defaults from troupe::settings(), the TROUPE_ENGINE_* knobs).
  messaging::MessengerOptions messaging = {};
  /// Debug switch: send every task through the wire format even when it runs on this rank
  /// (encode the call, decode and run it, encode the result, decode it), so that what only
  /// fails on another rank (an unregistered callable, a type the wire cannot carry) fails at
  /// one rank too. Costs the serialization of every local task. Default: TROUPE_WIRE_LOCAL.
  std::optional<bool> wire_local = std::nullopt;
  /// Failure detection: a rank this one waits on (a task it runs for us, a collective) that
  /// stays silent this long is declared lost (its progress answers pings meanwhile). Its
  /// tasks are sent again (retries) or fail with BrokenExecutor naming it; later submits
  /// avoid it; shutdown completes without it. 0 turns detection off. Default:
  /// TROUPE_FAILURE_TIMEOUT_MS with a progress thread, off without one (a rank whose
  /// only MPI driver is its busy main thread cannot answer). See docs/executor.md.
  std::optional<std::chrono::milliseconds> failure_timeout = std::nullopt;
  /// How many times a task is sent again when the rank running it is lost (Celery's and
  /// Dask's retries). 0: it fails with BrokenExecutor. A retried task may run twice (the
  /// lost rank may have run it): make tasks that may be retried idempotent.
  std::size_t retries = 0;
  /// Start-up timeout of the collective construction and of the collectives at start:
  /// ranks that have not arrived by then are named in the error. Default:
  /// TROUPE_STARTUP_TIMEOUT_MS.
  std::optional<std::chrono::milliseconds> startup_timeout = std::nullopt;
  /// Bound of shutdown(wait=true)'s collective wait (quiescence); on expiry it raises
  /// TimeoutError naming the rank it still waited for. Default: none, since in the
  /// root-driven style the serving ranks wait in shutdown for as long as the root's program
  /// runs; a rank that died is found by failure detection instead (failure_timeout).
  std::optional<std::chrono::milliseconds> shutdown_timeout = std::nullopt;
};

/// @brief Deprecated: the Executor's maps take troupe::MapOptions, as ThreadPool's do.
using ExecutorMapOptions [[deprecated("use troupe::MapOptions")]] = MapOptions;

/// @brief Options of Executor::map_reduce.
template <class R>
struct MapReduceOptions {
  /// Initial value: reduce(initial, ...); required for an empty input.
  std::optional<R> initial = std::nullopt;
  /// Elements per task; nullopt: as MapOptions::chunksize. 0 is a ValueError.
  std::optional<std::size_t> chunksize = std::nullopt;
  /// A progress bar on the root's stderr as chunks complete; nullopt: `TROUPE_PROGRESS`
  /// (as MapOptions::progress, docs/tracing.md).
  std::optional<Progress> progress = std::nullopt;
};

namespace detail {

struct ExecutorTesting;  // test access (troupe/executor/detail/testing.hpp)

template <class R>
using exec_value_t = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

/// @p e as the submitter would get it had the task run on another rank: encoded and
/// rebuilt by the wire's exception rule (a std::, troupe or registered type arrives as
/// itself, anything else as RemoteError). The one exception rule of the executor, whatever
/// rank ran the task (docs/executor.md, "Errors").
[[nodiscard]] std::exception_ptr as_sent(std::exception_ptr e) noexcept;

template <class R>
inline constexpr bool is_chunk_result_v = false;
template <class R>
inline constexpr bool is_chunk_result_v<ChunkResult<R>> = true;

/// The future side of one submitted call.
template <class R, class F, class... Args>
class CallEnvelope final : public Envelope {
 public:
  CallEnvelope(F fn, std::tuple<Args...> args) : fn_(std::move(fn)), args_(std::move(args)) {}
  Future<R> future() const { return promise_.get_future(); }
  bool start() noexcept override { return promise_.set_running_or_notify_cancel(); }
  void encode(wire::Writer& out) override {
    if constexpr (!std::is_move_constructible_v<std::tuple<Args...>>) {
      const bool on = out.blocks_enabled();  // the arguments cannot move to the heap: copied
      out.enable_blocks(false);
      std::apply([&](const auto&... a) { wire::encode_call(out, fn_, a...); }, args_);
      out.enable_blocks(on);
      return;
    }
    const wire::Writer::Mark at = out.mark();
    std::apply([&](const auto&... a) { wire::encode_call(out, fn_, a...); }, args());
    if (out.blocks_enabled() && out.blocks().size() != at.blocks) {
      // Parts of the arguments travel from where they are: the arguments move to the heap
      // (once), encoded again from there, and live as long as the sends need them.
      if (!held_) {
        if constexpr (std::is_move_constructible_v<std::tuple<Args...>>) {
          held_ = std::make_shared<std::tuple<Args...>>(std::move(args_));
        }
        out.rewind(at);
        std::apply([&](const auto&... a) { wire::encode_call(out, fn_, a...); }, *held_);
      }
      out.keep(held_);
    }
  }
  bool may_hold_blocks() const noexcept override {
    return std::apply([](const auto&... a) { return (wire::detail::may_hold_blocks(a) || ...); }, args_);
  }
  void begin_blocks(wire::Reader& result) override {
    if constexpr (std::is_void_v<R>) {
      Envelope::begin_blocks(result);
    } else {
      deferred_ = std::make_unique<wire::DeferredValue<R>>();
      deferred_->begin(result);
    }
  }
  void finish_blocks(const std::shared_ptr<wire::BlockSet>& blocks, bool ok) noexcept override {
    if constexpr (!std::is_void_v<R>) {
      // The envelope lets go of the future's state as soon as the value is in: a waiter
      // that finds its future the state's only holder takes the value without a copy.
      Promise<R> promise = std::move(promise_);
      try {
        if (!ok) throw Error("Executor: the result's large parts could not be received");
        promise.set_result(deferred_->finish(blocks));
      } catch (...) {
        try {
          promise.set_exception(std::current_exception());
        } catch (...) {  // already done (cancelled): nothing to report to
        }
      }
      deferred_.reset();
    } else {
      (void)blocks;
      (void)ok;
    }
  }
  void run_local() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        std::apply([&](auto&... a) { std::invoke(fn_, std::move(a)...); }, args());
        promise_.set_result();
      } else {
        R value = std::apply([&](auto&... a) -> R { return std::invoke(fn_, std::move(a)...); }, args());
        if constexpr (is_chunk_result_v<R>) {  // a map chunk's error: as if it had travelled
          if (value.failed) value.error = as_sent(value.error);
        }
        promise_.set_result(std::move(value));
      }
    } catch (...) {
      fail(as_sent(std::current_exception()));  // one rule wherever the task ran
    }
  }
  void complete_remote(std::span<const std::byte> bytes) noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        promise_.set_result();
      } else {
        promise_.set_result(wire::deserialize<R>(bytes));
      }
    } catch (...) {
      fail(std::current_exception());
    }
  }
  void fail(std::exception_ptr e) noexcept override {
    try {
      promise_.set_exception(std::move(e));
    } catch (...) {  // already done (cancelled): nothing to report to
    }
  }
  void cancel() noexcept override { promise_.get_future().cancel(); }

 private:
  std::tuple<Args...>& args() noexcept { return held_ ? *held_ : args_; }

  F fn_;
  std::tuple<Args...> args_;
  std::shared_ptr<std::tuple<Args...>> held_;                       // the arguments once their blocks were sent
  std::unique_ptr<wire::DeferredValue<exec_value_t<R>>> deferred_;  // a result whose blocks are coming
  Promise<R> promise_;
};

[[nodiscard]] std::vector<std::byte> encode_current_exception() noexcept;

/// Maps a chunk and scans it (inclusive prefix reduction, left to right) where it runs.
template <class F, class Red, class Elem>
struct ChunkScanner {
  F fn;
  Red red;
  using R = std::remove_cvref_t<std::invoke_result_t<F&, Elem&>>;
  std::vector<R> operator()(std::vector<Elem> items) const {
    F f = fn;
    Red r = red;
    std::vector<R> out;
    out.reserve(items.size());
    for (auto& x : items) {
      if (out.empty()) {
        out.push_back(f(x));
      } else {
        out.push_back(r(out.back(), f(x)));
      }
    }
    return out;
  }
};

/// Runs F over a chunk of elements on whichever rank gets it.
template <class F, class Elem>
struct ChunkRunner {
  F fn;
  auto operator()(std::vector<Elem> items) const {
    F f = fn;
    return run_chunk<exec_value_t<std::remove_cvref_t<std::invoke_result_t<F&, Elem&>>>>(f, items);
  }
};

/// The wire form of a map chunk's result: values, failed, and the exception as an
/// encode_exception record. A chunk that ran here is never encoded and keeps the original
/// exception object; one that arrives has no exception yet, and gets the rebuilt one.
template <class A, class R>
void troupe_fields(A& a, ChunkResult<R>& c) {
  std::vector<std::byte> record;
  if (c.failed && c.error) {  // saving
    try {
      std::rethrow_exception(c.error);
    } catch (...) {
      record = encode_current_exception();
    }
  }
  a(c.values, c.failed, record);
  if (c.failed && !c.error) {  // loaded
    wire::Reader in(record);
    c.error = record.empty()
                  ? std::make_exception_ptr(Error("map: an element threw, and its exception could not be sent back"))
                  : wire::decode_exception(in);
  }
}

/// Maps and reduces a chunk (left to right) on whichever rank gets it.
template <class F, class Red, class Elem>
struct ChunkReducer {
  F fn;
  Red red;
  using R = std::remove_cvref_t<std::invoke_result_t<F&, Elem&>>;
  std::optional<R> operator()(std::vector<Elem> items) const {
    F f = fn;
    Red r = red;
    std::optional<R> acc;
    for (auto& x : items) {
      if (acc) {
        acc = r(std::move(*acc), f(x));
      } else {
        acc.emplace(f(x));
      }
    }
    return acc;
  }
};

}  // namespace detail

/// @brief Futures over every rank × every thread: the distributed executor.
///
/// Built collectively (every rank constructs one, with the same options). Two styles:
/// - **root-driven** (MPICommExecutor, SCOOP): `if (ex.is_root()) { ...submit, map... }`,
///   then every rank calls `ex.shutdown()` (or lets the destructor do it); the other ranks
///   serve tasks meanwhile;
/// - **SPMD**: every rank submits what it likes, and collective calls
///   (map_reduce_all) are made by all ranks.
///
/// Any rank may submit, and tasks may submit tasks (`troupe::this_executor()`).
/// Tasks go to the rank with free credits (a bounded prefetch window per worker thread),
/// this rank first for tasks submitted from inside a task; results stream back as they
/// complete. What may be sent: see troupe/wire/callable.hpp (functions as
/// `troupe::remote<&f>` or registered pointers, lambdas with trivially copyable captures,
/// serializable functors) with wire-Serializable arguments and results.
///
/// Thread safety: every member may be called from any thread, except shutdown(wait=true)
/// and the collective calls, which each rank's main thread calls in the same order.
class Executor {
 public:
  /// @brief Collective: builds the executor of @p rt's ranks.
  explicit Executor(Runtime& rt, ExecutorOptions options = {});
  /// @brief shutdown(wait=true) if not done yet (collective).
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  /// @brief This rank and the number of ranks.
  int rank() const noexcept { return core_->rank(); }
  int size() const noexcept { return core_->size(); }
  /// @brief True on the rank that runs the program in the root-driven style.
  bool is_root() const noexcept { return rank() == root_; }
  /// @brief Worker threads over all ranks (Python's max_workers).
  std::size_t workers() const noexcept { return core_->total_workers(); }
  /// @brief This rank's thread pool (for purely local work).
  ThreadPool& pool() noexcept { return core_->pool(); }

  /// @brief Schedules `fn(args...)` somewhere in the executor and returns its Future.
  /// @throws InvalidStateError after shutdown/close; BrokenExecutor once broken.
  template <class F, class... Args>
  [[nodiscard]] auto submit(F&& fn, Args&&... args) -> Future<wire::call_result_t<F, Args...>> {
    using R = wire::call_result_t<F, Args...>;
    using Env = detail::CallEnvelope<R, std::decay_t<F>, std::decay_t<Args>...>;
    auto env =
        std::make_unique<Env>(std::forward<F>(fn), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...));
    auto fut = env->future();
    core_->submit(std::move(env), "Executor::submit");
    return fut;
  }

  /// @brief As submit, on rank @p rank (UPC++ rpc / HPX async at a locality): placed there
  /// even when that rank's prefetch window is full.
  /// @throws ValueError for a rank outside [0, size()); what submit throws.
  template <class F, class... Args>
  [[nodiscard]] auto submit_to(int rank, F&& fn, Args&&... args) -> Future<wire::call_result_t<F, Args...>> {
    using R = wire::call_result_t<F, Args...>;
    using Env = detail::CallEnvelope<R, std::decay_t<F>, std::decay_t<Args>...>;
    if (rank < 0 || rank >= size()) {
      throw ValueError("Executor::submit_to: rank must be in [0, " + std::to_string(size()) + "), got " +
                       std::to_string(rank));
    }
    auto env =
        std::make_unique<Env>(std::forward<F>(fn), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...));
    auto fut = env->future();
    core_->submit(std::move(env), "Executor::submit_to", rank);
    return fut;
  }

  /// @brief A Future of an MPI request of the program's own (HPX's async_mpi): the engine
  /// tests it with the rest of its traffic and completes the future with the request's
  /// status. The buffers must stay valid until then; the request must not be waited on or
  /// freed by anyone else.
  /// @throws ValueError for MPI_REQUEST_NULL; InvalidStateError after shutdown.
  [[nodiscard]] Future<MPI_Status> async_mpi(MPI_Request request) {
    require_open("Executor::async_mpi");
    Promise<MPI_Status> p;
    auto f = p.get_future();
    core_->messenger().engine().watch(request, [p](const MPI_Status& st) mutable {
      try {
        p.set_result(st);
      } catch (...) {  // cancelled meanwhile: nothing waits for it
      }
    });
    return f;
  }

  /// @brief Pool.apply: submit and wait for the result.
  template <class F, class... Args>
  decltype(auto) apply(F&& fn, Args&&... args) {
    auto f = submit(std::forward<F>(fn), std::forward<Args>(args)...);
    if constexpr (std::is_void_v<wire::call_result_t<F, Args...>>) {
      f.result();
    } else {
      return wire::call_result_t<F, Args...>(f.result());
    }
  }

  /// @brief Pool.apply_async: @p callback(value) or @p error_callback(exception) runs when
  /// the task ends (in the thread that completes it). The arguments come as a tuple.
  template <class F, class... Args, class Callback = std::nullptr_t, class ErrorCallback = std::nullptr_t>
  [[nodiscard]] auto apply_async(F&& fn, std::tuple<Args...> args, Callback callback = nullptr,
                                 ErrorCallback error_callback = nullptr) {
    auto f = std::apply([&](auto&&... a) { return submit(std::forward<F>(fn), std::move(a)...); }, std::move(args));
    using R = typename decltype(f)::value_type;
    if constexpr (!std::is_same_v<Callback, std::nullptr_t> || !std::is_same_v<ErrorCallback, std::nullptr_t>) {
      f.add_done_callback([callback, error_callback](const Future<R>& done) mutable {
        // One of the two is nullptr and unused in this instantiation (clang's
        // -Wunused-lambda-capture).
        (void)callback;
        (void)error_callback;
        if (done.cancelled()) return;
        if (auto e = done.exception()) {
          if constexpr (!std::is_same_v<ErrorCallback, std::nullptr_t>) error_callback(e);
          return;
        }
        if constexpr (!std::is_same_v<Callback, std::nullptr_t>) {
          if constexpr (std::is_void_v<R>) {
            callback();
          } else {
            callback(done.result());
          }
        }
      });
    }
    return f;
  }

  /// @brief Applies @p fn to every element; results in input order (see MapResult).
  ///
  /// Elements are grouped in chunks (MapOptions::chunksize, else the rule of
  /// detail::Chunking), each chunk one task; with MapOptions::buffersize at most that many
  /// are in flight and the input is read as results are taken. An element's exception
  /// surfaces when that element is reached.
  /// @throws ValueError for chunksize or buffersize 0 or a negative timeout;
  /// InvalidStateError after shutdown.
  template <class F, std::ranges::input_range Range>
  auto map(F&& fn, Range&& range, MapOptions options = {}) {
    return map_impl(std::forward<F>(fn), std::forward<Range>(range), options, false, "Executor::map");
  }
  /// @brief As map, in completion order.
  template <class F, std::ranges::input_range Range>
  auto map_unordered(F&& fn, Range&& range, MapOptions options = {}) {
    return map_impl(std::forward<F>(fn), std::forward<Range>(range), options, true, "Executor::map_unordered");
  }
  /// @brief Pool.imap / imap_unordered (same as map / map_unordered here).
  template <class F, std::ranges::input_range Range>
  auto imap(F&& fn, Range&& range, MapOptions options = {}) {
    return map_impl(std::forward<F>(fn), std::forward<Range>(range), options, false, "Executor::imap");
  }
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F&& fn, Range&& range, MapOptions options = {}) {
    return map_impl(std::forward<F>(fn), std::forward<Range>(range), options, true, "Executor::imap_unordered");
  }
  /// @brief Pool.map_async: one future of the whole result vector (in input order).
  template <class F, std::ranges::input_range Range>
  auto map_async(F&& fn, Range&& range, MapOptions options = {}) {
    if (options.buffersize) throw ValueError("Executor::map_async: buffersize is not supported (all results are kept)");
    auto results = std::make_shared<decltype(map(std::forward<F>(fn), std::forward<Range>(range), options))>(
        map(std::forward<F>(fn), std::forward<Range>(range), options));
    auto chunks = results->chunk_futures();
    return when_all(std::move(chunks)).then([results](const auto&) { return results->to_vector(); });
  }
  /// @brief map over tuples of arguments: `fn(get<0>(e), get<1>(e), ...)`.
  template <class F, std::ranges::input_range Range>
  auto starmap(F&& fn, Range&& range, MapOptions options = {}) {
    return map_impl(Star<std::decay_t<F>>{std::forward<F>(fn)}, std::forward<Range>(range), options, false,
                    "Executor::starmap");
  }

  /// @brief SCOOP mapReduce: reduce(map(x) for x in range), computed over the executor.
  ///
  /// Each chunk maps and reduces its elements left to right where it runs; the partial
  /// results are combined as they arrive by a balanced tree of futures that keeps the
  /// input order, so @p reduce_fn only needs to be associative. Defined for 0 inputs
  /// (returns the initial value, or ValueError without one) and 1 input.
  /// @throws the first exception of @p map_fn / @p reduce_fn; ValueError for bad options.
  template <class F, class Red, std::ranges::input_range Range>
  auto map_reduce(F map_fn, Red reduce_fn, Range&& range,
                  MapReduceOptions<std::remove_cvref_t<std::invoke_result_t<F&, std::ranges::range_reference_t<Range>>>>
                      options = {}) {
    using Elem = std::ranges::range_value_t<Range>;
    using R = std::remove_cvref_t<std::invoke_result_t<F&, Elem&>>;
    const char* api = "Executor::map_reduce";
    require_open(api);
    auto chunks =
        split(std::forward<Range>(range), detail::Chunking::make({.chunksize = options.chunksize}, range, workers(),
                                                                 api, detail::Chunking::kAcrossRanks));
    if (chunks.empty()) {
      if (options.initial) return R(*options.initial);
      throw ValueError(std::string(api) + ": the input is empty and no initial value was given");
    }
    std::size_t items = 0;
    for (const auto& c : chunks) items += c.size();
    const auto bar = detail::ProgressBar::open(options.progress, api, items, true);
    std::vector<Future<std::optional<R>>> parts;
    parts.reserve(chunks.size());
    for (auto& c : chunks) {
      const std::size_t n = c.size();
      parts.push_back(submit(detail::ChunkReducer<F, Red, Elem>{map_fn, reduce_fn}, std::move(c)));
      if (bar) parts.back().add_done_callback([bar, n] { bar->add(n); });
    }
    Future<std::optional<R>> total = combine(parts, 0, parts.size(), reduce_fn);
    std::optional<R> v = total.result();
    if (bar) bar->finish();
    if (options.initial) return v ? R(reduce_fn(R(*options.initial), std::move(*v))) : R(*options.initial);
    return R(std::move(*v));
  }

  /// @brief Inclusive scan of the mapped values: element i of the result is
  /// reduce(map(x0), ..., map(xi)) (SCOOP's mapScan, which is wrong for n >= 3; this one is
  /// not). Chunks are mapped and scanned where they run; the submitting rank then adds each
  /// chunk's offset (the reduction of all earlier chunks) to its prefixes, in order, so
  /// only associativity is needed. An empty input gives an empty vector. The whole result
  /// is kept, so a buffersize is refused (ValueError), as by map_async.
  /// @throws the first exception of @p map_fn / @p reduce_fn; ValueError for chunksize 0 or
  /// any buffersize; TimeoutError after MapOptions::timeout.
  template <class F, class Red, std::ranges::input_range Range>
  auto map_scan(F map_fn, Red reduce_fn, Range&& range, MapOptions options = {}) {
    using Elem = std::ranges::range_value_t<Range>;
    using R = std::remove_cvref_t<std::invoke_result_t<F&, Elem&>>;
    const char* api = "Executor::map_scan";
    require_open(api);
    const auto chunking = detail::Chunking::make(options, range, workers(), api, detail::Chunking::kAcrossRanks);
    if (chunking.lazy()) throw ValueError(std::string(api) + ": buffersize is not supported (all results are kept)");
    const Deadline deadline = chunking.deadline;
    auto chunks = split(std::forward<Range>(range), chunking);
    std::vector<Future<std::vector<R>>> parts;
    parts.reserve(chunks.size());
    for (auto& c : chunks) parts.push_back(submit(detail::ChunkScanner<F, Red, Elem>{map_fn, reduce_fn}, std::move(c)));
    std::vector<R> out;
    std::optional<R> offset;
    for (auto& part : parts) {
      if (!part.state()->wait(deadline)) {
        for (auto& q : parts) q.cancel();
        throw TimeoutError(std::string(api) + ": timed out");
      }
      const auto& prefixes = part.result();
      for (const auto& v : prefixes) out.push_back(offset ? reduce_fn(*offset, v) : v);
      if (!prefixes.empty()) offset = out.back();
    }
    return out;
  }

  /// @brief Collective SPMD map_reduce: every rank maps and reduces its own @p local
  /// range on its pool; the per-rank results are combined in rank order by the messaging
  /// layer's tree allreduce (log2 P steps towards rank 0 and back).
  /// Every rank gets the same value. @p reduce_fn must be associative.
  /// @throws ValueError when every rank's range is empty and no initial value is given.
  template <class F, class Red, std::ranges::input_range Range>
  auto map_reduce_all(
      F map_fn, Red reduce_fn, Range&& local,
      std::optional<std::remove_cvref_t<std::invoke_result_t<F&, std::ranges::range_reference_t<Range>>>> initial =
          std::nullopt) {
    using R = std::remove_cvref_t<std::invoke_result_t<F&, std::ranges::range_reference_t<Range>>>;
    if (core_->closed()) throw InvalidStateError("Executor::map_reduce_all: cannot run after shutdown");
    std::vector<std::ranges::range_value_t<Range>> items(std::ranges::begin(local), std::ranges::end(local));
    // Empty sides (an empty range) drop out; the rest is reduce_fn in order.
    auto fold = [&](std::optional<R> a, std::optional<R> b) -> std::optional<R> {
      if (!a) return b;
      if (!b) return a;
      return reduce_fn(std::move(*a), std::move(*b));
    };
    std::optional<R> mine;
    if (!items.empty()) {
      mine = pool().parallel_reduce(std::size_t{0}, items.size(), std::optional<R>{}, fold,
                                    [&](std::size_t i) { return std::optional<R>(map_fn(items[i])); });
    }
    // One tree allreduce of the messaging layer: partial results combined in rank order
    // (associativity is enough), the total back to every rank, O(log P) messages per rank.
    mine = core_->messenger().allreduce_value(std::move(mine), fold);
    std::optional<R> acc = fold(std::move(initial), std::move(mine));
    if (!acc) throw ValueError("Executor::map_reduce_all: every rank's input is empty and no initial value was given");
    return std::move(*acc);
  }

  /// @brief Stops accepting outside work. With @p wait (collective), returns when every
  /// task submitted anywhere has ended and no message is in flight; @p cancel_futures
  /// cancels this rank's tasks not yet dispatched. Idempotent.
  void shutdown(bool wait = true, bool cancel_futures = false) { core_->shutdown(wait, cancel_futures); }
  /// @brief Pool.close: no more submits (this rank).
  void close() { core_->shutdown(false, false); }
  /// @brief Pool.join: waits for all work (collective; after close()).
  void join() { core_->shutdown(true, false); }
  /// @brief Pool.terminate: cancels this rank's undispatched tasks, then as join().
  /// Running tasks finish (threads cannot be killed safely).
  void terminate() { core_->shutdown(true, true); }

  /// @brief Counters of this rank.
  ExecutorStats stats() const noexcept { return core_->stats(); }

 private:
  template <class F>
  struct Star {
    F fn;
    template <class Tuple>
    auto operator()(const Tuple& t) const {
      return std::apply(fn, t);
    }
  };

  // The calls that schedule tasks refuse to after shutdown, naming the call the user made
  // (tasks of the executor's own workers may still submit: they are part of the work).
  void require_open(const char* api) const {
    if (core_->closed() && !core_->in_worker())
      throw InvalidStateError(std::string(api) + ": cannot schedule new tasks after shutdown");
  }

  template <class Range>
  static auto split(Range&& range, const detail::Chunking& chunking) {
    detail::LazySource<Range> src(std::forward<Range>(range), chunking);
    std::vector<std::vector<std::ranges::range_value_t<Range>>> chunks;
    for (auto c = src.take(); !c.empty(); c = src.take()) chunks.push_back(std::move(c));
    return chunks;
  }

  template <class R, class Red>
  Future<std::optional<R>> combine(std::vector<Future<std::optional<R>>>& parts, std::size_t lo, std::size_t hi,
                                   Red& red) {
    if (hi - lo == 1) return parts[lo];
    const std::size_t mid = lo + (hi - lo) / 2;
    auto left = combine(parts, lo, mid, red);
    auto right = combine(parts, mid, hi, red);
    return when_all(left, right).then([red](const auto& both) mutable -> std::optional<R> {
      auto [l, r] = both.result();
      std::optional<R> a = l.result(), b = r.result();  // rethrows a side's exception
      if (!a) return b;
      if (!b) return a;
      return red(std::move(*a), std::move(*b));
    });
  }

  template <class F, class Range>
  auto map_impl(F&& fn, Range&& range, const MapOptions& options, bool unordered, const char* api) {
    using Elem = std::ranges::range_value_t<Range>;
    using Fn = std::decay_t<F>;
    static_assert(std::is_invocable_v<Fn&, Elem&>,
                  "troupe::Executor::map: the function cannot be called with the range's element type");
    using R = detail::exec_value_t<std::remove_cvref_t<std::invoke_result_t<Fn&, Elem&>>>;
    const auto chunking = detail::Chunking::make(options, range, workers(), api, detail::Chunking::kAcrossRanks);
    require_open(api);
    // The input: kept by the stream (a view or the moved rvalue) and read chunk by chunk.
    auto src = std::make_shared<detail::LazySource<Range>>(std::forward<Range>(range), chunking);
    return MapResult<R>(
        [this, src, runner = detail::ChunkRunner<Fn, Elem>{Fn(std::forward<F>(fn))}]() {
          auto items = src->take();
          return items.empty() ? std::nullopt : std::optional(submit(runner, std::move(items)));
        },
        chunking, unordered, api);
  }

  friend struct detail::ExecutorTesting;
  std::unique_ptr<detail::ExecutorCore> core_;
  int root_ = 0;
};

/// @brief The Executor of this rank (for tasks that submit tasks).
/// @throws InvalidStateError when no Executor exists.
Executor& this_executor();

}  // namespace troupe
