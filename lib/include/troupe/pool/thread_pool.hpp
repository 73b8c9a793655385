#pragma once
/// @file
/// @brief troupe::ThreadPool: the per-rank work-stealing pool (ThreadPoolExecutor + TBB-style loops).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/future/detail/notifier.hpp"
#include "troupe/future/future.hpp"
#include "troupe/pool/detail/scheduler.hpp"
#include "troupe/pool/detail/task.hpp"
#include "troupe/pool/map_result.hpp"
#include "troupe/runtime/topology.hpp"

namespace troupe {

namespace detail {
struct PoolAccess;  // troupe/coro: posts a coroutine's resumption as a plain task
}  // namespace detail

/// @brief How a ThreadPool is built.
struct PoolOptions {
  /// Worker threads; 0 means troupe::default_thread_count() (the Runtime's threads per rank).
  std::size_t threads = 0;
  /// How long an idle worker spins before it sleeps in the kernel; nullopt: the
  /// environment variable TROUPE_SPIN_US, else 50 µs. 0 never spins (best when ranks
  /// share cores with other busy processes); longer spins wake faster under trickling load.
  std::optional<std::chrono::microseconds> spin = std::nullopt;
  /// Run once in each worker thread before it takes tasks (ThreadPoolExecutor's initializer).
  std::function<void()> initializer = {};
  /// Whether a thread outside the pool that waits, without deadline or token, on one of its
  /// futures runs the pool's tasks meanwhile (as a thread in TBB's task_group::wait does;
  /// docs/scheduling.md, "The caller helps"). nullopt: yes, unless an initializer is given
  /// (a helping thread has not run it). Say false when tasks must run on the pool's own
  /// threads, or when a waiter may hold a lock that a task of this pool takes.
  std::optional<bool> caller_helps = std::nullopt;
};

/// @brief Options of parallel_for.
struct ForOptions {
  /// Indices per chunk; nullopt picks about 8 chunks per worker. 0 is a ValueError; more
  /// than the range holds means one chunk (detail::Chunking::clamp_chunksize).
  std::optional<std::size_t> grain = std::nullopt;
  /// When stopped, chunks not yet started are skipped and the call throws CancelledError.
  CancellationToken token = {};
};

/// @brief Options of parallel_reduce.
struct ReduceOptions {
  /// Indices per chunk; nullopt picks about 8 chunks per worker. 0 is a ValueError; more
  /// than the range holds means one chunk (detail::Chunking::clamp_chunksize).
  std::optional<std::size_t> grain = std::nullopt;
  /// true: chunk results are combined in index order (only associativity is needed and the
  /// result is reproducible); false: combined as they finish (the operator must also commute).
  bool ordered = true;
  /// As in ForOptions.
  CancellationToken token = {};
};

/// @brief Per-worker counters.
struct PoolStats {
  std::vector<detail::WorkerStats> workers;
};

namespace detail {
template <class T>
using result_t = std::conditional_t<std::is_void_v<T>, void, std::remove_cvref_t<T>>;
template <class T>
using map_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, std::remove_cvref_t<T>>;

// Input of a map: the caller's random-access range when it is an lvalue (it must outlive
// the MapResult), otherwise a copy of the elements.
template <class Range>
auto make_map_source(Range&& range) {
  if constexpr (std::is_lvalue_reference_v<Range> && std::ranges::random_access_range<Range> &&
                std::ranges::sized_range<Range>) {
    struct Borrowed {
      std::remove_reference_t<Range>* r;
      std::size_t size() const { return static_cast<std::size_t>(std::ranges::size(*r)); }
      decltype(auto) operator[](std::size_t i) const {
        return std::ranges::begin(*r)[static_cast<std::ranges::range_difference_t<Range>>(i)];
      }
    };
    return std::make_shared<Borrowed>(Borrowed{&range});
  } else {
    using V = std::ranges::range_value_t<Range>;
    struct Owned {
      std::vector<V> v;
      std::size_t size() const { return v.size(); }
      const V& operator[](std::size_t i) const { return v[i]; }
    };
    auto o = std::make_shared<Owned>();
    if constexpr (std::ranges::sized_range<Range>) o->v.reserve(static_cast<std::size_t>(std::ranges::size(range)));
    for (auto&& x : range) o->v.push_back(std::forward<decltype(x)>(x));
    return o;
  }
}
}  // namespace detail

/// @brief A pool of worker threads with work stealing: ThreadPoolExecutor's API plus
/// TBB-style parallel_for / parallel_reduce.
///
/// Every method is thread safe. Tasks submitted from inside a worker go to that worker's
/// own deque (LIFO, stolen FIFO by idle workers), so nested parallelism stays local;
/// a worker that waits on a future runs other tasks meanwhile, so nested submit + result
/// cannot deadlock even with one worker. A thread outside the pool that waits without
/// deadline on one of its futures (result(), wait(), a map's results) runs its tasks too
/// (PoolOptions::caller_helps), so the caller of a fork-join or a map takes part in it.
/// Idle workers spin for PoolOptions::spin, then sleep in the kernel (no CPU use while idle).
///
/// @code
/// troupe::ThreadPool pool(4);
/// auto f = pool.submit([](int a, int b) { return a + b; }, 2, 3);
/// for (int sq : pool.map([](int x) { return x * x; }, std::vector{1, 2, 3})) std::printf("%d\n", sq);
/// pool.map_into(squares, [](int x) { return x * x; }, xs);  // into a preallocated array
/// double s = pool.parallel_reduce(0, n, 0.0, std::plus<>{}, [&](std::size_t i) { return a[i]; });
/// @endcode
class ThreadPool {
 public:
  /// @brief A pool of default_thread_count() workers.
  ThreadPool() : ThreadPool(PoolOptions{}) {}
  /// @brief A pool of @p threads workers (0: default_thread_count()).
  explicit ThreadPool(std::size_t threads) : ThreadPool(PoolOptions{threads, std::nullopt, {}}) {}
  /// @brief A pool built from @p options.
  explicit ThreadPool(PoolOptions options);
  /// @brief shutdown(wait=true): runs what was submitted, then joins the workers.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// @brief Number of worker threads.
  std::size_t size() const noexcept { return sched_->size(); }

