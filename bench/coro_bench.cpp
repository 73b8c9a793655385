// Coroutines (issue 11): the cost of one suspend + resume through the pool against a pool
// submit -> result round trip, memory per suspended task, and 10^5 suspended tasks at once.
// Plain main printing RESULT / RATIO lines (the format of bench/bench_util.hpp); no MPI.
//   troupe_coro_bench [--reps N]
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

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::max(1, std::atoi(argv[i + 1]));
  }
  troupe::ThreadPool pool(2);
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
