// troupe::ThreadPool against the usual alternatives, all in one process and one run:
//   - a mutex + condition-variable single-queue pool (written below), once with one
//     std::packaged_task + std::future per task and once with fire-and-forget std::function,
//   - std::async(std::launch::async),
//   - oneTBB (task_group, parallel_for, parallel_reduce) limited to the same thread count.
//
// Case names are "<case>/<implementation>"; bench/summarize.py turns a JSON run into the
// ratio table of docs/performance.md. N (the thread budget) is the number of online CPUs,
// or TROUPE_BENCH_THREADS. troupe runs with N workers (its default) and with N-1 workers
// (plus the main thread that submits); TBB runs in an arena of N slots, i.e. N-1 worker
// threads plus the main thread, which executes tasks while it waits.
#include <benchmark/benchmark.h>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/version.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "bench_util.hpp"
#include "troupe/pool/thread_pool.hpp"

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kTasks = 1'000'000;    // (a), (a2): empty tasks per iteration
constexpr std::size_t kAsyncTasks = 10'000;  // std::async makes one thread per task
constexpr int kTreeDepth = 20;               // (a2) tree: 2^20 - 1 = 1,048,575 spawned tasks
constexpr std::size_t kTreeTasks = (std::size_t{1} << kTreeDepth) - 1;
constexpr std::size_t kMapN = 1'000'000;       // (c)
constexpr std::size_t kReduceN = 100'000'000;  // (d): 800 MB of doubles
constexpr int kIdleIterations = 100;           // (b) from idle: 100 × 5 ms sleeps

std::size_t g_threads = 2;  // N

// Lets threads of the previous case (TBB's workers, a pool being torn down) go to sleep.
void settle() { std::this_thread::sleep_for(10ms); }

// ---------------------------------------------------------------------------------------
// Baseline: the pool most code bases start with. One std::deque behind one mutex, workers
// sleep on a condition variable; submit() wraps the callable in a packaged_task.
class LockedPool {
 public:
  explicit LockedPool(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~LockedPool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  LockedPool(const LockedPool&) = delete;
  LockedPool& operator=(const LockedPool&) = delete;

  // Fire and forget.
  void post(std::function<void()> fn) {
    pending_.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  // The std::future-returning shape (BS::thread_pool, most tutorials).
  template <class F>
  auto submit(F fn) -> std::future<std::invoke_result_t<F&>> {
    using R = std::invoke_result_t<F&>;
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    auto fut = task->get_future();
    post([task] { (*task)(); });
    return fut;
  }
  // Blocks until every posted task has run.
  void wait_idle() {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(mu_);
        idle_cv_.notify_all();
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<std::function<void()>> queue_;
  std::atomic<std::size_t> pending_{0};
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// TBB limited to n threads: n-1 workers plus the thread that enters the arena.
struct TbbEnv {
  explicit TbbEnv(std::size_t n) : gc(tbb::global_control::max_allowed_parallelism, n), arena(static_cast<int>(n)) {
    arena.initialize();
    // Start the workers outside the timed region.
    arena.execute([] { tbb::parallel_for(0, 1000, [](int i) { benchmark::DoNotOptimize(i); }); });
  }
  tbb::global_control gc;
  tbb::task_arena arena;
};

troupe::ThreadPool make_pool(std::size_t workers) {
  return troupe::ThreadPool(troupe::PoolOptions{.threads = workers, .spin = std::nullopt, .initializer = {}});
}

std::string w(std::size_t n) { return "_w" + std::to_string(n); }
std::string t(std::size_t n) { return "_t" + std::to_string(n); }

// ---------------------------------------------------------------------------------------
// (a) submit + result of 1,000,000 empty tasks from the main thread.

void a_troupe(benchmark::State& st, std::size_t workers) {
  auto pool = make_pool(workers);
  std::vector<troupe::Future<void>> futs;
  futs.reserve(kTasks);
  auto batch = [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) futs.push_back(pool.submit([] {}));
    for (auto& f : futs) f.result();
    futs.clear();
  };
  batch(kTasks / 10);  // warm the allocator and the queues
  settle();
  for (auto _ : st) batch(kTasks);
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kTasks));
}

void a_locked_packaged_task(benchmark::State& st, std::size_t workers) {
  LockedPool pool(workers);
  std::vector<std::future<void>> futs;
  futs.reserve(kTasks);
  auto batch = [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) futs.push_back(pool.submit([] {}));
    for (auto& f : futs) f.get();
    futs.clear();
  };
  batch(kTasks / 10);
  settle();
  for (auto _ : st) batch(kTasks);
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kTasks));
}

