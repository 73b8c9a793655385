// Large payloads through the distributed Executor against raw MPI_Send/MPI_Recv of the same
// bytes, in the same run (issue 10, item 6). Rank 0 asks rank 1 for a result of S MiB
// (`ex.submit_to(1, f, n)` returning a std::vector<double>, then a std::string), and sends
// an argument of S MiB the other way; it reports the bandwidth of each and the root's peak
// memory above its resident size before the call (VmHWM after `echo 5 > clear_refs`),
// as a multiple of the payload. The raw baselines:
//  - raw_fresh: the sender allocates and fills a new buffer, the receiver allocates a new one
//    and MPI_Recv's into it (the work a task result needs: build it, allocate the copy);
//  - raw_pre: both buffers allocated and touched before the clock starts (the link alone).
// One process run per size keeps the peaks apart:
//   mpirun -n 2 build/bench/troupe_payload_bench 1024 [reps=3]
// prints RESULT lines (medians over reps, min and max) and RATIO lines.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/runtime/runtime.hpp"

using Clock = std::chrono::steady_clock;

namespace {

using bench::seconds_since;
double result(const char* name, const char* unit, const std::vector<double>& reps, long mib) {
  return bench::print_result(name, unit, reps, bench::field("mib", mib));
}
void ratio(const char* name, double num, double den, int ranks) {
  bench::print_ratio(name, den > 0 ? num / den : 0.0, ranks);
}

std::vector<double> make_vector(std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<double>(i);
  return v;
}
std::string make_string(std::size_t n) {
  std::string s(n, 'x');
  for (std::size_t i = 0; i < n; i += 4096) s[i] = static_cast<char>('a' + (i / 4096) % 26);
  return s;
}
double sum_of(const std::vector<double>& v) {
  double s = 0;
  for (std::size_t i = 0; i < v.size(); i += 4096) s += v[i];
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  const long mib = argc > 1 ? std::atol(argv[1]) : 256;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 3;
  const std::size_t bytes = static_cast<std::size_t>(mib) << 20;
  const std::size_t n = bytes / sizeof(double);
  const double gb = static_cast<double>(bytes) / 1e9;
  if (rt.size() < 2) {
    if (rt.rank() == 0) std::printf("# payload bench needs 2 ranks\n");
    return 0;
  }
  const int rank = rt.rank();
  const MPI_Comm comm = MPI_COMM_WORLD;
  const int count = static_cast<int>(n);  // doubles: < INT_MAX up to 16 GiB

  // --- raw MPI: rank 1 -> rank 0 -------------------------------------------------------
  std::vector<double> fresh_bw, pre_bw, fresh_peak;
  for (int r = 0; r < reps; ++r) {
    MPI_Barrier(comm);
    const bench::PeakRss peak;
    const auto t0 = Clock::now();
    if (rank == 1) {
      const auto v = make_vector(n);
      MPI_Send(v.data(), count, MPI_DOUBLE, 0, 7, comm);
    } else if (rank == 0) {
      std::vector<double> v(n);
      MPI_Recv(v.data(), count, MPI_DOUBLE, 1, 7, comm, MPI_STATUS_IGNORE);
      fresh_bw.push_back(gb / seconds_since(t0));
    }
    fresh_peak.push_back(peak.times(bytes));
  }
  {
    std::vector<double> buf = make_vector(rank <= 1 ? n : 1);
    for (int r = 0; r < reps; ++r) {
      MPI_Barrier(comm);
      const auto t0 = Clock::now();
      if (rank == 1) {
        MPI_Send(buf.data(), count, MPI_DOUBLE, 0, 8, comm);
      } else if (rank == 0) {
        MPI_Recv(buf.data(), count, MPI_DOUBLE, 1, 8, comm, MPI_STATUS_IGNORE);
        pre_bw.push_back(gb / seconds_since(t0));
      }
    }
  }
  MPI_Barrier(comm);

  troupe::Executor ex(rt);
  if (ex.is_root()) {
    std::printf("# payload bench: %ld MiB, %d ranks, %d reps, load %s\n", mib, ex.size(), reps,
                bench::loadavg().c_str());
    const double raw_fresh = result("raw_fresh_bw", "GB/s", fresh_bw, mib);
    const double raw_pre = result("raw_pre_bw", "GB/s", pre_bw, mib);
    result("raw_fresh_root_peak", "x_payload", fresh_peak, mib);
    std::vector<double> vec_bw, vec_peak, str_bw, str_peak, arg_bw, arg_peak, kept_peak;
    double check = 0;
    for (int r = 0; r < reps; ++r) {
      const bench::PeakRss vec_rss;
      auto t0 = Clock::now();
      {
        auto v = ex.submit_to(
                       1, [](std::size_t k) { return make_vector(k); }, n)
                     .result();
        vec_bw.push_back(gb / seconds_since(t0));
        check += sum_of(v);
        if (v.size() != n || v[n - 1] != static_cast<double>(n - 1)) std::printf("# BAD vector result\n");
      }
      vec_peak.push_back(vec_rss.times(bytes));

      // The same, the future kept and its value read in place (never copied on take).
      {
        const bench::PeakRss kept_rss;
        auto fut = ex.submit_to(
            1, [](std::size_t k) { return make_vector(k); }, n);
        const auto& v = fut.result();
        check += sum_of(v);
        kept_peak.push_back(kept_rss.times(bytes));
      }

      const bench::PeakRss str_rss;
      t0 = Clock::now();
      {
        auto s = ex.submit_to(
                       1, [](std::size_t k) { return make_string(k); }, bytes)
                     .result();
        str_bw.push_back(gb / seconds_since(t0));
        if (s.size() != bytes || s[4096] != 'b') std::printf("# BAD string result\n");
      }
      str_peak.push_back(str_rss.times(bytes));

      // An argument of the same size, root -> rank 1 (built before the clock; the peak
      // counts what sending it adds on the root).
      auto arg = make_vector(n);
      const bench::PeakRss arg_rss;
      t0 = Clock::now();
      const double got =
          ex.submit_to(
                1, [](const std::vector<double>& v) { return v.empty() ? 0.0 : v.back(); }, std::move(arg))
              .result();
      arg_bw.push_back(gb / seconds_since(t0));
      arg_peak.push_back(arg_rss.times(bytes));
      if (got != static_cast<double>(n - 1)) std::printf("# BAD argument\n");
    }
    std::printf("# check %g\n", check);
    const double v = result("executor_vector_result_bw", "GB/s", vec_bw, mib);
    result("executor_vector_result_root_peak", "x_payload", vec_peak, mib);
    result("executor_vector_result_kept_future_root_peak", "x_payload", kept_peak, mib);
    const double s = result("executor_string_result_bw", "GB/s", str_bw, mib);
    result("executor_string_result_root_peak", "x_payload", str_peak, mib);
    const double a = result("executor_vector_argument_bw", "GB/s", arg_bw, mib);
    result("executor_vector_argument_root_peak", "x_payload", arg_peak, mib);
    ratio("vector_result_vs_raw_fresh", v, raw_fresh, ex.size());
    ratio("vector_result_vs_raw_pre", v, raw_pre, ex.size());
    ratio("string_result_vs_raw_fresh", s, raw_fresh, ex.size());
    ratio("string_result_vs_raw_pre", s, raw_pre, ex.size());
    ratio("vector_argument_vs_raw_pre", a, raw_pre, ex.size());
  }
  return 0;
}
