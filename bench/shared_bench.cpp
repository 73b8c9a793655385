// SharedArray against a private std::vector of the same size in the same run, and the
// SharedArray lock against std::mutex. Rank 0 prints
//   RESULT name=<key> unit=<unit> value=<best> reps=<n> ranks=<P>
// and `RATIO name=<key> value=<shared / private>` for each bandwidth figure.
//
// Bandwidth: one rank at a time measures (the others wait in a barrier, so the figure is
// one core's bandwidth, not shared with the others): a read pass sums the array (uint64),
// a write pass stores into every element; the same noinline kernel runs over the private
// vector and over the SharedArray, passes interleaved, best of --reps. Node rank 0 reads the
// array in its own segment; node rank 1 reads rank 0's segment ("another rank").
// Lock: uncontended acquire + release by one thread (rank 0, the others idle), against
// std::mutex; contended: every rank takes the lock and increments a plain counter in a loop.
// Atomics: fetch_add on a SharedArray element, uncontended and from every rank at once.
//
// Run: mpirun -n 2 build/bench/troupe_shared_bench [--mib 256] [--reps 5]
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "troupe/runtime/detail/rma_window.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/window/shared.hpp"

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

int g_rank = 0;
int g_size = 1;
MPI_Comm g_comm = MPI_COMM_NULL;

using bench::seconds_since;

__attribute__((noinline)) std::uint64_t read_sum(const std::uint64_t* p, std::size_t n) {
  std::uint64_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += p[i];
  return s;
}

__attribute__((noinline)) void write_all(std::uint64_t* p, std::size_t n, std::uint64_t v) {
  for (std::size_t i = 0; i < n; ++i) p[i] = v + i;
}

volatile std::uint64_t g_sink = 0;

// A rank waiting for the measuring one must not take a core from it (2 cores here).
void quiet_barrier() { bench::quiet_barrier(g_comm); }

void result(const std::string& name, const char* unit, double value, int reps) {
  if (g_rank == 0)
    std::printf("RESULT name=%s unit=%s value=%.4g reps=%d ranks=%d\n", name.c_str(), unit, value, reps, g_size);
}

void ratio(const std::string& name, double value) { bench::ratio(g_comm, name.c_str(), value); }

// Best GB/s of @p reps passes of the read and the write kernel over the private and the
// shared array, measured on rank @p who; sent to rank 0 for printing.
struct Bw {
  double read_private = 0, read_shared = 0, write_private = 0, write_shared = 0;
};