void a_locked_function(benchmark::State& st, std::size_t workers) {
  LockedPool pool(workers);
  auto batch = [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) pool.post([] {});
    pool.wait_idle();
  };
  batch(kTasks / 10);
  settle();
  for (auto _ : st) batch(kTasks);
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kTasks));
}

void a_std_async(benchmark::State& st) {
  std::vector<std::future<void>> futs;
  futs.reserve(kAsyncTasks);
  settle();
  for (auto _ : st) {
    for (std::size_t i = 0; i < kAsyncTasks; ++i) futs.push_back(std::async(std::launch::async, [] {}));
    for (auto& f : futs) f.get();
    futs.clear();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kAsyncTasks));
}

void a_tbb_task_group(benchmark::State& st, std::size_t threads) {
  TbbEnv env(threads);
  auto batch = [&](std::size_t n) {
    env.arena.execute([&] {
      tbb::task_group tg;
      for (std::size_t i = 0; i < n; ++i) tg.run([] {});
      tg.wait();
    });
  };
  batch(kTasks / 10);
  settle();
  for (auto _ : st) batch(kTasks);
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kTasks));
}

// ---------------------------------------------------------------------------------------
// (a2) tasks spawned from inside the pool.
//   fanout: one root task submits 1,000,000 empty children, then waits for them all;
//   tree:   binary fork-join: each node spawns one child, runs the other half inline, waits.

void a2_fanout_troupe(benchmark::State& st, std::size_t workers) {
  auto pool = make_pool(workers);
  auto root = [&pool](std::size_t n) {
    std::vector<troupe::Future<void>> futs;
    futs.reserve(n);
    for (std::size_t i = 0; i < n; ++i) futs.push_back(pool.submit([] {}));
    for (auto& f : futs) f.result();
  };
  pool.submit(root, kTasks / 10).result();
  settle();
  for (auto _ : st) pool.submit(root, kTasks).result();
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kTasks));
}

void a2_fanout_tbb(benchmark::State& st, std::size_t threads) {
  TbbEnv env(threads);
  auto run = [&](std::size_t n) {
    env.arena.execute([n] {
      tbb::task_group outer;
      outer.run([n] {
        tbb::task_group inner;
        for (std::size_t i = 0; i < n; ++i) inner.run([] {});
        inner.wait();
      });
      outer.wait();
    });
  };
  run(kTasks / 10);
  settle();
  for (auto _ : st) run(kTasks);
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kTasks));
}

void troupe_tree(troupe::ThreadPool& pool, int depth) {
  if (depth == 0) return;
  auto child = pool.submit([&pool, depth] { troupe_tree(pool, depth - 1); });
  troupe_tree(pool, depth - 1);
  child.result();
}

void tbb_tree(int depth) {
  if (depth == 0) return;
  tbb::task_group tg;
  tg.run([depth] { tbb_tree(depth - 1); });
  tbb_tree(depth - 1);
  tg.wait();
}

void a2_tree_troupe(benchmark::State& st, std::size_t workers) {
  auto pool = make_pool(workers);
  pool.submit([&pool] { troupe_tree(pool, kTreeDepth - 3); }).result();
  settle();
  for (auto _ : st) pool.submit([&pool] { troupe_tree(pool, kTreeDepth); }).result();
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kTreeTasks));
}

void a2_tree_tbb(benchmark::State& st, std::size_t threads) {
  TbbEnv env(threads);
  env.arena.execute([] { tbb_tree(kTreeDepth - 3); });
  settle();
  for (auto _ : st) env.arena.execute([] { tbb_tree(kTreeDepth); });
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kTreeTasks));
}

// ---------------------------------------------------------------------------------------
// (b) latency of one submit -> result. "active": back to back, so the workers are still
// spinning from the previous round trip; "idle": 5 ms of sleep before each one (outside
// the measured time), so every worker is asleep in the kernel when the task arrives.

