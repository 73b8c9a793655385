// nested_tasks: tasks that submit tasks and wait for them, without deadlock.
//
// Python equivalent (which deadlocks once every worker waits on a child queued behind it):
//
//   ex = ThreadPoolExecutor(max_workers=1)
//   def fib(n):
//       if n < 2: return n
//       left = ex.submit(fib, n - 1)       # queued behind the task that waits for it...
//       return left.result() + fib(n - 2)  # ...so this blocks forever
//
// In troupe, a result() / wait() called from a pool worker runs other pool tasks while it
// waits ("helping"), and a task submitted from a worker goes to that worker's own deque
// (run LIFO, stolen FIFO by idle workers). So divide-and-conquer code can submit and wait
// at any depth, even on a pool of one thread. SCOOP allows the same; TBB and Taskflow do
// it with task groups.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <numeric>
#include <vector>

#include <troupe/troupe.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {
using example::check;
using example::failures;

long fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

// Recursive fork-join: one half becomes a task, this thread does the other half.
long fib(troupe::ThreadPool& pool, int n) {
  if (n < 18) return fib_serial(n);  // below the cutoff a task costs more than it saves
  troupe::Future<long> left = pool.submit([&pool, n] { return fib(pool, n - 1); });
  const long right = fib(pool, n - 2);
  return left.result() + right;  // in a worker: runs other tasks until `left` is done
}

// Divide and conquer over a range: sum of v[lo, hi).
std::int64_t tree_sum(troupe::ThreadPool& pool, const std::vector<std::int64_t>& v, std::size_t lo, std::size_t hi) {
  if (hi - lo <= 4096)
    return std::accumulate(v.begin() + static_cast<std::ptrdiff_t>(lo), v.begin() + static_cast<std::ptrdiff_t>(hi),
                           std::int64_t{0});
  const std::size_t mid = lo + (hi - lo) / 2;
  auto left = pool.submit([&pool, &v, lo, mid] { return tree_sum(pool, v, lo, mid); });
  auto right = pool.submit([&pool, &v, mid, hi] { return tree_sum(pool, v, mid, hi); });
  return left.result() + right.result();
}
}  // namespace

int main() {
  const long expected_fib = fib_serial(30);

  // 1. Recursive submit + result at several pool sizes, one worker included. ----------
  std::printf("1. recursive fib(30): submit + result inside tasks\n");
  for (std::size_t workers : {1, 2, 4}) {
    troupe::ThreadPool pool(workers);
    // Start from a task, as a real program would; main() waiting is the ordinary case.
    auto f = pool.submit([&pool] { return fib(pool, 30); });
    const long got = f.result(10s);  // bounded: a deadlock would show as TimeoutError
    std::uint64_t steals = 0;
    for (const auto& w : pool.stats().workers) steals += w.steals;
    std::printf("   %zu worker(s): fib(30) = %ld, steals = %llu\n", workers, got,
                static_cast<unsigned long long>(steals));
    check(got == expected_fib, "nested fib is right at every pool size");
  }

  // 2. Divide and conquer over data. -------------------------------------------------
  std::printf("2. tree sum of 1..1'000'000\n");
  troupe::ThreadPool pool(4);
  std::vector<std::int64_t> data(1'000'000);
  std::iota(data.begin(), data.end(), std::int64_t{1});
  const std::int64_t s = pool.submit([&] { return tree_sum(pool, data, 0, data.size()); }).result(10s);
  std::printf("   sum = %lld\n", static_cast<long long>(s));
  check(s == std::int64_t{1'000'000} * 1'000'001 / 2, "tree sum");

  // 3. parallel_for inside tasks: a worker that calls it takes part in the loop. -------
  std::printf("3. parallel_for nested in tasks\n");
  std::vector<std::vector<int>> grid(8, std::vector<int>(10'000, 1));
  std::vector<troupe::Future<void>> rows;
  for (auto& row : grid) {
    rows.push_back(pool.submit(
        [&pool, &row] { pool.parallel_for(std::size_t{0}, row.size(), [&row](std::size_t i) { row[i] *= 2; }); }));
  }
  check(troupe::wait(rows, 10s).not_done.empty(), "all rows finished");
  long cells = 0;
  for (const auto& row : grid) cells += std::accumulate(row.begin(), row.end(), 0L);
  std::printf("   sum of doubled cells = %ld\n", cells);
  check(cells == 2L * 8 * 10'000, "nested parallel_for touched every cell once");

  // 4. shutdown(): outside submits are refused, children of running tasks still run. ---
  // Python's shutdown refuses both; troupe accepts the children so that work already
  // accepted can finish (a task that fans out must not fail half-way through).
  std::printf("4. shutdown with a task that still fans out\n");
  std::latch parent_started(1);
  std::latch go(1);
  auto parent = pool.submit([&] {
    parent_started.count_down();
    go.wait();  // main() shuts the pool down meanwhile
    std::vector<troupe::Future<int>> kids;
    for (int i = 1; i <= 4; ++i) kids.push_back(pool.submit([i] { return i * i; }));  // accepted
    int total = 0;
    for (auto& k : kids) total += k.result();
    return total;
  });
  parent_started.wait();
  pool.shutdown(/*wait=*/false);
  try {
    pool.submit([] { return 0; });
    check(false, "a submit from outside the pool after shutdown is refused");
  } catch (const troupe::InvalidStateError& e) {
    std::printf("   outside submit: InvalidStateError: %s\n", e.what());
  }
  go.count_down();
  const int kids_total = parent.result(10s);
  std::printf("   children submitted after shutdown ran: 1+4+9+16 = %d\n", kids_total);
  check(kids_total == 30, "children of an accepted task run after shutdown");

  std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  return failures == 0 ? 0 : 1;
}
