// executor_map: apply a function to every element of a range on the pool.
//
// Python equivalent:
//
//   with ThreadPoolExecutor(4) as ex:
//       squares = list(ex.map(square, range(1000), chunksize=50))      # ordered
//   with multiprocessing.Pool(4) as pool:
//       for r in pool.imap_unordered(square, range(1000)): ...           # completion order
//       pool.starmap(pow, [(2, 3), (3, 2), (10, 3)])                     # tuples as arguments
//
// ThreadPool::map submits every chunk at once and returns a MapResult, a lazy iterator:
// results come in input order; an element's exception is rethrown when that element is
// reached (the iteration ends there); MapOptions::timeout bounds the whole iteration;
// leaving a MapResult early cancels the chunks that have not started.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <list>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include <troupe/troupe.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {
using example::check;
using example::failures;
}  // namespace

int main() {
  troupe::ThreadPool pool(4);
  std::vector<int> inputs(1000);
  std::iota(inputs.begin(), inputs.end(), 0);
  auto square = [](int x) { return static_cast<long>(x) * x; };

  // 1. Ordered map with an explicit chunk size. ---------------------------------------
  // `inputs` is an lvalue vector: map reads it in place (no copy), so it must outlive the
  // MapResult. An rvalue or non-random-access range would be copied instead.
  std::printf("1. map (ordered, chunksize 50)\n");
  std::vector<long> squares = pool.map(square, inputs, {.chunksize = 50}).to_vector();
  bool in_order = squares.size() == inputs.size();
  for (std::size_t i = 0; in_order && i < squares.size(); ++i) in_order = squares[i] == square(inputs[i]);
  std::printf("   %zu results, squares[999] = %ld\n", squares.size(), squares.back());
  check(in_order, "map returns results in input order");

  // 2. Range-for over a map of a copied (rvalue, non-random-access) range. -------------
  std::printf("2. map over a std::list, consumed with range-for\n");
  long total = 0;
  for (long s : pool.map(square, std::list<int>{1, 2, 3, 4})) total += s;
  std::printf("   1+4+9+16 = %ld\n", total);
  check(total == 30, "range-for over map");

  // 3. map_unordered: completion order (chunk by chunk), same multiset of results. ---
  std::printf("3. map_unordered (Pool.imap_unordered)\n");
  auto unordered = pool.map_unordered(square, inputs).to_vector();
  std::sort(unordered.begin(), unordered.end());
  check(unordered == squares, "map_unordered gives the same results in some order");
  std::printf("   %zu results\n", unordered.size());

  // 4. starmap: each element is a tuple of arguments. ---------------------------------
  std::printf("4. starmap (Pool.starmap)\n");
  std::vector<std::tuple<double, double>> pairs = {{2, 3}, {3, 2}, {10, 3}};
  auto powers = pool.starmap([](double b, double e) { return std::pow(b, e); }, pairs).to_vector();
  std::printf("   pow: %g %g %g\n", powers[0], powers[1], powers[2]);
  check(powers == std::vector<double>{8, 9, 1000}, "starmap unpacks tuples");

  // 5. An exception surfaces at its element; the results before it are delivered. ----
  std::printf("5. exception at element 42\n");
  auto fragile = [](int x) {
    if (x == 42) throw std::domain_error("cannot handle 42");
    return x;
  };
  std::size_t delivered = 0;
  bool threw = false;
  try {
    for (int v : pool.map(fragile, inputs, {.chunksize = 10})) {
      check(v == static_cast<int>(delivered), "values before the failure are in order");
      ++delivered;
    }
  } catch (const std::domain_error& e) {  // the task's own exception type, not a wrapper
    std::printf("   %zu results, then std::domain_error: %s\n", delivered, e.what());
    threw = true;
  }
  check(threw && delivered == 42, "exactly the 42 results before the failing element");

  // 6. A timeout for the whole iteration (Python's map(timeout=...)). ----------------
  std::printf("6. timeout\n");
  auto slow = [](int x) {
    std::this_thread::sleep_for(20ms);
    return x;
  };
  bool timed_out = false;
  try {
    auto r = pool.map(slow, std::vector<int>(40, 1), {.chunksize = 1, .timeout = 50ms});
    while (r.next()) {
    }
  } catch (const troupe::TimeoutError& e) {
    std::printf("   TimeoutError: %s\n", e.what());
    timed_out = true;
  }
  check(timed_out, "map throws TimeoutError after its timeout");

  // 7. Leaving early cancels the chunks not yet started. -----------------------------
  std::printf("7. break out of a map early\n");
  std::atomic<int> calls{0};
  {
    auto counted = [&calls](int x) {
      calls.fetch_add(1);
      std::this_thread::sleep_for(1ms);
      return x;
    };
    int taken = 0;
    for (int v : pool.map(counted, inputs, {.chunksize = 1})) {
      (void)v;
      if (++taken == 3) break;  // the MapResult dies here: unstarted chunks are cancelled
    }
  }
  std::printf("   %d of %zu calls ran\n", calls.load(), inputs.size());
  check(calls.load() < static_cast<int>(inputs.size()) / 2, "most chunks were cancelled, not run");

  // 8. Bad arguments are ValueError, named by the API. -------------------------------
  std::printf("8. argument checks\n");
  try {
    (void)pool.map(square, inputs, {.chunksize = 0});
    check(false, "chunksize 0 is rejected");
  } catch (const troupe::ValueError& e) {
    std::printf("   ValueError: %s\n", e.what());
  }

  // 9. The loop forms: parallel_reduce is map + reduce without materialising results. -
  std::printf("9. parallel_reduce\n");
  long sum_sq = pool.parallel_reduce(0, 1000, 0L, std::plus<>{}, [&](int i) { return square(i); });
  long expect = std::accumulate(squares.begin(), squares.end(), 0L);
  std::printf("   sum of squares 0..999 = %ld\n", sum_sq);
  check(sum_sq == expect, "parallel_reduce agrees with map + accumulate");

  std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  return failures == 0 ? 0 : 1;
}
