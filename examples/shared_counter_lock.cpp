// shared_counter_lock: a counter shared by every rank and thread of a node, incremented
// without and with its lock.
//
// Python equivalent:
//
//   from multiprocessing import Process, Value
//   def unsafe(counter, n):
//       for _ in range(n):
//           counter.value += 1          # read, add, write: two processes can interleave
//   def safe(counter, n):
//       for _ in range(n):
//           with counter.get_lock():
//               counter.value += 1
//   counter = Value('i', 0)             # lock=True by default
//
// Without the lock `x = x + 1` is a load and a store; two ranks that load the same x
// both store x + 1 and one increment is lost. How many are lost depends on the scheduling
// (on 2 cores with 4 ranks, often many; with 1 rank and 1 thread, none), so the example
// prints the count and asserts nothing about it. With the lock (a process-shared futex
// word in the same segment) the count is exact, and the example checks that.
//
//   mpirun -n 4 build/examples/example_shared_counter_lock
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include <troupe/runtime/runtime.hpp>
#include <troupe/window/shared.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int kThreads = 2;
constexpr int kUnlocked = 1'000'000;  // long enough for the ranks to overlap
constexpr int kIncrements = 20'000;

template <class Fn>
void on_threads(Fn fn) {
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) ts.emplace_back(fn);
  for (auto& t : ts) t.join();
}

}  // namespace

int main() {
  troupe::Runtime rt;
  using example::check;

  troupe::SharedValue<std::int64_t> counter(0);  // counter = Value('q', 0)
  const std::int64_t expected_unlocked = std::int64_t{kThreads} * kUnlocked * rt.node_size();
  const std::int64_t expected = std::int64_t{kThreads} * kIncrements * rt.node_size();

  // 1. Without the lock: a relaxed load, then a relaxed store (a plain `x = x + 1` that the
  //    compiler may not fold into one instruction).
  counter.barrier(30s);  // start together
  on_threads([&] {
    std::atomic_ref<std::int64_t> x(counter.value());
    for (int i = 0; i < kUnlocked; ++i) x.store(x.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  });
  counter.barrier(30s);
  const std::int64_t unlocked = counter.load();
  if (rt.rank() == 0) {
    std::printf(
        "without the lock: %lld of %lld increments counted (%lld lost; losing some is allowed, not "
        "guaranteed)\n",
        static_cast<long long>(unlocked), static_cast<long long>(expected_unlocked),
        static_cast<long long>(expected_unlocked - unlocked));
  }
  check(unlocked <= expected_unlocked, "no increment is counted twice");
  counter.barrier(30s);  // every rank has read before the reset
  if (rt.node_rank() == 0) counter.store(0);
  counter.barrier(30s);

  // 2. With the lock: `with counter.get_lock(): counter.value += 1`.
  on_threads([&] {
    for (int i = 0; i < kIncrements; ++i) {
      std::lock_guard<troupe::SharedLock> guard(counter.get_lock());
      counter.value() = counter.value() + 1;
    }
  });
  counter.barrier(30s);
  const std::int64_t locked = counter.load();
  if (rt.rank() == 0) {
    std::printf("with the lock:    %lld of %lld increments counted\n", static_cast<long long>(locked),
                static_cast<long long>(expected));
  }
  check(locked == expected, "with the lock every increment is counted");
  counter.barrier(30s);
  return example::failures == 0 ? 0 : 1;
}
