// semaphore_ranks: a Semaphore limits how many threads of all ranks use a resource at once.
//
// Python equivalent (threads of one process; troupe makes the same code span ranks):
//
//   import threading
//   slots = threading.BoundedSemaphore(2)
//   def worker():
//       for _ in range(10):
//           if slots.acquire(timeout=30):
//               try: use_resource()
//               finally: slots.release()
//
// troupe::BoundedSemaphore(troupe::Scope::RanksAndThreads, 2): the counter lives on rank 0;
// an acquire that finds no unit is queued there and served in arrival order. The example
// proves the bound: every holder counts itself in and out of a counter on rank 0 with an
// atomic MPI_Fetch_and_op, and the largest count seen must never exceed 2. It then times an
// uncontended acquire + release from rank 0 (no message) and from the last rank (two round
// trips), next to a raw MPI ping-pong and an MPI_Barrier measured in the same run.
//
//   mpirun -n 4 build/examples/example_semaphore_ranks
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include <troupe/runtime/runtime.hpp>
#include <troupe/sync/event.hpp>
#include <troupe/sync/semaphore.hpp>

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

  constexpr int kSlots = 2;
  troupe::BoundedSemaphore slots(troupe::Scope::RanksAndThreads, kSlots);  // collective

  // Counters on rank 0: [0] holders now, [1] most holders seen, [2] uses in all.
  std::int64_t* base = nullptr;
  MPI_Win win;
  MPI_Win_allocate(rank == 0 ? 3 * sizeof(std::int64_t) : 0, sizeof(std::int64_t), MPI_INFO_NULL, comm, &base, &win);
  if (rank == 0) base[0] = base[1] = base[2] = 0;
  MPI_Barrier(comm);
  MPI_Win_lock_all(0, win);
  auto add = [&](int i, std::int64_t d) {  // atomic; returns the old value (d = 0 reads)
    std::int64_t old = 0;
    MPI_Fetch_and_op(&d, &old, MPI_INT64_T, 0, i, MPI_SUM, win);
    MPI_Win_flush(0, win);
    return old;
  };

  constexpr int kThreads = 2;
  constexpr int kUses = 10;
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < kUses; ++i) {
        if (!slots.acquire(30s)) {
          check(false, "a slot within 30 s");
          return;
        }
        const std::int64_t now = add(0, 1) + 1;  // "use the resource": count in, note the peak
        MPI_Accumulate(&now, 1, MPI_INT64_T, 0, 1, 1, MPI_INT64_T, MPI_MAX, win);
        MPI_Win_flush(0, win);
        add(2, 1);
        add(0, -1);
        slots.release();
      }
    });
  }
  for (auto& w : workers) w.join();
  MPI_Barrier(comm);
  if (rank == 0) {
    std::printf("semaphore_ranks on %d rank(s): %lld uses by %d thread(s), at most %lld at once (bound %d)\n", size,
                static_cast<long long>(add(2, 0)), kThreads * size, static_cast<long long>(add(1, 0)), kSlots);
    check(add(1, 0) <= kSlots, "never more holders than the semaphore's value");
    check(add(2, 0) == std::int64_t{kThreads} * kUses * size, "every use happened");
    check(add(0, 0) == 0, "every holder left");
  }
  check(slots.value() == kSlots, "every unit is back");
  bool refused = false;
  try {
    slots.release();  // one release too many: refused, nothing changed
  } catch (const troupe::ValueError&) {
    refused = true;
  }
  check(refused, "an over-release throws ValueError");
  MPI_Win_unlock_all(win);
  MPI_Win_free(&win);

  // Figures: uncontended acquire + release, from rank 0 (the host) and from the last rank.
  constexpr int kRounds = 500;
  troupe::Semaphore one(troupe::Scope::Ranks, 1);
  // The ranks not timing sleep on an Event meanwhile (an MPI_Barrier would spin and take a
  // core from the ranks that are timed: 2 cores here).
  troupe::Event done0(troupe::Scope::Ranks), done1(troupe::Scope::Ranks);
  double local = 0, remote = 0;
  for (int who : {0, size - 1}) {
    troupe::Event& done = who == 0 ? done0 : done1;
    MPI_Barrier(comm);
    if (rank == who) {
      const auto t0 = Clock::now();
      for (int i = 0; i < kRounds; ++i) {
        if (!one.acquire(30s)) check(false, "an uncontended acquire");
        one.release();
      }
      (who == 0 ? local : remote) = micros(Clock::now() - t0) / kRounds;
      done.set();
    } else {
      check(done.wait(60s), "the timed loop ended");
    }
  }
  MPI_Bcast(&remote, 1, MPI_DOUBLE, size - 1, comm);
  const int peer = size - 1;
  MPI_Barrier(comm);
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
        "figures (%d ranks): acquire+release on the host rank %.2f us; from rank %d %.1f us = %.1f x MPI "
        "0-byte ping-pong (%.1f us), %.1f x MPI_Barrier (%.1f us)\n",
        size, local, peer, remote, remote / mpi_rtt, mpi_rtt, remote / barrier, barrier);
  }
  MPI_Comm_free(&comm);
  return failures == 0 ? 0 : 1;
}
