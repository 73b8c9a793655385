// callbacks: react to a future's completion instead of waiting for it.
//
// Python equivalent:
//
//   f = ex.submit(work)
//   f.add_done_callback(lambda f: print("done:", f.result()))    # in order of addition
//   f.add_done_callback(lambda f: 1 / 0)      # logged by concurrent.futures, then ignored
//
// (and, for then(), what asyncio / Java call chaining: fut.then(fn) is a future of fn(value)).
//
// Rules shown here:
//   * callbacks run in order of addition, in the thread that completes the future
//     (a pool worker), or at once in the caller if the future is already done;
//   * an exception escaping a callback is reported on stderr and the next callback runs;
//   * then(fn) runs inline in the completing thread too, so keep it short; a failure
//     skips value-taking continuations and reaches the end of the chain.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
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
  // Line-buffer stdout so that the stderr report in part 2 shows up where it happens.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  troupe::ThreadPool pool(2);

  // 1. Order and thread of callbacks. -------------------------------------------------
  // The task waits for `attached` so that every callback is in place before it finishes;
  // they then run in the worker that completes it.
  std::printf("1. add_done_callback: order and thread\n");
  std::latch attached(1);
  std::thread::id worker_id;
  auto f = pool.submit([&] {
    worker_id = std::this_thread::get_id();
    attached.wait();
    return 21;
  });
  std::mutex mu;
  std::vector<std::string> log;
  std::vector<std::thread::id> ran_on;
  // The future is marked done *before* its callbacks run (as in Python), so f.wait()
  // alone does not mean they ran; the last callback completes this promise instead.
  troupe::Promise<void> all_ran;
  for (const char* name : {"first", "second", "third"}) {
    f.add_done_callback([&, name](const troupe::Future<int>& done) {
      std::lock_guard lock(mu);
      log.push_back(std::string(name) + "=" + std::to_string(done.result()));
      ran_on.push_back(std::this_thread::get_id());
      if (log.size() == 3) all_ran.set_result();
    });
  }
  attached.count_down();
  all_ran.get_future().result(5s);
  {
    std::lock_guard lock(mu);
    for (const auto& entry : log) std::printf("   %s\n", entry.c_str());
    check(log == std::vector<std::string>{"first=21", "second=21", "third=21"}, "callbacks run in order of addition");
    bool on_worker = ran_on.size() == 3;
    for (auto id : ran_on) on_worker = on_worker && id == worker_id;
    check(on_worker, "callbacks run in the thread that completed the future");
  }

  // Added after completion: runs at once, in this thread, before add_done_callback returns.
  std::thread::id late_on;
  f.add_done_callback([&late_on] { late_on = std::this_thread::get_id(); });  // fn() form
  check(late_on == std::this_thread::get_id(), "a callback on a done future runs immediately in the caller");
  std::printf("   late callback ran in main: %s\n", late_on == std::this_thread::get_id() ? "yes" : "no");

  // 2. A throwing callback is reported on stderr; the others still run. ---------------
  std::printf("2. a callback that throws (expect one '[troupe] exception escaped' line on stderr)\n");
  troupe::Promise<int> p;  // a Promise is the producer side: complete it yourself
  int after = 0;
  p.get_future().add_done_callback([] { throw std::runtime_error("callback bug"); });
  p.get_future().add_done_callback([&after](const troupe::Future<int>& g) { after = g.result(); });
  p.set_result(5);  // callbacks run right here, in the completing thread
  check(after == 5, "the callback after a throwing one still runs");

  // 3. then(): continuations. ---------------------------------------------------------
  std::printf("3. then()\n");
  auto text = pool.submit([] { return 20; })
                  .then([](int x) { return x + 1; })  // takes the value
                  .then([](int x) { return "answer: " + std::to_string(2 * x); });
  std::printf("   %s\n", text.result(5s).c_str());
  check(text.result() == "answer: 42", "then chains values");

  // A failure skips value continuations and reaches the end of the chain.
  std::atomic<bool> skipped_ran{false};
  auto broken = pool.submit([]() -> int { throw std::out_of_range("no such key"); }).then([&skipped_ran](int x) {
    skipped_ran = true;
    return x;
  });
  try {
    broken.result(5s);
    check(false, "the error reaches the end of the chain");
  } catch (const std::out_of_range& e) {
    std::printf("   error propagated through then(): %s\n", e.what());
  }
  check(!skipped_ran, "a value continuation is skipped after a failure");

  // A continuation that takes the future itself always runs: use it to recover.
  auto recovered =
      pool.submit([]() -> int { throw std::out_of_range("no such key"); }).then([](const troupe::Future<int>& g) {
        try {
          return g.result();
        } catch (const std::out_of_range&) {
          return -1;  // a default, as dict.get(key, -1)
        }
      });
  std::printf("   recovered value: %d\n", recovered.result(5s));
  check(recovered.result() == -1, "a future-taking continuation can recover");

  // Future<void> works the same way.
  std::atomic<int> side{0};
  auto v = pool.submit([&side] { side = 1; }).then([&side] { side = side + 1; });
  v.result(5s);
  check(side == 2, "Future<void> continuations");

  // 4. Copies share one state: a callback on any copy sees the one result. ------------
  std::printf("4. futures are shared handles\n");
  auto original = pool.submit([] { return std::string("shared"); });
  troupe::Future<std::string> copy = original;
  const std::string& r1 = original.result();
  const std::string& r2 = copy.result();  // result() may be called again, from any copy
  check(&r1 == &r2 && original == copy, "copies refer to the same result");
  std::printf("   both copies see '%s' (same object: %s)\n", r1.c_str(), &r1 == &r2 ? "yes" : "no");

  std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  return failures == 0 ? 0 : 1;
}
