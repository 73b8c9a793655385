// GlobalArray (and Counter) against raw MPI-3 RMA in the same run. Every rank works at once
// on its right neighbour's block ((rank + 1) % P: remote whenever P > 1); the raw baselines
// use an MPI_Win_allocate window of the same shape inside one MPI_Win_lock_all epoch, as
// GlobalArray does. Rank 0 prints
//   RESULT name=<key> unit=<us|GB/s> value=<median> reps=<n> min=<..> max=<..> n=<ops> ranks=<P>
// and `RATIO name=<key> value=<v>`: for latencies troupe time / raw time (lower is better),
// for bandwidths troupe GB/s / raw GB/s (higher is better).
// Run: mpirun -n 2 build/bench/troupe_window_bench [--reps 5]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "troupe/across/counter.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/window/global_array.hpp"

using Clock = std::chrono::steady_clock;

namespace {

int g_rank = 0;
int g_size = 1;
MPI_Comm g_comm = MPI_COMM_NULL;  // a private duplicate for the baselines and the timing

// The slowest rank's time per operation in microseconds, per rep.
template <class Body>
std::vector<double> time_reps(int reps, long n, Body body) {
  return bench::slowest_us_per_op(g_comm, reps, n, body);
}

// Alternates the raw baseline and the troupe form rep by rep, so that drift in the machine's
// load (2 cores, progress threads) hits both alike.
template <class A, class B>
std::pair<std::vector<double>, std::vector<double>> time_pair(int reps, long n, A raw, B troupe) {
  std::vector<double> ra, rb;
  for (int r = 0; r < reps; ++r) {
    ra.push_back(time_reps(1, n, raw)[0]);
    rb.push_back(time_reps(1, n, troupe)[0]);
  }
  return {ra, rb};
}

double report(const char* name, const char* unit, const std::vector<double>& v, long n) {
  return bench::report(g_comm, name, unit, v, n);
}

double report_us(const char* name, const std::vector<double>& reps, long n) { return report(name, "us", reps, n); }

// Bandwidth of one operation of @p bytes per rank, from its time in microseconds.
double report_bw(const char* name, const std::vector<double>& us_reps, long n, double bytes) {
  std::vector<double> bw;
  for (double us : us_reps) bw.push_back(bytes / (us * 1e3));  // bytes/ns = GB/s
  return report(name, "GB/s", bw, n);
}

void ratio(const char* name, double v) { bench::ratio(g_comm, name, v); }

// A raw window of @p per_rank elements of @p T on every rank, in one passive epoch.
template <class T>
struct RawWindow {
  MPI_Win win = MPI_WIN_NULL;
  T* base = nullptr;
  explicit RawWindow(std::size_t per_rank) {
    MPI_Win_allocate(static_cast<MPI_Aint>(per_rank * sizeof(T)), sizeof(T), MPI_INFO_NULL, g_comm, &base, &win);
    std::fill(base, base + per_rank, T{});
    MPI_Barrier(g_comm);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
  }
  ~RawWindow() {
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
  }
};

}  // namespace

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::Runtime rt(argc, argv, ro);
  const int reps = bench::reps_arg(argc, argv, 7);
  MPI_Comm_dup(rt.comm(), &g_comm);
  g_rank = rt.rank();
  g_size = rt.size();
  const int right = (g_rank + 1) % g_size;

  // --- 8-byte latency: get, put, fetch_add, compare_exchange on the neighbour's element -----
  {
    const long n = 100'000;
    RawWindow<std::int64_t> raw(1);
    troupe::GlobalArray<std::int64_t> g(static_cast<std::size_t>(g_size));
    const std::size_t idx = g.offset(right);
    std::int64_t sink = 0;

    {
      auto [a, b] = time_pair(
          reps, n,
          [&](long k) {
            std::int64_t v = 0;
            for (long i = 0; i < k; ++i) {
              MPI_Get(&v, 1, MPI_INT64_T, right, 0, 1, MPI_INT64_T, raw.win);
              MPI_Win_flush(right, raw.win);
              sink += v;
            }
          },
          [&](long k) {
            for (long i = 0; i < k; ++i) sink += g.get(idx);
          });
      ratio("ga.get8.troupe_vs_mpi", report_us("ga.get8.troupe_get", b, n) / report_us("ga.get8.mpi_get_flush", a, n));
    }
    {
      auto [a, b] = time_pair(
          reps, n,
          [&](long k) {
            for (long i = 0; i < k; ++i) {
              const std::int64_t v = i;
              MPI_Put(&v, 1, MPI_INT64_T, right, 0, 1, MPI_INT64_T, raw.win);
              MPI_Win_flush(right, raw.win);
            }
          },
          [&](long k) {
            for (long i = 0; i < k; ++i) g.put(idx, i);
          });
      ratio("ga.put8.troupe_vs_mpi", report_us("ga.put8.troupe_put", b, n) / report_us("ga.put8.mpi_put_flush", a, n));
    }
    {
      auto [a, b] = time_pair(
          reps, n,
          [&](long k) {
            const std::int64_t one = 1;
            std::int64_t old = 0;
            for (long i = 0; i < k; ++i) {
              MPI_Fetch_and_op(&one, &old, MPI_INT64_T, right, 0, MPI_SUM, raw.win);
              MPI_Win_flush(right, raw.win);
            }
          },
          [&](long k) {
            for (long i = 0; i < k; ++i) (void)g.fetch_add(idx, 1);
          });
      ratio("ga.fetch_add.troupe_vs_mpi",
            report_us("ga.fetch_add.troupe", b, n) / report_us("ga.fetch_add.mpi_fetch_and_op_flush", a, n));
    }
    {
      auto [a, b] = time_pair(
          reps, n,
          [&](long k) {
            const std::int64_t expected = 0;
            std::int64_t old = 0;
            for (long i = 0; i < k; ++i) {
              const std::int64_t want = i;
              MPI_Compare_and_swap(&want, &expected, &old, MPI_INT64_T, right, 0, raw.win);
              MPI_Win_flush(right, raw.win);
            }
          },
          [&](long k) {
            for (long i = 0; i < k; ++i) {
              std::int64_t e = 0;
              (void)g.compare_exchange(idx, e, i);
            }
          });
      ratio("ga.cas.troupe_vs_mpi",
            report_us("ga.cas.troupe_compare_exchange", b, n) / report_us("ga.cas.mpi_compare_and_swap_flush", a, n));
    }
    {
      // The non-blocking form: one get_async future per op, against MPI_Rget + MPI_Wait.
      const long na = 20'000;
      auto [a, b] = time_pair(
          reps, na,
          [&](long k) {
            std::int64_t v = 0;
            for (long i = 0; i < k; ++i) {
              MPI_Request r;
              MPI_Rget(&v, 1, MPI_INT64_T, right, 0, 1, MPI_INT64_T, raw.win, &r);
              MPI_Wait(&r, MPI_STATUS_IGNORE);
            }
          },
          [&](long k) {
            for (long i = 0; i < k; ++i) (void)g.get_async(idx, 1).result();
          });
      ratio("ga.get8_async.troupe_vs_mpi",
            report_us("ga.get8_async.troupe_future", b, na) / report_us("ga.get8_async.mpi_rget_wait", a, na));
    }
    if (sink == 42) std::printf("\n");
    g.fence();
  }

  // --- 8 MiB range get / put of the neighbour's block: bandwidth -----------------------------
  {
    const std::size_t per = std::size_t{1} << 20;  // doubles per rank: 8 MiB
    const double bytes = static_cast<double>(per * sizeof(double));
    const int count = static_cast<int>(per);
    const long n = 40;
    RawWindow<double> raw(per);
    troupe::GlobalArray<double> g(per * static_cast<std::size_t>(g_size), 1.0);
    std::vector<double> buf(per, 2.0);
    const std::size_t first = g.offset(right);
    double raw_get = 0;
    {
      auto [a, b] = time_pair(
          reps, n,
          [&](long k) {
            for (long i = 0; i < k; ++i) {
              MPI_Get(buf.data(), count, MPI_DOUBLE, right, 0, count, MPI_DOUBLE, raw.win);
              MPI_Win_flush(right, raw.win);
            }
          },
          [&](long k) {
            for (long i = 0; i < k; ++i) g.get(first, std::span<double>(buf));
          });
      raw_get = report_bw("ga.get8MiB.mpi_get_flush", a, n, bytes);
      ratio("ga.get8MiB.troupe_vs_mpi_bandwidth", report_bw("ga.get8MiB.troupe_get", b, n, bytes) / raw_get);
    }
    {
      auto [a, b] = time_pair(
          reps, n,
          [&](long k) {
            for (long i = 0; i < k; ++i) {
              MPI_Put(buf.data(), count, MPI_DOUBLE, right, 0, count, MPI_DOUBLE, raw.win);
              MPI_Win_flush(right, raw.win);
            }
          },
          [&](long k) {
            for (long i = 0; i < k; ++i) g.put(first, std::span<const double>(buf));
          });
      const double r = report_bw("ga.put8MiB.mpi_put_flush", a, n, bytes);
      ratio("ga.put8MiB.troupe_vs_mpi_bandwidth", report_bw("ga.put8MiB.troupe_put", b, n, bytes) / r);
    }
    {
      // get_async allocates and zero-fills the result vector, then one MPI_Rget per owner.
      auto [a, b] = time_pair(
          reps, n,
          [&](long k) {
            for (long i = 0; i < k; ++i) {
              MPI_Request r;
              MPI_Rget(buf.data(), count, MPI_DOUBLE, right, 0, count, MPI_DOUBLE, raw.win, &r);
              MPI_Wait(&r, MPI_STATUS_IGNORE);
            }
          },
          [&](long k) {
            for (long i = 0; i < k; ++i) (void)g.get_async(first, per).result();
          });
      const double r = report_bw("ga.get8MiB_async.mpi_rget_wait", a, n, bytes);
      ratio("ga.get8MiB_async.troupe_vs_mpi_bandwidth", report_bw("ga.get8MiB_async.troupe_future", b, n, bytes) / r);
      // Into the caller's buffer (no allocation).
      const auto c = time_reps(reps, n, [&](long k) {
        for (long i = 0; i < k; ++i) g.get_async(first, std::span<double>(buf)).result();
      });
      ratio("ga.get8MiB_async_span.troupe_vs_mpi_bandwidth",
            report_bw("ga.get8MiB_async_span.troupe_future", c, n, bytes) / r);
    }
    {
      // The whole array in one range get (one MPI_Get per owner, P owners): information only.
      std::vector<double> all(g.size());
      (void)report_bw("ga.get_whole_array.troupe_get",
                      time_reps(reps, 10,
                                [&](long k) {
                                  for (long i = 0; i < k; ++i) {
                                    g.get(0, std::span<double>(all));
                                  }
                                }),
                      10, static_cast<double>(all.size() * sizeof(double)));
    }
    g.fence();
  }

  // --- Counter::next (every rank on rank 0's word) vs raw MPI_Fetch_and_op ----------------
  {
    const long n = 100'000;
    RawWindow<std::int64_t> raw(1);
    troupe::Counter c(troupe::Scope::Ranks);
    auto [a, b] = time_pair(
        reps, n,
        [&](long k) {
          const std::int64_t one = 1;
          std::int64_t old = 0;
          for (long i = 0; i < k; ++i) {
            MPI_Fetch_and_op(&one, &old, MPI_INT64_T, 0, 0, MPI_SUM, raw.win);
            MPI_Win_flush(0, raw.win);
          }
        },
        [&](long k) {
          for (long i = 0; i < k; ++i) (void)c.next();
        });
    ratio("counter.troupe_vs_mpi_fetch_and_op",
          report_us("counter.troupe_next", b, n) / report_us("counter.mpi_fetch_and_op", a, n));
  }

  MPI_Comm_free(&g_comm);
  return 0;
}