  /// @brief Schedules `fn(args...)` and returns its Future (ThreadPoolExecutor.submit).
  ///
  /// The callable and arguments are decay-copied (moved if rvalues) into the task.
  /// Never blocks. @throws InvalidStateError after shutdown (from outside the pool).
  template <class F, class... Args>
  requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
  auto submit(F&& fn, Args&&... args)
      -> Future<detail::result_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>>> {
    using R = detail::result_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>>;
    // Runs once: the callable and the arguments are handed over as rvalues.
    auto call = [f = std::forward<F>(fn), ... a = std::forward<Args>(args)]() mutable -> decltype(auto) {
      return std::invoke(std::move(f), std::move(a)...);
    };
    using Task = detail::FutureTask<R, decltype(call)>;
    auto* task = new Task(std::move(call), sched_->ticket());
    auto fut = detail::make_future<R>(detail::StatePtr<detail::SharedState<R>>(task));
    try {
      sched_->push(task, "ThreadPool::submit");
    } catch (...) {
      task->release();  // the queue's reference
      throw;
    }
    return fut;
  }

  /// @brief Applies @p fn to every element of @p range; results come in input order.
  ///
  /// Work is submitted in chunks (MapOptions::chunksize, else the rule of detail::Chunking),
  /// all at once, or at most MapOptions::buffersize at a time with the input then read lazily;
  /// the returned MapResult yields results as they become available, rethrows an element's
  /// exception when that element is reached, and throws TimeoutError after MapOptions::timeout.
  /// Without buffersize, an lvalue random-access range is read in place and must outlive the
  /// MapResult, and other ranges are copied; with it, elements are copied chunk by chunk.
  /// @throws ValueError for chunksize or buffersize 0 or a negative timeout;
  /// InvalidStateError after shutdown.
  template <class F, std::ranges::input_range Range>
  auto map(F&& fn, Range&& range, MapOptions options = {}) {
    return map_impl(std::forward<F>(fn), std::forward<Range>(range), options, false, "ThreadPool::map");
  }
  /// @brief As map, yielding results in completion order (chunk by chunk).
  template <class F, std::ranges::input_range Range>
  auto map_unordered(F&& fn, Range&& range, MapOptions options = {}) {
    return map_impl(std::forward<F>(fn), std::forward<Range>(range), options, true, "ThreadPool::map_unordered");
  }
  /// @brief map where each element is a tuple of arguments: `fn(std::get<0>(e), ...)`.
  template <class F, std::ranges::input_range Range>
  auto starmap(F&& fn, Range&& range, MapOptions options = {}) {
    auto apply_fn = [f = std::forward<F>(fn)](const auto& tup) -> decltype(auto) { return std::apply(f, tup); };
    return map_impl(std::move(apply_fn), std::forward<Range>(range), options, false, "ThreadPool::starmap");
  }

