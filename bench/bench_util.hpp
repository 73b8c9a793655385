#pragma once
// The timing, measuring and reporting helpers every benchmark of the project shares: the
// slowest rank's time per repetition, the median / min / max over repetitions, the RESULT /
// RATIO lines that scripts/bench*.sh and bench/summarize.py read, CPU time, peak memory, the
// load average, command-line options and a barrier that does not spin. Header-only;
// benchmarks only (one helper per job: add here rather than in a bench).
#include <dirent.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#if __has_include("troupe/runtime/detail/rma_window.hpp")  // not in the raw-MPI baseline
#include "troupe/core/deadline.hpp"
#include "troupe/runtime/detail/rma_window.hpp"
#define TROUPE_BENCH_WITH_TROUPE 1
#endif

namespace bench {

using Clock = std::chrono::steady_clock;

/// Seconds from @p t0 to now (steady clock).
inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// Median, smallest and largest of repetitions.
struct Stat {
  double median, min, max;
};
/// The Stat of @p v (the upper median for an even count); @p v must not be empty.
inline Stat stat_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

/// The median of @p v (the upper one for an even count); @p v must not be empty.
inline double median(std::vector<double> v) { return stat_of(std::move(v)).median; }

/// ` key=value`, a field for print_result's tail.
inline std::string field(const char* key, long value) {
  return std::string(" ").append(key).append("=").append(std::to_string(value));
}

/// Prints `RESULT name=... unit=... value=<median> reps=... min=... max=...<tail>` (in the
/// calling process, whatever its rank) and returns the median. @p tail: more ` key=value`
/// fields (" n=1000", " mib=64").
inline double print_result(const char* name, const char* unit, const std::vector<double>& v,
                           const std::string& tail = "") {
  const Stat s = stat_of(v);
  std::printf("RESULT name=%s unit=%s value=%.4g reps=%zu min=%.4g max=%.4g%s\n", name, unit, s.median, v.size(), s.min,
              s.max, tail.c_str());
  std::fflush(stdout);
  return s.median;
}

/// print_result() with the tail ` n=<n><extra>` (@p n: operations or items per repetition).
inline double print_result_n(const char* name, const char* unit, const std::vector<double>& v, long n,
                             const std::string& extra = "") {
  return print_result(name, unit, v, field("n", n).append(extra));
}

/// Prints `RATIO name=... value=... ranks=...` in the calling process.
inline void print_ratio(const char* name, double value, int ranks) {
  std::printf("RATIO name=%s value=%.3g ranks=%d\n", name, value, ranks);
  std::fflush(stdout);
}

/// Runs @p body(n) on every rank of @p comm at once, @p reps times (a barrier before each);
/// returns, per repetition, the slowest rank's time in seconds.
template <class Body>
std::vector<double> slowest_seconds(MPI_Comm comm, int reps, long n, Body&& body) {
  std::vector<double> out;
  for (int r = 0; r < reps; ++r) {
    MPI_Barrier(comm);
    const auto t0 = Clock::now();
    body(n);
    double s = seconds_since(t0);
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
  if (rank != 0) return median(v);
  return print_result_n(name, unit, v, n, field("ranks", size));
}

/// Prints `RATIO name=... value=... ranks=...` on rank 0 of @p comm.
inline void ratio(MPI_Comm comm, const char* name, double value) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (rank == 0) print_ratio(name, value, size);
}

/// The value of option @p name (`--tasks 1000`) on the command line, at least 0, or
/// @p fallback when absent.
inline long arg_long(int argc, char** argv, const char* name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::max(0L, std::atol(argv[i + 1]));
  }
  return fallback;
}

/// The value of `--reps N` on the command line (at least 1), or @p fallback.
inline int reps_arg(int argc, char** argv, int fallback) {
  return static_cast<int>(std::max(1L, arg_long(argc, argv, "--reps", fallback)));
}

/// CPU seconds (user + system, every thread) this process has used so far.
inline double self_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// CPU seconds used so far by process @p pid (same node): the sum of its threads' run time
/// in /proc/<pid>/task/*/schedstat (nanoseconds; /proc/<pid>/stat counts 10 ms ticks, too
/// coarse for an idle rank), falling back to /proc/<pid>/stat; 0 when neither is readable.
inline double process_cpu_seconds(int pid) {
  const std::string dir = std::string("/proc/").append(std::to_string(pid)).append("/task");
  double ns = 0;
  bool any = false;
  if (DIR* d = opendir(dir.c_str())) {
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      if (std::FILE* f = std::fopen(std::string(dir).append("/").append(e->d_name).append("/schedstat").c_str(), "r")) {
        unsigned long long run = 0;
        if (std::fscanf(f, "%llu", &run) == 1) {
          ns += static_cast<double>(run);
          any = true;
        }
        std::fclose(f);
      }
    }
    closedir(d);
  }
  if (any) return ns * 1e-9;
  std::FILE* f = std::fopen(std::string("/proc/").append(std::to_string(pid)).append("/stat").c_str(), "r");
  if (!f) return 0;
  char buf[4096];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');  // the command name may hold spaces
  unsigned long utime = 0, stime = 0;
  if (p) std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// A field of /proc/self/status in kB (@p key: "VmRSS:", "VmHWM:"); 0 when absent.
inline long status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::strtol(line.c_str() + std::strlen(key), nullptr, 10);
  }
  return 0;
}
/// Resets this process's peak resident size (VmHWM) to its current one.
inline void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

/// The growth of this process's resident memory over a stretch of code: built, it notes
/// VmRSS and resets the peak (VmHWM); times() is the peak since then less that VmRSS, as a
/// multiple of @p bytes.
class PeakRss {
 public:
  PeakRss() : rss0_(status_kb("VmRSS:")) { reset_peak_rss(); }
  double times(std::size_t bytes) const {
    return static_cast<double>(status_kb("VmHWM:") - rss0_) * 1024.0 / static_cast<double>(bytes);
  }

 private:
  long rss0_;
};

/// The first line of /proc/loadavg without its newline ("?" when unreadable).
inline std::string loadavg() {
  std::string s;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    char buf[128] = {};
    if (std::fgets(buf, sizeof buf, f)) s = buf;
    std::fclose(f);
  }
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s.empty() ? std::string("?") : s;
}

#ifdef TROUPE_BENCH_WITH_TROUPE
/// A barrier whose waiters nap through troupe's wait loop instead of spinning in
/// MPI_Barrier: ranks that are done must not take the cores the measured ones need.
inline void quiet_barrier(MPI_Comm comm) {
  MPI_Request req = MPI_REQUEST_NULL;
  MPI_Ibarrier(comm, &req);
  troupe::detail::wait_request(req, troupe::Deadline{}, {});
}
#endif

}  // namespace bench