template <class RoundTrip>
void latency(benchmark::State& st, bool idle, RoundTrip&& round_trip) {
  std::vector<double> samples;
  samples.reserve(idle ? kIdleIterations : std::size_t{1} << 20);
  for (int i = 0; i < 1000; ++i) round_trip();  // warm up
  settle();
  for (auto _ : st) {
    if (idle) std::this_thread::sleep_for(5ms);
    const auto t0 = SteadyClock::now();
    round_trip();
    const auto t1 = SteadyClock::now();
    const double s = std::chrono::duration<double>(t1 - t0).count();
    st.SetIterationTime(s);
    if (samples.size() < samples.capacity()) samples.push_back(s);
  }
  std::sort(samples.begin(), samples.end());
  auto pct = [&](double p) {
    if (samples.empty()) return 0.0;
    const auto k = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1));
    return samples[k] * 1e6;
  };
  st.counters["p50_us"] = pct(0.50);
  st.counters["p90_us"] = pct(0.90);
  st.counters["p99_us"] = pct(0.99);
}

void b_troupe(benchmark::State& st, std::size_t workers, bool idle) {
  auto pool = make_pool(workers);
  latency(st, idle, [&] { benchmark::DoNotOptimize(pool.submit([] { return 1; }).result()); });
}

void b_locked_packaged_task(benchmark::State& st, std::size_t workers, bool idle) {
  LockedPool pool(workers);
  latency(st, idle, [&] { benchmark::DoNotOptimize(pool.submit([] { return 1; }).get()); });
}

void b_std_async(benchmark::State& st, bool idle) {
  latency(st, idle, [] { benchmark::DoNotOptimize(std::async(std::launch::async, [] { return 1; }).get()); });
}

// TBB's closest shape: enqueue into the arena from outside, wait on an atomic (spin, then futex).
void b_tbb_enqueue(benchmark::State& st, std::size_t threads, bool idle) {
  TbbEnv env(threads);
  std::atomic<int> flag{0};
  latency(st, idle, [&] {
    flag.store(0, std::memory_order_relaxed);
    env.arena.enqueue([&flag] {
      flag.store(1, std::memory_order_release);
      flag.notify_one();
    });
    flag.wait(0, std::memory_order_acquire);
  });
}

// ---------------------------------------------------------------------------------------
// (c) map of 10^6 ints, x -> 2x.

const std::vector<int>& map_input() {
  static const std::vector<int> v = [] {
    std::vector<int> x(kMapN);
    std::iota(x.begin(), x.end(), 0);
    return x;
  }();
  return v;
}

bool map_output_ok(const std::vector<int>& out) {
  return out.size() == kMapN && out[0] == 0 && out[kMapN / 2] == static_cast<int>(kMapN) &&
         out.back() == 2 * static_cast<int>(kMapN - 1);
}

void c_troupe_map(benchmark::State& st, std::size_t workers, std::size_t chunksize) {
  const auto& in = map_input();
  auto pool = make_pool(workers);
  troupe::MapOptions opts;
  if (chunksize != 0) opts.chunksize = chunksize;
  auto once = [&] { return pool.map([](int x) { return x * 2; }, in, opts).to_vector(); };
  if (!map_output_ok(once())) st.SkipWithError("troupe map gave a wrong result");
  settle();
  for (auto _ : st) {
    auto out = once();
    benchmark::DoNotOptimize(out.data());
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kMapN));
}

// map_into: the map's chunk rule and loop, into an output allocated once (as the TBB
// baseline's), so no value-initialization per call.
void c_troupe_map_into(benchmark::State& st, std::size_t workers, std::size_t chunksize) {
  const auto& in = map_input();
  auto pool = make_pool(workers);
  troupe::MapOptions opts;
  if (chunksize != 0) opts.chunksize = chunksize;
  std::vector<int> out(kMapN);
  auto once = [&] {
    pool.map_into(
        out, [](int x) { return x * 2; }, in, opts);
  };
  once();
  if (!map_output_ok(out)) st.SkipWithError("troupe map_into gave a wrong result");
  settle();
  for (auto _ : st) {
    once();
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kMapN));
}