  /// @brief Writes `fn(inputs[i])` into `out[i]` for every i, in parallel, into storage the
  /// caller provides (as numpy's `out=` argument or a preallocated array under TBB).
  ///
  /// The map for a large output of a trivial type: `map(...).to_vector()` must hand over a
  /// `std::vector<R>`, which is value-initialized on the calling thread before the chunks
  /// write it; here nothing is initialized, so an output allocated once is reused across
  /// calls (docs/scheduling.md, "map's output"). Elements are assigned (`out[i] = fn(x)`),
  /// so @p out holds constructed objects (any std::vector, std::array or std::span of them).
  /// The chunks follow map's rule (MapOptions::chunksize, else detail::Chunking's automatic
  /// size) and are claimed from one counter by the workers and by the calling thread, as in
  /// parallel_for; with PoolOptions::caller_helps false, only the workers run @p fn (a
  /// worker of this pool that calls it always takes part). @p fn is called concurrently from
  /// several threads and by reference: it is not copied. Blocks until every chunk is done.
  /// Local to this pool: the Executor has no counterpart (its results come back as messages,
  /// which map's MapResult already consumes in place).
  ///
  /// When it throws, the call returns only after every chunk that had started is finished,
  /// and the chunks not yet started never run: nothing touches @p out or @p inputs any more.
  /// Elements of chunks that did not run keep their previous values.
  ///
  /// @param out the output, with as many elements as @p inputs: a contiguous range, an
  ///        lvalue or a view such as std::span (a temporary container is refused).
  /// @param fn called as `fn(inputs[i])`; its result is assigned to `out[i]`.
  /// @param inputs a sized random-access range, read in place during the call.
  /// @param options chunksize and timeout as for map (the deadline of the whole call: a chunk
  ///        is not started after it; the running ones finish); buffersize does not apply.
  /// @param token when stopped, chunks not yet started are skipped.
  /// @throws the first exception thrown by @p fn, as itself (the chunks not started are
  ///         skipped); CancelledError when @p token stops it; TimeoutError when a chunk was
  ///         not run because the timeout passed; ValueError when `out.size() != size(inputs)`,
  ///         for chunksize 0, a negative timeout, or a buffersize; InvalidStateError after
  ///         shutdown (from outside the pool).
  template <class Out, class F, class Range>
  requires std::ranges::contiguous_range<Out> && std::ranges::sized_range<Out> && std::ranges::borrowed_range<Out> &&
      std::ranges::random_access_range<Range> && std::ranges::sized_range<Range>
  void map_into(Out&& out, F&& fn, Range&& inputs, MapOptions options = {}, CancellationToken token = {}) {
    constexpr const char* api = "ThreadPool::map_into";
    using T = std::remove_reference_t<std::ranges::range_reference_t<Out>>;
    using Elem = std::ranges::range_reference_t<Range>;
    static_assert(!std::is_const_v<T>, "ThreadPool::map_into: out must be writable");
    static_assert(std::is_invocable_v<F&, Elem>, "ThreadPool::map_into: fn must be callable with an input element");
    static_assert(std::is_assignable_v<T&, std::invoke_result_t<F&, Elem>>,
                  "ThreadPool::map_into: fn's result must be assignable to an element of out");
    auto chunking = detail::Chunking::make(options, inputs, size(), api);
    if (options.buffersize) {
      throw ValueError(std::string(api) +
                       ": buffersize does not apply (the input is read in place; map reads it lazily)");
    }
    const std::size_t n = static_cast<std::size_t>(std::ranges::size(inputs));
    const std::size_t out_n = static_cast<std::size_t>(std::ranges::size(out));
    if (out_n != n) {
      throw ValueError(std::string(api) + ": out has " + std::to_string(out_n) + " element(s), inputs has " +
                       std::to_string(n));
    }
    T* dst = std::ranges::data(out);
    const auto src = std::ranges::begin(inputs);
    using Diff = std::ranges::range_difference_t<Range>;
    LoopControl control;
    control.deadline = chunking.deadline;
    control.caller_works = caller_helps_ || in_worker();
    run_chunks(
        n, chunking.chunksize, token,
        [&](std::size_t lo, std::size_t hi) {
          for (std::size_t i = lo; i < hi; ++i) dst[i] = std::invoke(fn, src[static_cast<Diff>(i)]);
        },
        api, control);
  }

