#pragma once
// The timing and reporting helpers every MPI benchmark of the project shares: the slowest
// rank's time per repetition, the median over repetitions, and the RESULT / RATIO lines that
// scripts/bench*.sh and bench/summarize.py read. Header-only; benchmarks only.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace bench {

/// The median of @p v (the upper one for an even count); @p v must not be empty.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Runs @p body(n) on every rank of @p comm at once, @p reps times (a barrier before each);
/// returns, per repetition, the slowest rank's time in seconds.
template <class Body>
std::vector<double> slowest_seconds(MPI_Comm comm, int reps, long n, Body&& body) {
  std::vector<double> out;
  for (int r = 0; r < reps; ++r) {
    MPI_Barrier(comm);
    const auto t0 = std::chrono::steady_clock::now();
    body(n);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_DOUBLE, MPI_MAX, comm);
    out.push_back(s);
  }
  return out;
}

/// slowest_seconds() as microseconds per operation (@p n operations per repetition).
template <class Body>
std::vector<double> slowest_us_per_op(MPI_Comm comm, int reps, long n, Body&& body) {
  auto v = slowest_seconds(comm, reps, n, std::forward<Body>(body));
  for (double& s : v) s = s * 1e6 / static_cast<double>(n);
  return v;
}

/// Prints `RESULT name=... unit=... value=<median> reps min max n ranks` on rank 0 of @p comm;
/// returns the median.
inline double report(MPI_Comm comm, const char* name, const char* unit, const std::vector<double>& v, long n) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const double med = median(v);
  if (rank == 0) {
    std::printf("RESULT name=%s unit=%s value=%.4g reps=%zu min=%.4g max=%.4g n=%ld ranks=%d\n", name, unit, med,
                v.size(), *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()), n, size);
    std::fflush(stdout);
  }
  return med;
}

/// Prints `RATIO name=... value=... ranks=...` on rank 0 of @p comm.
inline void ratio(MPI_Comm comm, const char* name, double value) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (rank == 0) {
    std::printf("RATIO name=%s value=%.3g ranks=%d\n", name, value, size);
    std::fflush(stdout);
  }
}

/// The value of `--reps N` on the command line (at least 1), or @p fallback.
inline int reps_arg(int argc, char** argv, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0) return std::max(1, std::atoi(argv[i + 1]));
  }
  return fallback;
}

}  // namespace bench
