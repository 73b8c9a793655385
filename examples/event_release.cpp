// event_release: one rank sets an Event; the waiting threads of every rank are released.
//
// Python equivalent (threads of one process; troupe makes the same code span ranks):
//
//   import threading
//   go = threading.Event()
//   def worker():
//       assert go.wait(timeout=30)
//   ts = [threading.Thread(target=worker) for _ in range(2)]
//   for t in ts: t.start()
//   go.set()
//   for t in ts: t.join()
//
// With troupe::Event(troupe::Scope::Ranks) the flag lives on rank 0; a wait() that finds it
// clear is parked there and set() from any rank answers every parked wait of every rank.
// The example also times the set -> wake latency with a ping-pong of events between rank 0
// and the last rank, next to a raw MPI ping-pong and an MPI_Barrier measured in the same run.
//
//   mpirun -n 4 build/examples/example_event_release
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include <troupe/runtime/runtime.hpp>
#include <troupe/sync/event.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
using example::check;
using example::failures;

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }
}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  const int rank = rt.rank();
  const int size = rt.size();
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);

  // 1. One rank sets, every thread of every rank is released.
  troupe::Event go(troupe::Scope::Ranks);  // collective: every rank builds it
  std::atomic<int> released{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 2; ++t) {
    workers.emplace_back([&] {
      if (go.wait(30s)) released.fetch_add(1);
    });
  }
  MPI_Barrier(comm);
  if (rank == size - 1) go.set();  // the last rank gives the signal
  for (auto& w : workers) w.join();
  int total = 0;
  const int mine = released.load();
  MPI_Reduce(&mine, &total, 1, MPI_INT, MPI_SUM, 0, comm);
  if (rank == 0) {
    std::printf("event_release on %d rank(s): rank %d set the event, %d of %d waiting threads released\n", size,
                size - 1, total, 2 * size);
    check(total == 2 * size, "every waiting thread of every rank is released");
  }
  check(go.is_set(), "the event stays set until clear()");

  // 2. Figures: set -> wake latency (ping-pong of events between rank 0 and the last rank).
  constexpr int kRounds = 200;
  const int peer = size - 1;
  std::vector<std::unique_ptr<troupe::Event>> ping, pong;
  for (int i = 0; i < kRounds; ++i) {  // collective, in the same order everywhere
    ping.push_back(std::make_unique<troupe::Event>(troupe::Scope::Ranks));
    pong.push_back(std::make_unique<troupe::Event>(troupe::Scope::Ranks));
  }
  // The ranks not timing sleep on an Event meanwhile (an MPI_Barrier would spin and take a
  // core from the ranks that are timed: 2 cores here).
  troupe::Event done(troupe::Scope::Ranks);
  MPI_Barrier(comm);
  const auto t0 = Clock::now();
  bool ok = true;
  if (size > 1 && (rank == 0 || rank == peer)) {
    for (int i = 0; i < kRounds; ++i) {
      if (rank == 0) {
        ping[i]->set();
        ok = ok && pong[i]->wait(30s);
      } else {
        ok = ok && ping[i]->wait(30s);
        pong[i]->set();
      }
    }
    if (rank == 0) done.set();
  } else if (size > 1) {
    ok = done.wait(60s);
  }
  const double event_rtt = micros(Clock::now() - t0) / kRounds;
  check(ok, "every ping-pong wait was answered");
  MPI_Barrier(comm);
  // The same ping-pong with zero-byte MPI messages, and MPI_Barrier.
  const auto t1 = Clock::now();
  if (size > 1 && (rank == 0 || rank == peer)) {
    for (int i = 0; i < kRounds; ++i) {
      if (rank == 0) {
        MPI_Send(nullptr, 0, MPI_BYTE, peer, 0, comm);
        MPI_Recv(nullptr, 0, MPI_BYTE, peer, 0, comm, MPI_STATUS_IGNORE);
      } else {
        MPI_Recv(nullptr, 0, MPI_BYTE, 0, 0, comm, MPI_STATUS_IGNORE);
        MPI_Send(nullptr, 0, MPI_BYTE, 0, 0, comm);
      }
    }
  }
  const double mpi_rtt = micros(Clock::now() - t1) / kRounds;
  MPI_Barrier(comm);
  const auto t2 = Clock::now();
  for (int i = 0; i < kRounds; ++i) MPI_Barrier(comm);
  const double barrier = micros(Clock::now() - t2) / kRounds;
  if (rank == 0 && size > 1) {
    std::printf(
        "figures (%d ranks): event ping-pong round trip %.1f us (two set->wake), MPI 0-byte ping-pong %.1f us "
        "(ratio %.1f), MPI_Barrier %.1f us (ratio %.1f)\n",
        size, event_rtt, mpi_rtt, event_rtt / mpi_rtt, barrier, event_rtt / barrier);
  }
  MPI_Comm_free(&comm);
  return failures == 0 ? 0 : 1;
}