  /// @brief Runs `body(i)` for every i in [first, last) (or `body(lo, hi)` per chunk) and
  /// returns when all are done. The caller takes part; a worker that calls it helps.
  /// The first exception thrown by the body is rethrown after the others finished.
  /// @throws ValueError for grain 0; CancelledError when the token stops it.
  template <std::integral Index, class F>
  void parallel_for(Index first, Index last, F&& body, ForOptions options = {}) {
    if (options.grain && *options.grain == 0) throw ValueError("ThreadPool::parallel_for: grain must be >= 1, got 0");
    if (last <= first) return;
    const std::size_t n = static_cast<std::size_t>(last - first);
    const std::size_t grain =
        options.grain ? detail::Chunking::clamp_chunksize(*options.grain, n) : detail::Chunking::auto_size(n, size());
    run_chunks(
        n, grain, options.token,
        [&](std::size_t lo, std::size_t hi) {
          if constexpr (std::is_invocable_v<F&, Index>) {
            for (std::size_t i = lo; i < hi; ++i) body(static_cast<Index>(first + static_cast<Index>(i)));
          } else {
            static_assert(std::is_invocable_v<F&, Index, Index>,
                          "ThreadPool::parallel_for: body must be callable as body(i) or body(lo, hi)");
            body(static_cast<Index>(first + static_cast<Index>(lo)),
                 static_cast<Index>(first + static_cast<Index>(hi)));
          }
        },
        "ThreadPool::parallel_for");
  }

  /// @brief reduce(init, transform(first), ..., transform(last-1)), computed in chunks.
  ///
  /// Each chunk folds its indices left to right; chunk results are combined in index order
  /// (ReduceOptions::ordered, the default: only associativity is needed) or as they finish.
  /// @throws the first exception of transform/reduce; ValueError for grain 0;
  /// CancelledError when the token stops it.
  template <std::integral Index, class T, class Reduce, class Transform>
  T parallel_reduce(Index first, Index last, T init, Reduce reduce, Transform transform, ReduceOptions options = {}) {
    if (options.grain && *options.grain == 0)
      throw ValueError("ThreadPool::parallel_reduce: grain must be >= 1, got 0");
    if (last <= first) return init;
    const std::size_t n = static_cast<std::size_t>(last - first);
    const std::size_t grain =
        options.grain ? detail::Chunking::clamp_chunksize(*options.grain, n) : detail::Chunking::auto_size(n, size());
    const std::size_t nchunks = (n + grain - 1) / grain;
    auto fold = [&](std::size_t lo, std::size_t hi) {
      T acc = static_cast<T>(transform(static_cast<Index>(first + static_cast<Index>(lo))));
      for (std::size_t i = lo + 1; i < hi; ++i)
        acc = reduce(std::move(acc), transform(static_cast<Index>(first + static_cast<Index>(i))));
      return acc;
    };
    if (options.ordered) {
      std::vector<std::optional<T>> partial(nchunks);
      run_chunks(
          n, grain, options.token, [&](std::size_t lo, std::size_t hi) { partial[lo / grain].emplace(fold(lo, hi)); },
          "ThreadPool::parallel_reduce");
      T acc = std::move(init);
      for (auto& p : partial) acc = reduce(std::move(acc), std::move(*p));
      return acc;
    }
    std::mutex mu;
    T acc = std::move(init);
    run_chunks(
        n, grain, options.token,
        [&](std::size_t lo, std::size_t hi) {
          T p = fold(lo, hi);
          std::lock_guard lock(mu);
          acc = reduce(std::move(acc), std::move(p));
        },
        "ThreadPool::parallel_reduce");
    return acc;
  }