void c_troupe_parallel_for(benchmark::State& st, std::size_t workers) {
  const auto& in = map_input();
  auto pool = make_pool(workers);
  std::vector<int> out(kMapN);
  auto once = [&] {
    pool.parallel_for(std::size_t{0}, kMapN, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) out[i] = in[i] * 2;
    });
  };
  once();
  if (!map_output_ok(out)) st.SkipWithError("troupe parallel_for gave a wrong result");
  settle();
  for (auto _ : st) {
    once();
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kMapN));
}

// Diagnostic: the map's parallel part only (chunks computed into per-chunk vectors), without
// the element-by-element consumption on the calling thread.
void c_troupe_map_chunks_only(benchmark::State& st, std::size_t workers) {
  const auto& in = map_input();
  auto pool = make_pool(workers);
  troupe::MapOptions opts;
  opts.chunksize = 10'000;
  settle();
  for (auto _ : st) {
    auto r = pool.map([](int x) { return x * 2; }, in, opts);
    for (const auto& f : r.chunk_futures()) f.wait();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kMapN));
}

// What map has to do at least: a fresh output vector per call, filled in parallel.
void c_tbb_parallel_for_new_vector(benchmark::State& st, std::size_t threads) {
  const auto& in = map_input();
  TbbEnv env(threads);
  auto once = [&] {
    std::vector<int> out(kMapN);
    env.arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, kMapN), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i < r.end(); ++i) out[i] = in[i] * 2;
      });
    });
    return out;
  };
  if (!map_output_ok(once())) st.SkipWithError("tbb parallel_for gave a wrong result");
  settle();
  for (auto _ : st) {
    auto out = once();
    benchmark::DoNotOptimize(out.data());
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kMapN));
}

void c_tbb_parallel_for(benchmark::State& st, std::size_t threads) {
  const auto& in = map_input();
  TbbEnv env(threads);
  std::vector<int> out(kMapN);
  auto once = [&] {
    env.arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, kMapN), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i < r.end(); ++i) out[i] = in[i] * 2;
      });
    });
  };
  once();
  if (!map_output_ok(out)) st.SkipWithError("tbb parallel_for gave a wrong result");
  settle();
  for (auto _ : st) {
    once();
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kMapN));
}

void c_serial(benchmark::State& st) {
  const auto& in = map_input();
  std::vector<int> out(kMapN);
  for (auto _ : st) {
    for (std::size_t i = 0; i < kMapN; ++i) out[i] = in[i] * 2;
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kMapN));
}

// ---------------------------------------------------------------------------------------
// (d) sum of 10^8 doubles.

const std::vector<double>& reduce_input() {
  static const std::vector<double> v = [] {
    std::vector<double> x(kReduceN);
    for (std::size_t i = 0; i < kReduceN; ++i) x[i] = static_cast<double>(i % 1000) * 0.001;
    return x;
  }();
  return v;
}

double serial_sum(const std::vector<double>& a) {
  double s = 0.0;
  for (double x : a) s += x;
  return s;
}

bool sum_ok(double got) {
  static const double want = serial_sum(reduce_input());
  return std::abs(got - want) <= 1e-9 * std::abs(want);
}

void d_serial(benchmark::State& st) {
  const auto& a = reduce_input();
  settle();
  for (auto _ : st) benchmark::DoNotOptimize(serial_sum(a));
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kReduceN));
}

void d_troupe(benchmark::State& st, std::size_t workers, bool ordered) {
  const auto& a = reduce_input();
  auto pool = make_pool(workers);
  troupe::ReduceOptions opts;
  opts.ordered = ordered;
  auto once = [&] {
    return pool.parallel_reduce(
        std::size_t{0}, kReduceN, 0.0, std::plus<>{}, [&a](std::size_t i) { return a[i]; }, opts);
  };
  if (!sum_ok(once())) st.SkipWithError("troupe parallel_reduce gave a wrong sum");
  settle();
  for (auto _ : st) benchmark::DoNotOptimize(once());
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kReduceN));
}

void d_tbb(benchmark::State& st, std::size_t threads) {
  const auto& a = reduce_input();
  TbbEnv env(threads);
  auto once = [&] {
    return env.arena.execute([&] {
      return tbb::parallel_reduce(
          tbb::blocked_range<std::size_t>(0, kReduceN), 0.0,
          [&a](const tbb::blocked_range<std::size_t>& r, double acc) {
            for (std::size_t i = r.begin(); i < r.end(); ++i) acc += a[i];
            return acc;
          },
          std::plus<>{});
    });
  };
  if (!sum_ok(once())) st.SkipWithError("tbb parallel_reduce gave a wrong sum");
  settle();
  for (auto _ : st) benchmark::DoNotOptimize(once());
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kReduceN));
}

