// pool_executor_map: mpi4py.futures' Executor.map over every rank × every thread.
//
// Python equivalent (run with `mpiexec -n 4 python -m mpi4py.futures prog.py`):
//
//   from mpi4py import MPI
//   from mpi4py.futures import MPIPoolExecutor
//   def square(x):
//       return MPI.COMM_WORLD.Get_rank(), x * x
//   if __name__ == "__main__":
//       with MPIPoolExecutor() as ex:
//           for rank, y in ex.map(square, range(2000), chunksize=50):
//               ...                                    # results in input order
//           print(list(ex.map(pow, [2] * 10, range(10))))
//           print(sorted(ex.map(abs, range(-5, 5), unordered=True)))
//
// troupe::Executor::map(fn, range, {.chunksize, .timeout}) yields the results in input
// order as they arrive (range-for, next(), or to_vector()); each chunk is one task sent to
// a rank with free capacity. map_unordered yields in completion order; starmap unpacks
// tuples, like itertools.starmap. An element's exception is rethrown when it is reached.
//
//   mpirun -n 4 build/examples/example_pool_executor_map
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <troupe/executor/executor.hpp>
#include <troupe/runtime/runtime.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {
using example::check;
using example::failures;

// A named function, sent as troupe::remote<&square>: its identity is valid on every rank.
std::pair<int, long> square(long x) { return {troupe::Runtime::current()->rank(), x * x}; }
}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  troupe::Executor ex(rt);

  if (ex.is_root()) {
    std::printf("pool_executor_map on %d rank(s), %zu worker thread(s) in all\n", ex.size(), ex.workers());

    // 1. Ordered map over range(2000), in chunks of 50: 40 tasks. ---------------------------
    // (A std::vector of the indices: std::views::iota would do, but clang 14 cannot compile
    // libstdc++ 12's views; docs/portability.md.)
    std::vector<long> range2000(2000);
    std::iota(range2000.begin(), range2000.end(), 0L);
    std::map<int, int> per_rank;  // rank -> elements it computed
    long expect = 0;
    bool in_order = true;
    for (auto [rank, y] : ex.map(troupe::remote<&square>, range2000, {.chunksize = 50, .timeout = 30s})) {
      in_order = in_order && y == expect * expect;
      ++expect;
      ++per_rank[rank];
    }
    std::printf("1. map(square, range(2000), chunksize=50): %ld results, in order: %s\n", expect,
                in_order ? "yes" : "no");
    for (auto [rank, n] : per_rank) std::printf("   rank %d computed %d elements\n", rank, n);
    check(expect == 2000 && in_order, "every result, in input order");

    // 2. starmap: pow(2, i) over tuples, collected with to_vector(). -----------------------
    std::vector<std::tuple<double, double>> args;
    for (int i = 0; i < 10; ++i) args.emplace_back(2.0, i);
    const auto powers = ex.starmap([](double b, double e) { return std::pow(b, e); }, args).to_vector();
    std::printf("2. starmap(pow, [(2, i) for i in range(10)]):");
    for (double p : powers) std::printf(" %g", p);
    std::printf("\n");
    check(powers.size() == 10 && powers[9] == 512.0, "pow(2, 9) == 512");

    // 3. map_unordered: completion order; the multiset of results is the same. --------------
    std::vector<int> in;
    for (int i = -5; i < 5; ++i) in.push_back(i);
    auto out = ex.map_unordered([](int x) { return x < 0 ? -x : x; }, in, {.chunksize = 1}).to_vector();
    std::sort(out.begin(), out.end());
    std::printf("3. sorted(map_unordered(abs, range(-5, 5))):");
    for (int v : out) std::printf(" %d", v);
    std::printf("\n");
    check(out == std::vector<int>({0, 1, 1, 2, 2, 3, 3, 4, 4, 5}), "the same multiset as the serial map");

    // 4. An exception surfaces when its element is reached; earlier results still arrive. ---
    auto results = ex.map(
        [](int x) {
          if (x == 3) throw std::domain_error("no square root of element " + std::to_string(x));
          return x;
        },
        std::vector<int>{0, 1, 2, 3, 4}, {.chunksize = 1});
    int got = 0;
    try {
      while (auto v = results.next()) {
        check(*v == got, "results before the failing element are in order");
        ++got;
      }
      check(false, "the exception of element 3 is rethrown");
    } catch (const std::domain_error& e) {
      std::printf("4. after %d results: std::domain_error: %s\n", got, e.what());
      check(got == 3, "elements 0, 1 and 2 came first");
    }

    std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  }

  ex.shutdown();
  return failures == 0 ? 0 : 1;
}
