// Coroutines (issue 11): the cost of one suspend + resume through the pool against a pool
// submit -> result round trip, memory per suspended task, and 10^5 suspended tasks at once.
// Plus the same figures "with workers active" (a background load of yielding tasks keeps
// every worker awake, so no round trip pays for a worker's wake-up), and the crawler shape
// of bench/asyncio_crawler.py (the Python asyncio anchor: scripts/compare-asyncio.sh).
// Plain main printing RESULT / RATIO lines (the format of bench/bench_util.hpp); no MPI.
//   troupe_coro_bench [--reps N] [--only-crawl] [--requests N] [--inflight K] [--latency-us L]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "troupe/coro/coro.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double result(const char* name, const char* unit, const std::vector<double>& v, long n) {
  const double med = median(v);
  std::printf("RESULT name=%s unit=%s value=%.4g reps=%zu min=%.4g max=%.4g n=%ld ranks=1\n", name, unit, med, v.size(),
              *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()), n);
  std::fflush(stdout);
  return med;
}
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
long resident_bytes() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

troupe::Task<void> yielder(long n) {
  for (long i = 0; i < n; ++i) co_await troupe::sleep(0s);
}
troupe::Task<void> waiter(troupe::AsyncEvent& ev, std::atomic<long>& arrived) {
  arrived.fetch_add(1, std::memory_order_relaxed);
  co_await ev.wait();
}
// The background load of "workers active": yields until stopped, so that the workers never
// find their queues empty and never go to sleep.
troupe::Task<void> busy(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) co_await troupe::sleep(0s);
}

