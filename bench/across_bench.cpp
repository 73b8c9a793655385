// Cross-rank Barrier, Counter and Lock against raw MPI in the same run. Every rank takes
// part; rank 0 prints
//   RESULT name=<key> unit=<unit> value=<median> reps=<n> min=<..> max=<..> n=<ops> ranks=<P>
// and, for each troupe figure, `RATIO name=<key> value=<troupe / raw MPI>`.
// Run: mpirun -n 2 build-bench/bench/troupe_across_bench [--reps 5]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "troupe/across/counter.hpp"
#include "troupe/across/lock.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/sync/barrier.hpp"
#include "troupe/sync/event.hpp"

using Clock = std::chrono::steady_clock;

namespace {

int g_rank = 0;
int g_size = 1;
MPI_Comm g_comm = MPI_COMM_NULL;  // a private duplicate for the baselines and the timing

using bench::median;

// The slowest rank's time per operation in microseconds, per rep.
template <class Body>
std::vector<double> time_reps(int reps, long n, Body body) {
  return bench::slowest_us_per_op(g_comm, reps, n, body);
}

double report(const char* name, const std::vector<double>& reps, long n) {
  return bench::report(g_comm, name, "us", reps, n);
}

void ratio(const char* name, double troupe_us, double mpi_us) { bench::ratio(g_comm, name, troupe_us / mpi_us); }

// One int64 on rank 0 in an MPI_Win_allocate window, one passive lock_all epoch.
struct Window {
  MPI_Win win = MPI_WIN_NULL;
  std::int64_t* base = nullptr;
  Window() {
    MPI_Win_allocate(g_rank == 0 ? 8 : 0, 8, MPI_INFO_NULL, g_comm, &base, &win);
    if (g_rank == 0) *base = 0;
    MPI_Barrier(g_comm);
  }
  ~Window() { MPI_Win_free(&win); }
};

}  // namespace

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::Runtime rt(argc, argv, ro);
  const int reps = bench::reps_arg(argc, argv, 5);
  MPI_Comm_dup(rt.comm(), &g_comm);
  g_rank = rt.rank();
  g_size = rt.size();

  // --- Barrier: MPI_Barrier vs troupe::Barrier(Scope::Ranks) ---------------------------------
  {
    const long n = 20'000;
    const double mpi = report("barrier.mpi_barrier",
                              time_reps(reps, n,
                                        [](long k) {
                                          for (long i = 0; i < k; ++i) MPI_Barrier(g_comm);
                                        }),
                              n);
    MPI_Comm ib = MPI_COMM_NULL;
    MPI_Comm_dup(g_comm, &ib);
    const double ibar = report("barrier.mpi_ibarrier_test",
                               time_reps(reps, n,
                                         [ib](long k) {
                                           for (long i = 0; i < k; ++i) {
                                             MPI_Request req;
                                             MPI_Ibarrier(ib, &req);
                                             int done = 0;
                                             while (!done) MPI_Test(&req, &done, MPI_STATUS_IGNORE);
                                           }
                                         }),
                               n);
    MPI_Comm_free(&ib);
    troupe::Barrier b(troupe::Scope::Ranks, rt.size());
    const double tb = report("barrier.troupe_ranks",
                             time_reps(reps, n,
                                       [&b](long k) {
                                         for (long i = 0; i < k; ++i) (void)b.wait();
                                       }),
                             n);
    ratio("barrier.troupe_vs_mpi_barrier", tb, mpi);
    ratio("barrier.troupe_vs_mpi_ibarrier_test", tb, ibar);
  }

  // --- Counter: MPI_Fetch_and_op + flush vs troupe::Counter::next, every rank at once ------------
  {
    const long n = 100'000;
    Window w;
    MPI_Win_lock_all(MPI_MODE_NOCHECK, w.win);
    const double mpi = report("counter.mpi_fetch_and_op",
                              time_reps(reps, n,
                                        [&w](long k) {
                                          const std::int64_t one = 1;
                                          std::int64_t old = 0;
                                          for (long i = 0; i < k; ++i) {
                                            MPI_Fetch_and_op(&one, &old, MPI_INT64_T, 0, 0, MPI_SUM, w.win);
                                            MPI_Win_flush(0, w.win);
                                          }
                                        }),
                              n);
    MPI_Win_unlock_all(w.win);
    troupe::Counter c(troupe::Scope::Ranks);
    const double tc = report("counter.troupe_next",
                             time_reps(reps, n,
                                       [&c](long k) {
                                         for (long i = 0; i < k; ++i) (void)c.next();
                                       }),
                             n);
    ratio("counter.troupe_vs_mpi_fetch_and_op", tc, mpi);
  }

  // --- Lock under contention: every rank takes it, reads and writes rank 0's cell, releases ---
  {
    const long n = 2'000;
    Window w;
    // Baseline: MPI's own exclusive passive-target lock around the same get + put.
    const double mpi = report("lock.mpi_win_lock_exclusive",
                              time_reps(reps, n,
                                        [&w](long k) {
                                          for (long i = 0; i < k; ++i) {
                                            MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, w.win);
                                            std::int64_t v = 0;
                                            MPI_Get(&v, 1, MPI_INT64_T, 0, 0, 1, MPI_INT64_T, w.win);
                                            MPI_Win_flush(0, w.win);
                                            ++v;
                                            MPI_Put(&v, 1, MPI_INT64_T, 0, 0, 1, MPI_INT64_T, w.win);
                                            MPI_Win_unlock(0, w.win);
                                          }
                                        }),
                              n);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, w.win);
    troupe::Lock lock(troupe::Scope::Ranks);
    const double tl = report("lock.troupe_acquire_release",
                             time_reps(reps, n,
                                       [&](long k) {
                                         for (long i = 0; i < k; ++i) {
                                           lock.acquire();
                                           std::int64_t v = 0;
                                           MPI_Get(&v, 1, MPI_INT64_T, 0, 0, 1, MPI_INT64_T, w.win);
                                           MPI_Win_flush(0, w.win);
                                           ++v;
                                           MPI_Put(&v, 1, MPI_INT64_T, 0, 0, 1, MPI_INT64_T, w.win);
                                           MPI_Win_flush(0, w.win);
                                           lock.release();
                                         }
                                       }),
                             n);
    MPI_Win_unlock_all(w.win);
    ratio("lock.troupe_vs_mpi_win_lock", tl, mpi);
    // The hand-over alone: every rank takes and gives back the lock, no RMA inside.
    (void)report("lock.troupe_contended_empty",
                 time_reps(reps, n,
                           [&](long k) {
                             for (long i = 0; i < k; ++i) {
                               lock.acquire();
                               lock.release();
                             }
                           }),
                 n);
    // Uncontended: rank 0 alone (the host: no message), then the last rank alone (one round
    // trip per acquire and per release). The other ranks meanwhile wait in troupe (on an
    // Event the timed rank sets), as a rank does that waits for its turn; a rank spinning in
    // a blocking MPI call instead leaves the host's progress thread only the time slices the
    // scheduler takes from it on a core bound to one rank.
    troupe::Event done0(troupe::Scope::Ranks);
    troupe::Event done1(troupe::Scope::Ranks);
    for (int who : {0, rt.size() - 1}) {
      troupe::Event& done = who == 0 ? done0 : done1;
      double us = 0;
      MPI_Barrier(g_comm);
      if (rt.rank() != who) (void)done.wait(std::chrono::seconds(600));
      if (rt.rank() == who) {
        std::vector<double> v;
        for (int r = 0; r < reps; ++r) {
          const auto t0 = Clock::now();
          for (long i = 0; i < n; ++i) {
            lock.acquire();
            lock.release();
          }
          v.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / static_cast<double>(n));
        }
        us = median(v);
        done.set();
      }
      MPI_Allreduce(MPI_IN_PLACE, &us, 1, MPI_DOUBLE, MPI_MAX, g_comm);
      if (g_rank == 0) {
        std::printf("RESULT name=lock.uncontended_rank%d unit=us value=%.4g reps=%d n=%ld ranks=%d\n", who, us, reps, n,
                    g_size);
      }
    }
  }
  MPI_Comm_free(&g_comm);
  return 0;
}