  /// @brief Stops accepting work from outside the pool (ThreadPoolExecutor.shutdown).
  ///
  /// @param wait join the workers after they ran every accepted task.
  /// @param cancel_futures cancel the tasks that have not started (their futures report
  ///        cancelled() at once); running tasks finish.
  /// Tasks submitted by the pool's own running tasks are still accepted and run. Idempotent.
  /// @throws InvalidStateError for wait=true from one of the pool's own workers.
  void shutdown(bool wait = true, bool cancel_futures = false) { sched_->shutdown(wait, cancel_futures); }
  /// @brief True after shutdown().
  bool is_shutdown() const noexcept { return sched_->is_shutdown(); }

  /// @brief Per-worker counters (tasks run, steals, sleeps). Thread safe; values are approximate.
  PoolStats stats() const { return PoolStats{sched_->stats()}; }
  /// @brief Index of the calling thread among this pool's workers, or -1 (also in a thread
  /// outside the pool that runs one of its tasks while it waits).
  int worker_index() const noexcept { return sched_->worker_index(); }
  /// @brief True when called from one of this pool's workers, or from one of its tasks
  /// that a waiting thread outside the pool runs (PoolOptions::caller_helps).
  bool in_worker() const noexcept { return sched_->on_pool_thread(); }

 private:
  template <class F, class Range>
  auto map_impl(F&& fn, Range&& range, const MapOptions& options, bool unordered, const char* api) {
    auto chunking = detail::Chunking::make(options, range, size(), api);
    if (is_shutdown() && !in_worker())
      throw InvalidStateError(std::string(api) + ": cannot schedule new tasks after shutdown");
    using Source = decltype(detail::make_map_source(std::forward<Range>(range)));
    using Elem = decltype((*std::declval<Source&>())[0]);
    using Raw = std::invoke_result_t<std::decay_t<F>&, Elem>;
    using R = detail::map_value_t<Raw>;
    using Chunk = detail::ChunkResult<R>;
    auto shared_fn = std::make_shared<std::decay_t<F>>(std::forward<F>(fn));
    if (chunking.lazy()) {  // lazy: chunks of copied elements, read as results are taken
      auto src = std::make_shared<detail::LazySource<Range>>(std::forward<Range>(range), chunking);
      return MapResult<R>(
          [this, src, shared_fn]() -> std::optional<Future<Chunk>> {
            auto items = src->take();
            if (items.empty()) return std::nullopt;
            return submit(
                [shared_fn, items = std::move(items)]() mutable { return detail::run_chunk<R>(*shared_fn, items); });
          },
          chunking, unordered, api, true);
    }
    // Eager: every chunk at once, writing its results in place into one slot vector.
    auto source = detail::make_map_source(std::forward<Range>(range));
    const std::size_t n = source->size();
    const std::size_t chunk = chunking.grow ? detail::Chunking::auto_size(n, size()) : chunking.chunksize;
    using Slot = detail::map_slot_t<R>;
    auto slots = std::make_shared<std::vector<Slot>>();
    prepare_slots(*slots, n, api);
    auto submit_next = [this, source, shared_fn, slots, chunk, n,
                        lo = std::size_t{0}]() mutable -> std::optional<Future<Chunk>> {
      if (lo >= n) return std::nullopt;
      const std::size_t first = lo, hi = std::min(n, lo + chunk);
      lo = hi;
      return submit([source, shared_fn, slots, first, hi] {
        Chunk st;
        Slot* out = slots->data();
        auto& f = *shared_fn;
        const auto& src = *source;
        std::size_t i = first;
        try {
          for (; i < hi; ++i) {
            if constexpr (std::is_void_v<Raw>) {
              f(src[i]);
              out[i] = Slot(std::monostate{});
            } else {
              out[i] = f(src[i]);
            }
          }
        } catch (...) {
          st.failed = true;
          st.error = std::current_exception();
        }
        st.first = first;
        st.computed = i - first;
        return st;
      });
    };
    return MapResult<R>(std::move(submit_next), chunking, unordered, api, true, std::move(slots));
  }