// ---------------------------------------------------------------------------------------
// (e) CPU used by an idle pool: build it, run one task, wait 100 ms, then measure the
// process CPU time over the next second of idleness. Reported as % of one core.

using bench::loadavg;

using bench::self_cpu_seconds;

template <class Setup>
void idle_cpu(benchmark::State& st, Setup&& setup) {
  double pct = 0.0;
  for (auto _ : st) {
    auto keep_alive = setup();
    std::this_thread::sleep_for(100ms);
    const double c0 = self_cpu_seconds();
    const auto w0 = SteadyClock::now();
    std::this_thread::sleep_for(1s);
    const double c1 = self_cpu_seconds();
    const double wall = std::chrono::duration<double>(SteadyClock::now() - w0).count();
    pct = 100.0 * (c1 - c0) / wall;
    st.SetIterationTime(wall);
  }
  st.counters["cpu_pct"] = pct;
}

void e_troupe(benchmark::State& st, std::size_t workers) {
  idle_cpu(st, [workers] {
    auto pool = std::make_unique<troupe::ThreadPool>(
        troupe::PoolOptions{.threads = workers, .spin = std::nullopt, .initializer = {}});
    pool->submit([] { return 1; }).result();
    return pool;
  });
}

void e_tbb(benchmark::State& st, std::size_t threads) {
  idle_cpu(st, [threads] {
    auto env = std::make_unique<TbbEnv>(threads);  // runs a small parallel_for
    env->arena.execute([] {
      tbb::task_group tg;
      tg.run([] {});
      tg.wait();
    });
    return env;
  });
}

// ---------------------------------------------------------------------------------------

