// cancellation: stop work that is no longer wanted.
//
// Python equivalent:
//
//   f = ex.submit(work); f.cancel()            # only succeeds before the task starts
//   ex.shutdown(wait=False, cancel_futures=True)
//   stop = threading.Event()                   # cooperative stop flag checked by tasks
//
// troupe's CancellationToken *is* std::stop_token (and CancellationSource is
// std::stop_source): no wrapper, so a std::jthread's token works too. Pass a token to
//   * ThreadPool::parallel_for / parallel_reduce (ForOptions/ReduceOptions::token): chunks
//     not yet started are skipped and the call throws troupe::CancelledError;
//   * Future::result(timeout, token): the *wait* ends with CancelledError (the task itself
//     keeps running unless it looks at a token too);
//   * your own tasks, which check token.stop_requested() at convenient points.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <latch>
#include <stop_token>
#include <thread>
#include <vector>

#include <troupe/troupe.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {
using example::check;
using example::failures;
}  // namespace

int main() {
  // 1. Future::cancel(): possible only while the task waits in the queue. -------------
  std::printf("1. Future::cancel\n");
  {
    troupe::ThreadPool pool(1);  // one worker, so the second task must queue
    std::latch started(1);
    std::latch release(1);
    auto busy = pool.submit([&] {
      started.count_down();
      release.wait();
      return 1;
    });
    started.wait();
    std::atomic<bool> ran{false};
    auto queued = pool.submit([&ran] { ran = true; });
    const bool cancelled_queued = queued.cancel();
    const bool cancelled_running = busy.cancel();
    std::printf("   cancel(queued) = %d, cancel(running) = %d, running() = %d\n", cancelled_queued, cancelled_running,
                busy.running());
    check(cancelled_queued && queued.cancelled() && queued.done(), "a queued task can be cancelled");
    check(!cancelled_running && busy.running(), "a running task cannot");
    release.count_down();
    try {
      queued.result();
      check(false, "result() of a cancelled future throws");
    } catch (const troupe::CancelledError& e) {
      std::printf("   CancelledError: %s\n", e.what());
    }
    check(busy.result(5s) == 1, "the running task finished normally");
    pool.shutdown();
    check(!ran, "the cancelled task never ran");
  }

  troupe::ThreadPool pool(4);

  // 2. A token stops a parallel_for: chunks not started are skipped. ------------------
  std::printf("2. parallel_for with a CancellationToken\n");
  {
    troupe::CancellationSource source;
    const std::size_t n = 1'000'000;
    std::atomic<std::size_t> visited{0};
    bool cancelled = false;
    try {
      pool.parallel_for(std::size_t{0}, n,
                        [&](std::size_t lo, std::size_t hi) {  // chunk form
                          for (std::size_t i = lo; i < hi; ++i) {
                            if (i == 5'000) source.request_stop();  // "found it": nobody needs the rest
                            if (source.stop_requested()) return;    // also leave the current chunk early
                            visited.fetch_add(1, std::memory_order_relaxed);
                          }
                        },
                        {.grain = 1'000, .token = source.get_token()});
    } catch (const troupe::CancelledError& e) {
      std::printf("   CancelledError: %s\n", e.what());
      cancelled = true;
    }
    std::printf("   visited %zu of %zu indices\n", visited.load(), n);
    check(cancelled, "parallel_for reports the cancellation");
    check(visited.load() < n / 2, "most of the range was skipped");
  }

  // 3. A token ends a *wait*; the task stops only if it looks at a token itself. ------
  std::printf("3. Future::result(timeout, token)\n");
  {
    troupe::CancellationSource give_up;   // ends the wait below
    troupe::CancellationSource stop_job;  // checked by the job between its steps
    auto job = pool.submit([token = stop_job.get_token()] {
      long steps = 0;
      while (!token.stop_requested() && steps < 1'000'000) {  // ~100 s if never stopped
        std::this_thread::sleep_for(100us);
        ++steps;
      }
      return steps;  // what it has done so far
    });
    // Someone else decides to give up after 20 ms: a user pressing Ctrl-C, a deadline...
    std::jthread canceller([&give_up] {
      std::this_thread::sleep_for(20ms);
      give_up.request_stop();
    });
    bool wait_cancelled = false;
    try {
      job.result(5s, give_up.get_token());
    } catch (const troupe::CancelledError& e) {
      std::printf("   the wait ended: %s\n", e.what());
      wait_cancelled = true;
    }
    check(wait_cancelled, "the token ended the wait");
    // Ending a wait does not cancel the future: the job is still running.
    std::printf("   job.running() = %d after the wait was cancelled\n", job.running());
    check(job.running(), "the job keeps running");
    stop_job.request_stop();  // now stop the job itself
    const long steps = job.result(5s);
    std::printf("   the job stopped itself after %ld steps; job.cancelled() = %d\n", steps, job.cancelled());
    check(!job.cancelled() && steps < 1'000'000, "the job ended early and normally");
  }

  // 4. An already-stopped token: nothing runs. ----------------------------------------
  std::printf("4. parallel_reduce with a stopped token\n");
  {
    troupe::CancellationSource source;
    source.request_stop();
    std::atomic<int> calls{0};
    try {
      (void)pool.parallel_reduce(
          0, 1000, 0, [](int a, int b) { return a + b; },
          [&calls](int i) {
            ++calls;
            return i;
          },
          {.token = source.get_token()});
      check(false, "parallel_reduce throws CancelledError");
    } catch (const troupe::CancelledError&) {
      std::printf("   CancelledError, %d transform calls\n", calls.load());
    }
    check(calls == 0, "no chunk runs under a stopped token");
  }

  // 5. shutdown(cancel_futures=true): drop everything still queued. ------------------
  std::printf("5. shutdown(wait=false, cancel_futures=true)\n");
  {
    troupe::ThreadPool small(1);
    std::latch started(1);
    std::latch release(1);
    auto busy = small.submit([&] {
      started.count_down();
      release.wait();
      return 7;
    });
    started.wait();
    std::vector<troupe::Future<int>> backlog;
    for (int i = 0; i < 5; ++i) backlog.push_back(small.submit([i] { return i; }));
    small.shutdown(/*wait=*/false, /*cancel_futures=*/true);
    int cancelled = 0;
    for (auto& f : backlog) cancelled += f.cancelled() ? 1 : 0;
    std::printf("   %d of %zu queued tasks cancelled; the running one continues\n", cancelled, backlog.size());
    check(cancelled == 5, "every queued task was cancelled at once");
    release.count_down();
    check(busy.result(5s) == 7, "the running task completed");
  }  // ~ThreadPool joins the worker

  std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  return failures == 0 ? 0 : 1;
}