  // The map's result vector, sized n. Its page faults would otherwise all be taken by the
  // caller in the vector's value-initialization (in perf, 2/3 of an automatic map of 10^6
  // ints): for a large vector of a trivial type the pages are first touched by the workers
  // and the caller in parallel, one store per page into the reserved storage, so that the
  // caller's value-initialization runs at cache speed. std::vector<R> (what to_vector()
  // hands over) cannot adopt elements constructed elsewhere, so the value-initialization
  // itself stays; map_into, writing into storage the caller provides, has none
  // (docs/scheduling.md, "map's output").
  template <class Slot>
  void prepare_slots(std::vector<Slot>& slots, std::size_t n, const char* api) {
    if constexpr (std::is_trivially_default_constructible_v<Slot> && std::is_trivially_destructible_v<Slot>) {
      constexpr std::size_t kPage = 4096;
      constexpr std::size_t kMinBytes = std::size_t{256} << 10;  // below: malloc's heap, resident
      if (n >= kMinBytes / sizeof(Slot)) {
        slots.reserve(n);
        auto* base = reinterpret_cast<unsigned char*>(slots.data());
        const std::size_t pages = (n * sizeof(Slot) + kPage - 1) / kPage;
        const CancellationToken none;
        try {
          run_chunks(
              pages, detail::Chunking::auto_size(pages, size()), none,
              [base](std::size_t lo, std::size_t hi) {
                for (std::size_t p = lo; p < hi; ++p) base[p * kPage] = 0;
              },
              api);
        } catch (const InvalidStateError&) {
          // shut down meanwhile: the map itself reports it
        }
      }
    }
    slots.resize(n);
  }

  struct LoopState {
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> done{0};
    std::size_t nchunks = 0;
    std::size_t n = 0;
    std::size_t grain = 1;
    // The caller's chunk function and token: valid while a claimed chunk is not done
    // (the caller waits for all of them), never touched by a helper that claimed none.
    void (*call)(void*, std::size_t, std::size_t) = nullptr;
    void* ctx = nullptr;
    const CancellationToken* token = nullptr;
    Deadline deadline;                   // a chunk claimed after it is skipped
    std::atomic<bool> expired{false};    // some chunk was skipped for the deadline
    std::atomic<bool> abandoned{false};  // the caller stopped waiting for every chunk
    std::atomic<bool> failed{false};
    std::exception_ptr error;  // written once, by whoever flips `failed`
    detail::Notifier notifier;

