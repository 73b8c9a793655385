// wait_first_completed: block until the first of several futures is done (or fails).
//
// Python equivalent:
//
//   done, not_done = wait(futures, timeout=5, return_when=FIRST_COMPLETED)
//   done, not_done = wait(futures, return_when=FIRST_EXCEPTION)
//   done, not_done = wait(futures, timeout=0.05)        # ALL_COMPLETED; no exception
//
// troupe::wait returns {done, not_done} (input order kept in each). Like Python, reaching
// the timeout is not an error: wait returns the sets as they are. when_any / when_all are
// the non-blocking forms: they return a future instead of waiting.
//
// The "slow" tasks below wait on a std::latch that main() opens, so what is done at each
// point is certain, not a matter of timing. The pool has a worker per task so that a
// blocked task never keeps another from starting.
#include <chrono>
#include <cstdio>
#include <latch>
#include <stdexcept>
#include <string>
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

  // 1. FIRST_COMPLETED: the fast replica answers; the slow ones are still running. ----
  std::printf("1. ReturnWhen::FirstCompleted\n");
  std::latch open_slow(1);
  auto slow_replica = [&open_slow](std::string name) {
    open_slow.wait();
    return name;
  };
  std::vector<troupe::Future<std::string>> replicas = {
      pool.submit(slow_replica, std::string("replica-a")),
      pool.submit([] { return std::string("replica-b (fast)"); }),
      pool.submit(slow_replica, std::string("replica-c")),
  };
  auto [done, not_done] = troupe::wait(replicas, 5s, troupe::ReturnWhen::FirstCompleted);
  std::printf("   done: %zu, not done: %zu; first answer: %s\n", done.size(), not_done.size(),
              done.empty() ? "-" : done.front().result().c_str());
  check(done.size() == 1 && done.front() == replicas[1], "only the fast replica is done");
  check(not_done.size() == 2, "the slow replicas are not done");
  open_slow.count_down();

  // ALL_COMPLETED (the default) with no timeout: everything.
  auto all = troupe::wait(replicas);
  check(all.done.size() == 3 && all.not_done.empty(), "AllCompleted waits for every future");

  // 2. FIRST_EXCEPTION: return as soon as one task fails. -----------------------------
  std::printf("2. ReturnWhen::FirstException\n");
  std::latch open_work(1);
  std::vector<troupe::Future<int>> steps = {
      pool.submit([&open_work] {
        open_work.wait();
        return 1;
      }),
      pool.submit([]() -> int { throw std::runtime_error("step 2: disk full"); }),
      pool.submit([&open_work] {
        open_work.wait();
        return 3;
      }),
  };
  auto failed = troupe::wait(steps, 5s, troupe::ReturnWhen::FirstException);
  check(failed.done.size() == 1 && failed.done.front() == steps[1], "the failing step is the one done");
  try {
    failed.done.front().result();
  } catch (const std::runtime_error& e) {
    std::printf("   returned early because: %s (%zu still running)\n", e.what(), failed.not_done.size());
  }

  // 3. A timeout is not an error for wait(): look at the sets. ------------------------
  std::printf("3. timeout\n");
  auto partial = troupe::wait(steps, 30ms);  // AllCompleted, but two are blocked
  std::printf("   after 30 ms: %zu done, %zu not done (no exception)\n", partial.done.size(), partial.not_done.size());
  check(partial.not_done.size() == 2, "wait returns the unfinished futures at the timeout");
  open_work.count_down();
  check(troupe::wait(steps, 5s).not_done.empty(), "all steps finish once released");

  // 4. when_any / when_all: the same questions as futures (no blocking). --------------
  std::printf("4. when_any / when_all\n");
  troupe::Promise<int> late;
  std::vector<troupe::Future<int>> racers = {late.get_future(), pool.submit([] { return 42; })};
  troupe::Future<troupe::WhenAnyResult<int>> first = troupe::when_any(racers);
  const auto& winner = first.result(5s);  // result() returns a const reference
  std::printf("   when_any: input #%zu won with %d\n", winner.index, winner.futures[winner.index].result());
  check(winner.index == 1, "the pool task beats the promise nobody set yet");
  late.set_result(7);

  auto both = troupe::when_all(pool.submit([] { return 6; }), pool.submit([] { return std::string("x"); }));
  const auto& [six, ex] = both.result(5s);
  std::printf("   when_all: %d and %s\n", six.result(), ex.result().c_str());
  check(six.result() == 6 && ex.result() == "x", "when_all of two types gives a tuple of futures");

  // 5. A negative timeout is a bug, reported as ValueError (Python would clamp it to 0).
  std::printf("5. negative timeout\n");
  try {
    (void)troupe::wait(steps, -1s);
    check(false, "negative timeout rejected");
  } catch (const troupe::ValueError& e) {
    std::printf("   ValueError: %s\n", e.what());
  }

  std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  return failures == 0 ? 0 : 1;
}