Bw measure(std::uint64_t* priv, std::uint64_t* shared, std::size_t n, int reps) {
  Bw best;
  const double gb = static_cast<double>(n * sizeof(std::uint64_t)) / 1e9;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    g_sink = g_sink + read_sum(priv, n);
    best.read_private = std::max(best.read_private, gb / seconds_since(t0));
    t0 = Clock::now();
    g_sink = g_sink + read_sum(shared, n);
    best.read_shared = std::max(best.read_shared, gb / seconds_since(t0));
    t0 = Clock::now();
    write_all(priv, n, static_cast<std::uint64_t>(r));
    best.write_private = std::max(best.write_private, gb / seconds_since(t0));
    t0 = Clock::now();
    write_all(shared, n, static_cast<std::uint64_t>(r));
    best.write_shared = std::max(best.write_shared, gb / seconds_since(t0));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt;
  MPI_Comm_dup(rt.node_comm(), &g_comm);
  MPI_Comm_rank(g_comm, &g_rank);
  MPI_Comm_size(g_comm, &g_size);
  const auto mib = static_cast<std::size_t>(bench::arg_long(argc, argv, "--mib", 256));
  const int reps = bench::reps_arg(argc, argv, 5);
  const std::size_t n = mib * 1024 * 1024 / sizeof(std::uint64_t);

  // ---- bandwidth
  {
    troupe::SharedArray<std::uint64_t> arr(n, 1, troupe::SharedOptions{.lock = false});
    std::vector<std::uint64_t> priv(n, 1);
    const int measured = std::min(g_size, 2);
    for (int who = 0; who < measured; ++who) {
      quiet_barrier();
      Bw bw;
      if (g_rank == who) bw = measure(priv.data(), arr.data(), n, reps);
      quiet_barrier();  // rank 0 waits here, napping, not spinning in MPI_Recv
      if (who != 0) {
        if (g_rank == who) MPI_Send(&bw, sizeof bw, MPI_BYTE, 0, 0, g_comm);
        if (g_rank == 0) MPI_Recv(&bw, sizeof bw, MPI_BYTE, who, 0, g_comm, MPI_STATUS_IGNORE);
      }
      const std::string seg = who == 0 ? "own_segment" : "other_rank_segment";
      result("shared.read_private_vector.rank" + std::to_string(who), "GB/s", bw.read_private, reps);
      result("shared.read_shared_array." + seg, "GB/s", bw.read_shared, reps);
      ratio("shared.read." + seg, bw.read_shared / bw.read_private);
      result("shared.write_private_vector.rank" + std::to_string(who), "GB/s", bw.write_private, reps);
      result("shared.write_shared_array." + seg, "GB/s", bw.write_shared, reps);
      ratio("shared.write." + seg, bw.write_shared / bw.write_private);
    }
    arr.barrier(60s);
  }

  // ---- lock and atomics
  {
    troupe::SharedArray<std::int64_t> cell(8);
    troupe::SharedLock& lock = cell.get_lock();
    constexpr long kOps = 2'000'000;
    // Uncontended, rank 0 alone.
    quiet_barrier();
    if (g_rank == 0) {
      double best_lock = 1e30, best_mutex = 1e30, best_fa = 1e30, best_local_fa = 1e30;
      std::mutex mu;
      std::atomic<std::int64_t> local{0};
      for (int r = 0; r < reps; ++r) {
        auto t0 = Clock::now();
        for (long i = 0; i < kOps; ++i) {
          lock.lock();
          cell[0] += 1;
          lock.unlock();
        }
        best_lock = std::min(best_lock, seconds_since(t0) / kOps * 1e9);
        t0 = Clock::now();
        for (long i = 0; i < kOps; ++i) {
          mu.lock();
          cell[1] += 1;
          mu.unlock();
        }
        best_mutex = std::min(best_mutex, seconds_since(t0) / kOps * 1e9);
        t0 = Clock::now();
        for (long i = 0; i < kOps; ++i) cell.fetch_add(2, 1);
        best_fa = std::min(best_fa, seconds_since(t0) / kOps * 1e9);
        t0 = Clock::now();
        for (long i = 0; i < kOps; ++i) local.fetch_add(1);
        best_local_fa = std::min(best_local_fa, seconds_since(t0) / kOps * 1e9);
      }
      result("shared.lock_uncontended", "ns", best_lock, reps);
      result("shared.std_mutex_uncontended", "ns", best_mutex, reps);
      ratio("shared.lock_vs_std_mutex", best_lock / best_mutex);
      result("shared.fetch_add_uncontended", "ns", best_fa, reps);
      result("shared.std_atomic_fetch_add", "ns", best_local_fa, reps);
      ratio("shared.fetch_add_vs_std_atomic", best_fa / best_local_fa);
    }
    quiet_barrier();
    // Contended: every rank at once; the figure is the wall time per operation of all ranks.
    constexpr long kContended = 200'000;
    double best_lock = 1e30, best_fa = 1e30;
    for (int r = 0; r < reps; ++r) {
      MPI_Barrier(g_comm);
      auto t0 = Clock::now();
      for (long i = 0; i < kContended; ++i) {
        lock.lock();
        cell[3] += 1;
        lock.unlock();
      }
      MPI_Barrier(g_comm);
      best_lock = std::min(best_lock, seconds_since(t0) / static_cast<double>(kContended * g_size) * 1e9);
      t0 = Clock::now();
      for (long i = 0; i < kContended; ++i) cell.fetch_add(4, 1);
      MPI_Barrier(g_comm);
      best_fa = std::min(best_fa, seconds_since(t0) / static_cast<double>(kContended * g_size) * 1e9);
    }
    cell.barrier(60s);
    const bool exact = cell.load(3) == static_cast<std::int64_t>(reps) * kContended * g_size &&
                       cell.load(4) == static_cast<std::int64_t>(reps) * kContended * g_size;
    result("shared.lock_contended_all_ranks", "ns/op", best_lock, reps);
    result("shared.fetch_add_contended_all_ranks", "ns/op", best_fa, reps);
    if (g_rank == 0 && !exact) std::printf("ERROR: the contended counts are not exact\n");
    cell.barrier(60s);
  }
  MPI_Comm_free(&g_comm);
  return 0;
}
