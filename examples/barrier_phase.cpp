// troupe::Barrier across ranks and threads: every thread of every rank starts each phase
// together (Python's threading.Barrier, with the parties spread over MPI ranks).
//
// Two threads per rank run three phases. Before the barrier each party adds one to a
// troupe::Counter shared by all ranks; after it, every party must see all arrivals of the
// phase (nobody starts phase k+1 before everybody finished phase k). The last party to
// arrive runs the action once per phase, on whichever rank it lives.
//   mpirun -n 4 ./barrier_phase
#include <troupe/across/counter.hpp>
#include <troupe/runtime/runtime.hpp>
#include <troupe/sync/barrier.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "example_check.hpp"

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::Runtime rt(argc, argv, ro);
  constexpr int kThreads = 2;
  constexpr int kPhases = 3;
  const long parties = static_cast<long>(rt.size()) * kThreads;

  troupe::Counter arrived(troupe::Scope::RanksAndThreads);  // collective, like the barrier
  std::atomic<int> actions{0};
  troupe::Barrier start(troupe::Scope::RanksAndThreads, parties, [&] {
    actions.fetch_add(1);
    std::printf("[rank %d] last to arrive: phase complete on all %ld parties\n", rt.rank(), parties);
  });

  std::atomic<int> early{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int phase = 0; phase < kPhases; ++phase) {
        (void)arrived.next();   // "finish" this phase's work
        (void)start.wait(60s);  // everyone starts the next phase together
        if (arrived.value() < parties * (phase + 1)) early.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  example::check(early.load() == 0, "a party started a phase before all had finished the previous one");
  // The action ran once per phase in all (on some rank): sum over ranks.
  int total_actions = actions.load();
  MPI_Allreduce(MPI_IN_PLACE, &total_actions, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  example::check(total_actions == kPhases, "the action must run exactly once per phase");
  if (rt.rank() == 0) std::printf("%d phases x %ld parties in lock step\n", kPhases, parties);
  return example::failures == 0 ? 0 : 1;
}