// The crawler shape (bench/asyncio_crawler.py): `requests` tasks gathered, each taking one of
// `inflight` semaphore units around a simulated request of `latency` (sleep; 0: a yield).
troupe::Task<int> fetch(troupe::AsyncSemaphore& sem, int i, std::chrono::microseconds latency) {
  co_await sem.acquire();
  co_await troupe::sleep(latency);
  sem.release();
  co_return 2 * i;
}
troupe::Task<std::vector<int>> crawl(int requests, int inflight, std::chrono::microseconds latency) {
  troupe::AsyncSemaphore sem(inflight);
  std::vector<troupe::Task<int>> tasks;
  tasks.reserve(static_cast<std::size_t>(requests));
  for (int i = 0; i < requests; ++i) tasks.push_back(fetch(sem, i, latency));
  co_return co_await troupe::gather(std::move(tasks));
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  int requests = 100'000, inflight = 1000, latency_us = 1000;
  bool only_crawl = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--only-crawl") == 0) only_crawl = true;
    if (!has_value) continue;
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--requests") == 0) requests = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--inflight") == 0) inflight = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--latency-us") == 0) latency_us = std::max(0, std::atoi(argv[i + 1]));
  }
  troupe::ThreadPool pool(2);

  // 0. The crawler shape of bench/asyncio_crawler.py, its answer checked.
  {
    std::vector<double> rate;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      const auto pages = troupe::run(pool, crawl(requests, inflight, std::chrono::microseconds(latency_us)), 600s);
      rate.push_back(requests / seconds_since(t0));
      for (int i = 0; i < requests; ++i) {
        if (pages[static_cast<std::size_t>(i)] != 2 * i) {
          std::fprintf(stderr, "troupe_coro_bench: crawl: wrong answer at %d\n", i);
          return 1;
        }
      }
    }
    char name[128];
    std::snprintf(name, sizeof name, "troupe_crawl_%dreq_%dinflight_%dus", requests, inflight, latency_us);
    result(name, "req/s", rate, requests);
  }
  if (only_crawl) return 0;
  constexpr long kOps = 50'000;

  // 1. Baseline: submit -> result from outside the pool (the pool's workers do the work).
  std::vector<double> rt;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    for (long i = 0; i < kOps; ++i) pool.submit([] {}).result(60s);
    rt.push_back(seconds_since(t0) * 1e6 / kOps);
  }
  const double roundtrip = result("pool_submit_result_roundtrip", "us", rt, kOps);
  // 1b. The same from inside a pool task (the worker waits, and runs the task itself).
  std::vector<double> rti;
  for (int r = 0; r < reps; ++r) {
    const double us = pool.submit([&] {
                            const auto t0 = Clock::now();
                            for (long i = 0; i < kOps; ++i) pool.submit([] {}).result(60s);
                            return seconds_since(t0) * 1e6 / kOps;
                          })
                          .result(120s);
    rti.push_back(us);
  }
  const double roundtrip_in = result("pool_submit_result_roundtrip_in_worker", "us", rti, kOps);

  // 2. One suspend + resume through the pool: co_await sleep(0s) (the task goes to the back
  // of its pool's queue and a worker resumes it).
  std::vector<double> sr;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    troupe::run(pool, yielder(kOps), 120s);
    sr.push_back(seconds_since(t0) * 1e6 / kOps);
  }
  const double suspend = result("coro_suspend_resume", "us", sr, kOps);
  std::printf("RATIO name=coro_suspend_resume_over_pool_roundtrip value=%.3g ranks=1\n", suspend / roundtrip);
  std::printf("RATIO name=coro_suspend_resume_over_pool_roundtrip_in_worker value=%.3g ranks=1\n",
              suspend / roundtrip_in);

  // 2b. The same three "with workers active": two tasks yielding in a loop keep both workers
  // awake (their queues are never empty), so neither a submit nor a resumption waits for a
  // worker's wake-up; each measured operation also waits its turn behind the load.
  {
    std::atomic<bool> stop{false};
    std::vector<troupe::Future<void>> load;
    for (int w = 0; w < 2; ++w) load.push_back(troupe::spawn(pool, busy(stop)));
    std::vector<double> rt_a, rti_a, sr_a;
    for (int r = 0; r < reps; ++r) {
      auto t0 = Clock::now();
      for (long i = 0; i < kOps; ++i) pool.submit([] {}).result(60s);
      rt_a.push_back(seconds_since(t0) * 1e6 / kOps);
      rti_a.push_back(pool.submit([&] {
                            const auto t1 = Clock::now();
                            for (long i = 0; i < kOps; ++i) pool.submit([] {}).result(60s);
                            return seconds_since(t1) * 1e6 / kOps;
                          })
                          .result(120s));
      t0 = Clock::now();
      troupe::run(pool, yielder(kOps), 120s);
      sr_a.push_back(seconds_since(t0) * 1e6 / kOps);
    }
    stop.store(true);
    for (auto& f : load) f.result(60s);
    const double a_rt = result("active_pool_submit_result_roundtrip", "us", rt_a, kOps);
    const double a_rti = result("active_pool_submit_result_roundtrip_in_worker", "us", rti_a, kOps);
    const double a_sr = result("active_coro_suspend_resume", "us", sr_a, kOps);
    std::printf("RATIO name=active_coro_suspend_resume_over_pool_roundtrip value=%.3g ranks=1\n", a_sr / a_rt);
    std::printf("RATIO name=active_coro_suspend_resume_over_pool_roundtrip_in_worker value=%.3g ranks=1\n",
                a_sr / a_rti);
  }

  // 3. 10^5 tasks suspended at once on an AsyncEvent: memory per task (resident set growth,
  // including the task's future; the first repetition only: later ones reuse the pages the
  // first freed) and the time to spawn them all and see them all complete.
  constexpr long kTasks = 100'000;
  std::vector<double> mem, all;
  for (int r = 0; r < reps; ++r) {
    troupe::AsyncEvent ev;
    std::atomic<long> arrived{0};
    std::vector<troupe::Future<void>> futures;
    futures.reserve(kTasks);
    const long before = resident_bytes();
    const auto t0 = Clock::now();
    for (long i = 0; i < kTasks; ++i) futures.push_back(troupe::spawn(pool, waiter(ev, arrived)));
    while (arrived.load() < kTasks) pool.submit([] {}).result(60s);  // lets the workers catch up
    pool.submit([] {}).result(60s);
    const long grown = resident_bytes() - before;
    ev.set();
    for (auto& f : futures) f.result(60s);
    all.push_back(seconds_since(t0));
    if (r == 0) mem.push_back(static_cast<double>(grown) / kTasks);
  }
  result("coro_bytes_per_suspended_task", "B", mem, kTasks);
  result("coro_1e5_tasks_spawn_suspend_complete", "s", all, kTasks);
  return 0;
}
