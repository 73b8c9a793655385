// apply_async_callbacks: multiprocessing.Pool.apply_async with callback and error_callback,
// over every rank × every thread.
//
// Python equivalent:
//
//   from multiprocessing import Pool
//   def inverse(x):
//       if x == 0: raise ZeroDivisionError("1/0")
//       return 1.0 / x
//   results, errors = [], []
//   with Pool() as pool:
//       for x in range(-10, 11):
//           pool.apply_async(inverse, (x,), callback=results.append, error_callback=errors.append)
//       r = pool.map_async(abs, range(-3, 3), callback=print)
//       pool.close()
//       pool.join()            # every task has ended and every callback has run
//
// Executor::apply_async(fn, std::tuple{args...}, callback, error_callback) returns the
// task's troupe::Future too. The callback gets the value, the error callback a
// std::exception_ptr; either runs on the submitting rank, in the thread that completes
// the future (not the main thread), so what they touch must be thread-safe. A remote
// exception names the rank it came from: "[rank 1/4 on host] std::domain_error: ...".
// close() stops new submissions; join() (collective) waits for the work to end.
//
//   mpirun -n 4 build/examples/example_apply_async_callbacks
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <troupe/core/error.hpp>
#include <troupe/executor/executor.hpp>
#include <troupe/future/wait.hpp>
#include <troupe/runtime/runtime.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {
using example::check;
using example::failures;

// Returns (rank that ran it, 1/x); std::domain_error for 0 (C++ has no ZeroDivisionError).
std::pair<int, double> inverse(int x) {
  std::this_thread::sleep_for(2ms);  // a little work, so tasks spread over the ranks
  if (x == 0) throw std::domain_error("1/0 is undefined");
  return {troupe::Runtime::current()->rank(), 1.0 / x};
}
}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  troupe::Executor ex(rt);

  // Shared with callbacks, which run on other threads of the root rank: lock or atomics.
  std::mutex mu;
  std::vector<double> results;
  std::vector<std::string> errors;
  std::set<int> ranks;
  std::atomic<int> callbacks{0};
  std::atomic<bool> map_callback{false};
  std::vector<troupe::Future<std::pair<int, double>>> futures;

  if (ex.is_root()) {
    std::printf("apply_async_callbacks on %d rank(s), %zu worker thread(s) in all\n", ex.size(), ex.workers());

    // 1. apply (blocking): Pool.apply. ---------------------------------------------------
    const auto [who, half] = ex.apply(troupe::remote<&inverse>, 2);
    std::printf("1. apply(inverse, (2,)) = %g (ran on rank %d)\n", half, who);
    check(half == 0.5, "apply returns the value");

    // 2. apply_async with callback and error_callback for x in [-10, 10]. -----------------
    for (int x = -10; x <= 10; ++x) {
      futures.push_back(ex.apply_async(
          troupe::remote<&inverse>, std::tuple{x},
          [&](const std::pair<int, double>& r) {  // callback(value)
            {
              std::lock_guard lock(mu);
              results.push_back(r.second);
              ranks.insert(r.first);
            }
            callbacks.fetch_add(1);
          },
          [&](std::exception_ptr e) {  // error_callback(exception)
            try {
              std::rethrow_exception(e);
            } catch (const std::exception& err) {
              std::lock_guard lock(mu);
              errors.emplace_back(err.what());
            }
            callbacks.fetch_add(1);
          }));
    }

    // 3. map_async: one future of the whole (ordered) result list; a done-callback on it
    //    plays the part of Pool.map_async's callback. ------------------------------------
    auto all = ex.map_async([](int x) { return x < 0 ? -x : x; }, std::vector<int>{-3, -2, -1, 0, 1, 2});
    all.add_done_callback([&](const troupe::Future<std::vector<int>>& f) {
      if (!f.exception()) map_callback.store(true);
    });
    const std::vector<int> abs_values = all.result(30s);
    std::printf("3. map_async(abs, range(-3, 3)).get():");
    for (int v : abs_values) std::printf(" %d", v);
    std::printf("\n");
    check(abs_values == std::vector<int>({3, 2, 1, 0, 1, 2}), "map_async keeps the input order");

    ex.close();  // Pool.close(): no more submissions from here
  }

  ex.join();  // Pool.join(), collective: returns once every task everywhere has ended

  if (ex.is_root()) {
    // A callback runs just after its future turns done, so wait for the futures, then for
    // the callbacks (bounded, like every wait in an example).
    (void)troupe::wait(futures, 30s);
    const auto until = std::chrono::steady_clock::now() + 30s;
    while ((callbacks.load() < static_cast<int>(futures.size()) || !map_callback.load()) &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(1ms);
    }
    std::lock_guard lock(mu);
    std::printf("2. apply_async over range(-10, 11): %zu callback(s), %zu error_callback(s), from rank(s):",
                results.size(), errors.size());
    for (int r : ranks) std::printf(" %d", r);
    std::printf("\n");
    for (const auto& e : errors) std::printf("   error_callback got: %s\n", e.c_str());
    double sum = 0;
    for (double v : results) sum += v;  // 1/x and 1/-x cancel
    check(results.size() == 20 && errors.size() == 1, "20 results and 1 error, each reported once");
    check(map_callback.load(), "map_async's done-callback ran");
    check(sum > -1e-9 && sum < 1e-9, "the inverses of -10..10 (without 0) sum to 0");
    check(errors.size() == 1 && errors[0].find("1/0 is undefined") != std::string::npos, "the error keeps its message");
    std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  }

  ex.shutdown();  // already done by join(); shutdown is idempotent
  return failures == 0 ? 0 : 1;
}
