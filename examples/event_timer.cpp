// troupe::Event and troupe::Timer — Python's threading.Event and threading.Timer.
//
// A worker thread waits for a "go" Event with a bounded wait; a Timer sets the event after
// a short delay. A second Timer, a watchdog, is cancelled before it fires. Prints what
// happens and exits 0 when everything behaved as documented.
#include <troupe/sync/event.hpp>
#include <troupe/sync/timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

int main() {
  troupe::Event go;  // starts cleared, like threading.Event()
  std::atomic<bool> worker_ok{false};

  std::thread worker([&] {
    // Every wait is bounded: a lost set() shows up as a clear failure, never a hang.
    if (go.wait(5s)) {
      std::puts("worker: got the go signal");
      worker_ok = true;
    } else {
      std::puts("worker: timed out waiting for the go signal");
    }
  });

  // threading.Timer(0.05, go.set).start()
  troupe::Timer starter(50ms, [&] {
    std::puts("timer: 50 ms elapsed, setting the event");
    go.set();
  });
  starter.start();

  // A watchdog that would complain if the work took more than 10 s. The work finishes
  // first, so cancel() stops it: the function never runs.
  std::atomic<bool> watchdog_fired{false};
  troupe::Timer watchdog(10s, [&] { watchdog_fired = true; });
  watchdog.start();

  worker.join();
  const bool prevented = watchdog.cancel();  // true: cancelled before it fired
  std::printf("watchdog cancelled before firing: %s\n", prevented ? "yes" : "no");

  // join() waits for the timer to finish (its function returned, or it was cancelled).
  if (!starter.join(5s) || !watchdog.join(5s)) {
    std::puts("error: a timer did not finish");
    return 1;
  }
  // cancel() after the function ran is a no-op, exactly like Python.
  std::printf("cancel() after the starter fired changes nothing: %s\n", starter.cancel() ? "changed" : "no-op");

  // An Event can be cleared and waited on again; a timed wait returns false on timeout.
  go.clear();
  const bool again = go.wait(20ms);
  std::printf("after clear(), wait(20ms) returns %s\n", again ? "true" : "false");

  const bool ok = worker_ok && prevented && !watchdog_fired && !again;
  std::puts(ok ? "event_timer: OK" : "event_timer: FAILED");
  return ok ? 0 : 1;
}
