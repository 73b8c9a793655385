// nested_remote_tasks: recursive divide and conquer where tasks submit tasks, across ranks.
//
// Python equivalent (SCOOP allows tasks to submit tasks; run with `python -m scoop -n 4`):
//
//   from scoop import futures
//   def psum(lo, hi):                      # sum(range(lo, hi)), split in halves
//       if hi - lo <= CUTOFF:
//           return sum(range(lo, hi))
//       mid = (lo + hi) // 2
//       left = futures.submit(psum, lo, mid)
//       right = futures.submit(psum, mid, hi)
//       return left.result() + right.result()
//   print(futures.submit(psum, 0, 1 << 22).result())
//
// Inside a task, troupe::this_executor() is the executor of the rank the task runs on.
// A task submitted from a task goes to that rank first and spills to ranks with free
// capacity; a result() called from a worker runs other tasks while it waits, so deep
// recursion never deadlocks, even with one thread per rank. The leaves record the rank
// they ran on, so the output shows the work spreading.
//
//   mpirun -n 4 build/examples/example_nested_remote_tasks
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <troupe/executor/executor.hpp>
#include <troupe/runtime/runtime.hpp>
#include <troupe/wire/serialize.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {
using example::check;
using example::failures;

constexpr std::int64_t kCutoff = 1 << 14;  // below this a task sums serially

// A partial sum and the set of ranks that computed leaves of it (bit r = rank r).
struct Partial {
  std::int64_t sum = 0;
  std::uint64_t ranks = 0;
  std::int64_t leaves = 0;
  TROUPE_FIELDS(sum, ranks, leaves)
};

Partial psum(std::int64_t lo, std::int64_t hi) {
  if (hi - lo <= kCutoff) {
    Partial p;
    for (std::int64_t i = lo; i < hi; ++i) p.sum += i;
    p.ranks = std::uint64_t{1} << (troupe::Runtime::current()->rank() % 64);
    p.leaves = 1;
    return p;
  }
  troupe::Executor& ex = troupe::this_executor();  // the executor of the rank running this task
  const std::int64_t mid = lo + (hi - lo) / 2;
  // Named functions travel as troupe::remote<&f>: an id valid on every rank.
  auto left = ex.submit(troupe::remote<&psum>, lo, mid);
  auto right = ex.submit(troupe::remote<&psum>, mid, hi);
  const Partial a = left.result(60s);  // helps: runs other tasks while it waits
  const Partial b = right.result(60s);
  return {a.sum + b.sum, a.ranks | b.ranks, a.leaves + b.leaves};
}

// fib(n) with a cutoff: the classic example of tasks that wait for their children.
long fib(int n) {
  if (n < 15) {
    long x = 0, y = 1;
    for (int i = 0; i < n; ++i) {
      const long t = x + y;
      x = y;
      y = t;
    }
    return x;
  }
  auto& ex = troupe::this_executor();
  auto left = ex.submit(troupe::remote<&fib>, n - 1);
  const long right = fib(n - 2);  // do half the work here instead of waiting idle
  return left.result(60s) + right;
}
}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  troupe::Executor ex(rt);

  if (ex.is_root()) {
    std::printf("nested_remote_tasks on %d rank(s), %zu worker thread(s) in all\n", ex.size(), ex.workers());

    // 1. Parallel sum of 0 .. 2^22 - 1 by halving: 256 leaves, 511 tasks. -----------------
    const std::int64_t n = std::int64_t{1} << 22;
    const auto t0 = std::chrono::steady_clock::now();
    const Partial total = ex.submit(troupe::remote<&psum>, std::int64_t{0}, n).result(60s);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("1. psum(0, 2^22) = %lld (expected %lld) in %.1f ms; %lld leaves ran on rank(s):",
                static_cast<long long>(total.sum), static_cast<long long>(n * (n - 1) / 2), ms,
                static_cast<long long>(total.leaves));
    int ranks_used = 0;
    for (int r = 0; r < 64; ++r) {
      if ((total.ranks >> r) & 1U) {
        std::printf(" %d", r);
        ++ranks_used;
      }
    }
    std::printf("\n");
    check(total.sum == n * (n - 1) / 2, "the sum equals n(n-1)/2");
    check(total.leaves == n / kCutoff, "every leaf counted once");
    if (ex.size() > 1) check(ranks_used > 1, "the nested tasks spread beyond the root rank");

    // 2. fib(25) with a cutoff at 15. -------------------------------------------------------
    const long f = ex.submit(troupe::remote<&fib>, 25).result(60s);
    std::printf("2. fib(25) = %ld (expected 75025)\n", f);
    check(f == 75025, "fib(25) == 75025");

    std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  }

  ex.shutdown();
  return failures == 0 ? 0 : 1;
}
