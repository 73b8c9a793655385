// scoop_map_reduce: SCOOP's mapReduce over every rank × every thread.
//
// Python equivalent (SCOOP's own example, run with `python -m scoop -n 4 prog.py`):
//
//   from scoop import futures
//   import operator
//   def main():
//       data = [[a] * a for a in range(1000)]           # a list of 1000 lists
//       return futures.mapReduce(sum, operator.add, data)
//
// troupe::Executor::map_reduce(map_fn, reduce_fn, range) cuts the input into chunks; each
// chunk is sent to some rank, mapped and reduced there left to right, and the partial
// results are combined on the root by a tree that keeps the input order, so reduce_fn only
// has to be associative (SCOOP's rule too). Unlike SCOOP it is defined for an empty input
// (returns `.initial`, or throws ValueError without one) and for a single element.
//
// Root-driven shape (mpi4py's MPICommExecutor, SCOOP): every rank builds the Executor;
// rank 0 runs the program under `if (ex.is_root())`; the other ranks serve tasks until
// the collective ex.shutdown().
//
//   mpirun -n 4 build/examples/example_scoop_map_reduce
#include <cstdio>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include <troupe/core/error.hpp>
#include <troupe/executor/executor.hpp>
#include <troupe/runtime/runtime.hpp>

#include "example_check.hpp"

namespace {
using example::check;
using example::failures;
}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  troupe::Executor ex(rt);  // collective: every rank

  if (ex.is_root()) {
    std::printf("scoop_map_reduce on %d rank(s), %zu worker thread(s) in all\n", ex.size(), ex.workers());

    // 1. SCOOP's example, element for element: the lists themselves travel to the ranks. ---
    std::vector<std::vector<long>> data;
    data.reserve(1000);
    for (long a = 0; a < 1000; ++a) data.emplace_back(static_cast<std::size_t>(a), a);  // [a] * a

    // map: sum(list); reduce: operator.add. Lambdas without captures can be sent anywhere.
    const long total = ex.map_reduce(
        [](const std::vector<long>& xs) { return std::accumulate(xs.begin(), xs.end(), 0L); }, std::plus<long>{}, data);
    // sum(a * a for a in range(1000)) = 999 * 1000 * 1999 / 6
    const long expected = 999L * 1000L * 1999L / 6L;
    std::printf("1. mapReduce(sum, add, [[a]*a for a in range(1000)]) = %ld (expected %ld)\n", total, expected);
    check(total == expected, "the distributed sum equals the closed form");

    // 2. The same, sending only `a`: each task builds its list where it runs. --------------
    std::vector<int> as(1000);
    std::iota(as.begin(), as.end(), 0);
    const long total2 = ex.map_reduce(
        [](int a) {
          const std::vector<long> list(static_cast<std::size_t>(a), a);  // [a] * a, built remotely
          return std::accumulate(list.begin(), list.end(), 0L);
        },
        std::plus<long>{}, as, {.chunksize = 50});  // 20 tasks of 50 elements
    std::printf("2. the lists built on the executing rank, chunksize 50: %ld\n", total2);
    check(total2 == expected, "building the lists remotely gives the same sum");

    // 3. Order is kept: string concatenation is associative but not commutative. ----------
    const std::string abc = ex.map_reduce([](int i) { return std::string(1, static_cast<char>('a' + i)); },
                                          [](std::string l, const std::string& r) { return l + r; },
                                          std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {.chunksize = 2});
    std::printf("3. ordered reduction of letters: %s\n", abc.c_str());
    check(abc == "abcdefghijklm", "the tree reduction keeps the input order");

    // 4. Edge cases SCOOP raises on: an empty input with an initial value, and without. ----
    const long empty =
        ex.map_reduce([](int a) { return long{a}; }, std::plus<long>{}, std::vector<int>{}, {.initial = 0L});
    check(empty == 0, "an empty input returns the initial value");
    try {
      (void)ex.map_reduce([](int a) { return long{a}; }, std::plus<long>{}, std::vector<int>{});
      check(false, "an empty input without initial value throws");
    } catch (const troupe::ValueError& e) {
      std::printf("4. empty input, no initial value -> ValueError: %s\n", e.what());
    }

    std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  }

  ex.shutdown();  // collective: the serving ranks leave here once the root is done
  return failures == 0 ? 0 : 1;
}
