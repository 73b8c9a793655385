// troupe::Barrier — Python's threading.Barrier: a reusable rendezvous for N threads.
//
// Four threads run three phases of a toy computation in lock step. The barrier's action
// (run by exactly one thread per generation, after all arrived and before any leaves)
// prints a phase summary. Then a party times out, which breaks the barrier for everyone,
// as in Python; reset() makes it usable again.
#include <troupe/sync/barrier.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
  constexpr int kThreads = 4;
  constexpr int kPhases = 3;
  std::array<std::atomic<long>, kThreads> partial{};
  std::atomic<int> phase{0};
  std::atomic<int> actions{0};

  // The action sees every thread's contribution for the phase: all parties arrived, and
  // none has been released yet.
  troupe::Barrier step(kThreads, [&] {
    long sum = 0;
    for (auto& p : partial) sum += p.load();
    std::printf("phase %d done, sum of partials = %ld\n", phase.load(), sum);
    phase.fetch_add(1);
    actions.fetch_add(1);
  });

  std::vector<std::thread> threads;
  std::atomic<int> index_zero_count{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int p = 0; p < kPhases; ++p) {
        partial[static_cast<std::size_t>(t)] += (t + 1) * (p + 1);  // "work"
        // wait() returns this thread's arrival index in [0, parties): exactly one thread
        // per generation gets 0, handy to pick a leader. Bounded, like every troupe wait.
        if (step.wait(5s) == 0) index_zero_count.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::printf("%d generations, the action ran %d times, index 0 was handed out %d times\n", kPhases, actions.load(),
              index_zero_count.load());

  // A timeout breaks the barrier for ALL parties: here two parties are expected, only one
  // comes, and its wait times out. Later waits fail at once until reset().
  troupe::Barrier pair(2);
  try {
    pair.wait(20ms);
  } catch (const troupe::BrokenBarrierError& e) {
    std::printf("timed-out party: BrokenBarrierError: %s\n", e.what());
  }
  bool later_failed = false;
  try {
    pair.wait(1s);  // does not wait: the barrier is broken
  } catch (const troupe::BrokenBarrierError&) {
    later_failed = true;
  }
  std::printf("broken() = %s, a later wait failed at once: %s\n", pair.broken() ? "true" : "false",
              later_failed ? "yes" : "no");
  pair.reset();
  std::printf("after reset(): broken() = %s\n", pair.broken() ? "true" : "false");

  const bool ok = actions == kPhases && index_zero_count == kPhases && later_failed && !pair.broken();
  std::puts(ok ? "barrier: OK" : "barrier: FAILED");
  return ok ? 0 : 1;
}