void register_all() {
  const std::size_t n = g_threads;
  std::vector<std::size_t> troupe_workers{n};
  if (n > 1) troupe_workers.push_back(n - 1);
  // Wall-clock time throughout: the work happens on other threads than the timing one.
  auto reg_manual = [](const std::string& name, auto fn) {
    return benchmark::RegisterBenchmark(name.c_str(), fn)->UseManualTime()->Unit(benchmark::kMillisecond);
  };
  auto reg = [](const std::string& name, auto fn) {
    return benchmark::RegisterBenchmark(name.c_str(), fn)->UseRealTime()->Unit(benchmark::kMillisecond);
  };

  // (a)
  for (auto k : troupe_workers)
    reg("a_submit/troupe" + w(k), [k](benchmark::State& s) { a_troupe(s, k); })->MinTime(0.3);
  reg("a_submit/tbb_task_group" + t(n), [n](benchmark::State& s) { a_tbb_task_group(s, n); })->MinTime(0.3);
  reg("a_submit/locked_function" + w(n), [n](benchmark::State& s) { a_locked_function(s, n); })->MinTime(0.3);
  reg("a_submit/locked_packaged_task" + w(n), [n](benchmark::State& s) {
    a_locked_packaged_task(s, n);
  })->Iterations(1);
  reg("a_submit/std_async", [](benchmark::State& s) { a_std_async(s); })->Iterations(1);

  // (a2)
  for (auto k : troupe_workers)
    reg("a2_fanout/troupe" + w(k), [k](benchmark::State& s) { a2_fanout_troupe(s, k); })->MinTime(0.3);
  reg("a2_fanout/tbb_task_group" + t(n), [n](benchmark::State& s) { a2_fanout_tbb(s, n); })->MinTime(0.3);
  for (auto k : troupe_workers)
    reg("a2_tree/troupe" + w(k), [k](benchmark::State& s) { a2_tree_troupe(s, k); })->MinTime(0.3);
  reg("a2_tree/tbb_task_group" + t(n), [n](benchmark::State& s) { a2_tree_tbb(s, n); })->MinTime(0.3);

  // (b)
  for (bool idle : {false, true}) {
    const std::string c = idle ? "b_latency_idle/" : "b_latency_active/";
    auto fix = [idle](benchmark::internal::Benchmark* b) {
      b->Unit(benchmark::kMicrosecond);
      if (idle) {
        b->Iterations(kIdleIterations);
      } else {
        b->MinTime(0.2);
      }
    };
    for (auto k : troupe_workers)
      fix(reg_manual(c + "troupe" + w(k), [k, idle](benchmark::State& s) { b_troupe(s, k, idle); }));
    fix(reg_manual(c + "tbb_enqueue" + t(n), [n, idle](benchmark::State& s) { b_tbb_enqueue(s, n, idle); }));
    fix(reg_manual(c + "locked_packaged_task" + w(n),
                   [n, idle](benchmark::State& s) { b_locked_packaged_task(s, n, idle); }));
    if (!idle) fix(reg_manual(c + "std_async", [idle](benchmark::State& s) { b_std_async(s, idle); }));
  }

  // (c)
  for (auto k : troupe_workers) {
    reg("c_map/troupe_map_chunk10000" + w(k), [k](benchmark::State& s) { c_troupe_map(s, k, 10'000); })->MinTime(0.2);
    reg("c_map/troupe_map_chunkauto" + w(k), [k](benchmark::State& s) { c_troupe_map(s, k, 0); })->MinTime(0.2);
    reg("c_map/troupe_map_into_chunk10000" + w(k), [k](benchmark::State& s) {
      c_troupe_map_into(s, k, 10'000);
    })->MinTime(0.2);
    reg("c_map/troupe_map_into_chunkauto" + w(k), [k](benchmark::State& s) {
      c_troupe_map_into(s, k, 0);
    })->MinTime(0.2);
    reg("c_map/troupe_parallel_for" + w(k), [k](benchmark::State& s) { c_troupe_parallel_for(s, k); })->MinTime(0.2);
  }
  reg("c_map/troupe_map_chunks_only" + w(n), [n](benchmark::State& s) {
    c_troupe_map_chunks_only(s, n);
  })->MinTime(0.2);
  reg("c_map/tbb_parallel_for" + t(n), [n](benchmark::State& s) { c_tbb_parallel_for(s, n); })->MinTime(0.2);
  reg("c_map/tbb_parallel_for_new_vector" + t(n), [n](benchmark::State& s) {
    c_tbb_parallel_for_new_vector(s, n);
  })->MinTime(0.2);
  reg("c_map/serial", [](benchmark::State& s) { c_serial(s); })->MinTime(0.2);

  // (d)
  reg("d_reduce/serial", [](benchmark::State& s) { d_serial(s); })->MinTime(0.3);
  for (auto k : troupe_workers)
    reg("d_reduce/troupe" + w(k), [k](benchmark::State& s) { d_troupe(s, k, true); })->MinTime(0.3);
  reg("d_reduce/troupe_unordered" + w(n), [n](benchmark::State& s) { d_troupe(s, n, false); })->MinTime(0.3);
  reg("d_reduce/tbb" + t(n), [n](benchmark::State& s) { d_tbb(s, n); })->MinTime(0.3);

  // (e)
  reg_manual("e_idle_cpu/troupe" + w(n), [n](benchmark::State& s) { e_troupe(s, n); })->Iterations(1);
  reg_manual("e_idle_cpu/tbb" + t(n), [n](benchmark::State& s) { e_tbb(s, n); })->Iterations(1);
}

}  // namespace

int main(int argc, char** argv) {
  g_threads = std::max(1u, std::thread::hardware_concurrency());
  if (const char* s = std::getenv("TROUPE_BENCH_THREADS")) {
    const long v = std::strtol(s, nullptr, 10);
    if (v >= 1) g_threads = static_cast<std::size_t>(v);
  }
  benchmark::AddCustomContext("threads_N", std::to_string(g_threads));
  benchmark::AddCustomContext("tbb_version", TBB_VERSION_STRING);
  benchmark::AddCustomContext("tbb_runtime_version", TBB_runtime_version());
  benchmark::AddCustomContext("troupe_spin_us",
                              std::getenv("TROUPE_SPIN_US") ? std::getenv("TROUPE_SPIN_US") : "default (50)");
  // Other processes on the machine distort every figure here: keep the load in the record.
  benchmark::AddCustomContext("loadavg_at_start", loadavg());
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