    void work() {
      const bool timed = !deadline.infinite();
      for (;;) {
        const std::size_t c = next.fetch_add(1, std::memory_order_relaxed);
        if (c >= nchunks) return;
        if (!failed.load(std::memory_order_relaxed) && !token->stop_requested() &&
            !expired.load(std::memory_order_relaxed)) {
          if (timed && deadline.expired()) {
            expired.store(true, std::memory_order_relaxed);
          } else {
            const std::size_t lo = c * grain;
            const std::size_t hi = std::min(n, lo + grain);
            try {
              call(ctx, lo, hi);
            } catch (...) {
              if (!failed.exchange(true, std::memory_order_acq_rel)) error = std::current_exception();
            }
          }
        }
        // seq_cst against the caller's store of `abandoned` then load of `done`: either it
        // sees this chunk done or this sees it waiting for the claimed chunks only.
        if (done.fetch_add(1, std::memory_order_seq_cst) + 1 == nchunks || abandoned.load(std::memory_order_seq_cst)) {
          notifier.notify_all();
        }
      }
    }
  };
  // How run_chunks runs: by the caller too (parallel_for, parallel_reduce, map_into on a
  // pool whose caller helps), and until when.
  struct LoopControl {
    Deadline deadline = {};
    bool caller_works = true;
  };
  // Dynamic chunk claiming: helpers and the caller take chunks from one counter. Returns
  // when every claimed chunk is done: all of them, or, after the deadline or the token,
  // those some thread had started (the others never run, so nothing touches the caller's
  // data afterwards). Throws the first chunk exception, then CancelledError (the token),
  // then TimeoutError (a chunk was skipped for the deadline).
  // No default argument `= {}` for control: clang rejects a nested class's default member
  // initializers in a default argument of the enclosing class (clang 14: "default member
  // initializer for 'deadline' needed within definition of enclosing class"); an overload
  // builds it inside a member function body, where the class is complete.
  template <class Chunk>
  void run_chunks(std::size_t n, std::size_t grain, const CancellationToken& token, Chunk&& chunk_fn, const char* api) {
    run_chunks(n, grain, token, std::forward<Chunk>(chunk_fn), api, LoopControl{});
  }
  template <class Chunk>
  void run_chunks(std::size_t n, std::size_t grain, const CancellationToken& token, Chunk&& chunk_fn, const char* api,
                  const LoopControl& control) {
    auto st = std::make_shared<LoopState>();
    st->n = n;
    st->grain = grain;
    st->nchunks = (n + grain - 1) / grain;
    st->call = [](void* ctx, std::size_t lo, std::size_t hi) {
      (*static_cast<std::remove_reference_t<Chunk>*>(ctx))(lo, hi);
    };
    st->ctx = static_cast<void*>(&chunk_fn);
    st->token = &token;
    st->deadline = control.deadline;
    if (is_shutdown() && !in_worker())
      throw InvalidStateError(std::string(api) + ": cannot schedule new tasks after shutdown");
    if (st->nchunks == 0) return;
    const std::size_t helpers = std::min(st->nchunks - (control.caller_works ? 1 : 0), size());
    std::size_t pushed = 0;
    for (; pushed < helpers; ++pushed) {
      // A shutdown racing with this loop refuses the push: carry on with fewer helpers
      // (the caller runs whatever chunks are left), never leave with helpers queued.
      if (!try_push_plain([st]() noexcept { st->work(); })) break;
    }
    if (control.caller_works) {
      st->work();
    } else if (pushed == 0) {  // nothing queued, nothing ran
      throw InvalidStateError(std::string(api) + ": cannot schedule new tasks after shutdown");
    }
    const auto status = st->notifier.wait_status(
        [&] { return st->done.load(std::memory_order_seq_cst) == st->nchunks; }, control.deadline, &token);
    if (status != detail::WaitStatus::kReady) {
      // Give up on the chunks no thread has claimed; wait for the claimed ones.
      st->abandoned.store(true, std::memory_order_seq_cst);
      const std::size_t claimed = std::min(st->next.exchange(st->nchunks, std::memory_order_seq_cst), st->nchunks);
      if (claimed < st->nchunks && status == detail::WaitStatus::kTimeout)
        st->expired.store(true, std::memory_order_relaxed);
      (void)st->notifier.wait([&] { return st->done.load(std::memory_order_seq_cst) == claimed; }, Deadline{}, nullptr,
                              api);
    }
    if (st->error) std::rethrow_exception(st->error);
    if (token.stop_requested()) throw CancelledError(std::string(api) + ": cancelled by token");
    if (st->expired.load(std::memory_order_relaxed)) {
      throw TimeoutError(std::string(api) + ": timed out before every chunk ran (" + std::to_string(st->nchunks) +
                         " chunk(s) of " + std::to_string(grain) + " of " + std::to_string(n) + " element(s))");
    }
  }
  friend struct detail::PoolAccess;
  template <class Fn>
  bool try_push_plain(Fn&& fn) {
    auto* t = new detail::PlainTask<std::decay_t<Fn>>(std::forward<Fn>(fn));
    try {
      sched_->push(t, "ThreadPool");
    } catch (const InvalidStateError&) {
      delete t;
      return false;
    }
    return true;
  }

  std::unique_ptr<detail::Scheduler> sched_;
  bool caller_helps_ = true;  // PoolOptions::caller_helps, resolved
};

}  // namespace troupe
