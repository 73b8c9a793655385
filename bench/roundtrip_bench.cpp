// The remote round trip taken apart (issue 10, item 1): one 8-byte request from rank 0 to
// rank 1 and its answer, built up one layer at a time in the same run and at the same MPI
// thread level, so that each layer's cost is the difference between two lines:
//
//   raw        MPI_Send / MPI_Recv ping-pong on a private communicator (the floor)
//   engine     troupe's Engine: rank 1's receiver answers on the delivering thread; rank 0
//              waits for the answer driving progress itself (try_progress)
//   messenger  the same over records and batches (Messenger, one record each way)
//   pool       the messenger, but rank 1 hands the request to a pool worker, which answers
//   executor   Executor::submit_to(1, f).result(): the whole path (encode the call, credits,
//              the future, decode the result)
//
//   mpirun -n 2 build/bench/troupe_roundtrip_bench [--level=multiple|serialized|funneled] [--reps N]
//
// --level picks the MPI mode (troupe/runtime/mpi_token.hpp): multiple (MpiMode::Multiple),
// serialized (MpiMode::Serialized: progress threads, one token), funneled (MpiMode::Funneled:
// no progress thread, the main threads drive MPI).
//
// Prints RESULT lines (µs per round trip, the median of the repetitions) and RATIO lines
// (each layer against raw). Needs 2 ranks or more (ranks above 1 only take part in the
// collectives).
#include <mpi.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "troupe/engine/engine.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/messaging/messenger.hpp"
#include "troupe/pool/thread_pool.hpp"
#include "troupe/runtime/runtime.hpp"

namespace {

constexpr long kTrips = 5000;

troupe::ThreadLevel level_arg(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--level=serialized") return troupe::ThreadLevel::Serialized;
    if (a == "--level=funneled") return troupe::ThreadLevel::Funneled;
    if (a == "--level=single") return troupe::ThreadLevel::Single;
  }
  return troupe::ThreadLevel::Multiple;
}

// Spins on @p flag changing from @p seen, driving @p progress (one poll per round).
template <class Progress>
void await_change(const std::atomic<long>& flag, long seen, Progress&& progress) {
  while (flag.load(std::memory_order_acquire) == seen) progress();
}

// Rank 1's main thread until it has answered @p goal requests: with a progress thread it
// stays off the cores (as a serving rank's main thread waiting in shutdown does; a spinning
// MPI_Allreduce here would take a core from the progress thread); without one it drives
// progress itself.
template <class Progress>
void serve_until(const std::atomic<long>& served, long goal, bool progress_thread, Progress&& progress) {
  while (served.load(std::memory_order_acquire) < goal) {
    if (progress_thread) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    } else {
      progress();
    }
  }
}

// Context switches of this process so far (every thread; voluntary + involuntary): a
// hand-off between threads costs at least one, and the count does not depend on the load.
double switches() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_nvcsw + u.ru_nivcsw);
}

// Prints the context switches per round trip of ranks 0 and 1 since @p before.
void report_switches(MPI_Comm comm, const char* name, double before, long trips) {
  double mine = (switches() - before) / static_cast<double>(trips);
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  double one = 0;
  if (rank == 1) MPI_Send(&mine, 1, MPI_DOUBLE, 0, 9, comm);
  if (rank == 0) {
    MPI_Recv(&one, 1, MPI_DOUBLE, 1, 9, comm, MPI_STATUS_IGNORE);
    std::printf("SWITCHES name=%s rank0=%.2f rank1=%.2f per_trip\n", name, mine, one);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  ro.thread_level = level_arg(argc, argv);
  ro.serialize_mpi = true;  // --level=serialized: MpiMode::Serialized (progress threads, one token)
  troupe::Runtime rt(argc, argv, ro);
  const int reps = bench::reps_arg(argc, argv, 5);
  const int rank = rt.rank();
  if (rt.size() < 2) {
    if (rank == 0) std::printf("# roundtrip_bench needs 2 ranks\n");
    return 0;
  }
  const bool progress_thread = rt.progress_threads();
  if (rank == 0) {
    const char* mode = rt.mpi_mode() == troupe::MpiMode::Multiple     ? "multiple"
                       : rt.mpi_mode() == troupe::MpiMode::Serialized ? "serialized"
                                                                      : "funneled";
    std::printf("# round trip, 8 bytes each way, rank 0 <-> rank 1, level %s, mode %s\n",
                std::string(troupe::to_string(rt.thread_level())).c_str(), mode);
  }
  MPI_Comm comm;
  MPI_Comm_dup(rt.comm(), &comm);

  // raw
  double raw = 0;
  {
    long x = 0;
    const double sw = switches();
    auto v = bench::slowest_us_per_op(comm, reps, kTrips, [&](long n) {
      for (long i = 0; i < n; ++i) {
        if (rank == 0) {
          MPI_Send(&x, 1, MPI_LONG, 1, 7, comm);
          MPI_Recv(&x, 1, MPI_LONG, 1, 7, comm, MPI_STATUS_IGNORE);
        } else if (rank == 1) {
          MPI_Recv(&x, 1, MPI_LONG, 0, 7, comm, MPI_STATUS_IGNORE);
          ++x;
          MPI_Send(&x, 1, MPI_LONG, 0, 7, comm);
        }
      }
    });
    raw = bench::report(comm, "rt_raw", "us", v, kTrips);
    report_switches(comm, "rt_raw", sw, kTrips * reps);
  }

  // engine and messenger layers: with a progress thread only (MpiMode::Funneled has the
  // executor line alone)
  if (progress_thread) {
    MPI_Comm ec;
    MPI_Comm_dup(comm, &ec);
    {
      troupe::engine::EngineOptions eo;
      eo.progress_thread = progress_thread;
      troupe::engine::Engine e(ec, eo);
      std::atomic<long> answers{0}, served{0};
      long goal = 0;
      e.on_receive([&](int src, std::vector<std::byte> m) {
        if (rank == 1) {
          e.send(src, std::move(m));
          served.fetch_add(1, std::memory_order_acq_rel);
        } else {
          answers.fetch_add(1, std::memory_order_acq_rel);
        }
      });
      e.start();
      const double sw = switches();
      auto v = bench::slowest_us_per_op(comm, reps, kTrips, [&](long n) {
        if (rank == 0) {
          for (long i = 0; i < n; ++i) {
            const long seen = answers.load();
            e.send(1, std::vector<std::byte>(8));
            await_change(answers, seen, [&] { e.try_progress(); });
          }
        } else if (rank == 1) {
          goal += n;
          serve_until(served, goal, progress_thread, [&] { e.try_progress(); });
        }
      });
      const double med = bench::report(comm, "rt_engine", "us", v, kTrips);
      bench::ratio(comm, "rt_engine_vs_raw", med / raw);
      report_switches(comm, "rt_engine", sw, kTrips * reps);
      MPI_Barrier(comm);
    }
    MPI_Comm_free(&ec);
  }

  // messenger, and messenger + pool hand-off
  for (const bool via_pool : {false, true}) {
    if (!progress_thread) break;
    MPI_Comm mc;
    MPI_Comm_dup(comm, &mc);
    {
      troupe::ThreadPool pool(1);
      troupe::messaging::MessengerOptions mo;
      mo.engine.progress_thread = progress_thread;
      troupe::messaging::Messenger m(mc, mo);
      std::atomic<long> answers{0}, served{0};
      long goal = 0;
      using troupe::messaging::Kind;
      m.on(Kind::kObject, [&](int src, troupe::wire::Reader& in) {
        long x = 0;
        troupe::wire::load(in, x);
        auto answer = [&m, &served, src, x] {
          m.send(src, Kind::kReply, [&](troupe::wire::Writer& w) { troupe::wire::save(w, x + 1); });
          served.fetch_add(1, std::memory_order_acq_rel);
        };
        if (via_pool) {
          pool.submit(answer);
        } else {
          answer();
        }
      });
      m.on(Kind::kReply, [&](int, troupe::wire::Reader& in) {
        long x = 0;
        troupe::wire::load(in, x);
        answers.fetch_add(1, std::memory_order_acq_rel);
      });
      m.start();
      const double sw = switches();
      auto v = bench::slowest_us_per_op(comm, reps, kTrips, [&](long n) {
        if (rank == 1) {
          goal += n;
          serve_until(served, goal, progress_thread, [&] { m.try_progress(); });
          return;
        }
        if (rank != 0) return;
        for (long i = 0; i < n; ++i) {
          const long seen = answers.load();
          m.send(1, Kind::kObject, [&](troupe::wire::Writer& w) { troupe::wire::save(w, i); });
          await_change(answers, seen, [&] { m.try_progress(); });
        }
      });
      const char* name = via_pool ? "rt_messenger_pool" : "rt_messenger";
      const double med = bench::report(comm, name, "us", v, kTrips);
      bench::ratio(comm, via_pool ? "rt_messenger_pool_vs_raw" : "rt_messenger_vs_raw", med / raw);
      report_switches(comm, name, sw, kTrips * reps);
      m.barrier(troupe::Deadline::after(std::chrono::seconds(60), "roundtrip_bench"));
    }
    MPI_Comm_free(&mc);
  }

  // executor
  {
    troupe::Executor ex(rt);
    const double sw = switches();
    if (ex.is_root()) {
      for (int i = 0; i < 500; ++i)
        (void)ex
            .submit_to(
                1, [](long x) { return x + 1; }, long{i})
            .result();
      std::vector<double> us;
      for (int r = 0; r < reps; ++r) {
        const auto t0 = troupe::Clock::now();
        for (long i = 0; i < kTrips; ++i)
          (void)ex
              .submit_to(
                  1, [](long x) { return x + 1; }, i)
              .result();
        us.push_back(std::chrono::duration<double>(troupe::Clock::now() - t0).count() * 1e6 / kTrips);
      }
      std::printf("RESULT name=rt_executor unit=us value=%.4g reps=%d min=%.4g max=%.4g n=%ld ranks=%d\n",
                  bench::median(us), reps, *std::min_element(us.begin(), us.end()),
                  *std::max_element(us.begin(), us.end()), kTrips, rt.size());
      std::printf("RATIO name=rt_executor_vs_raw value=%.3g ranks=%d\n", bench::median(us) / raw, rt.size());
      std::fflush(stdout);
    }
    // Rank 1 counts until the root is done: a barrier on the program's communicator after
    // the root's loop (rank 1's main thread waits in it while its executor serves).
    double mine = 0;
    if (ex.is_root()) mine = (switches() - sw) / static_cast<double>(kTrips * (reps + 0.1));
    ex.shutdown();
    if (rank == 1) mine = (switches() - sw) / static_cast<double>(kTrips * (reps + 0.1));
    double one = 0;
    if (rank == 1) MPI_Send(&mine, 1, MPI_DOUBLE, 0, 9, comm);
    if (rank == 0) {
      MPI_Recv(&one, 1, MPI_DOUBLE, 1, 9, comm, MPI_STATUS_IGNORE);
      std::printf("SWITCHES name=rt_executor rank0=%.2f rank1=%.2f per_trip (rank 1 includes shutdown)\n", mine, one);
    }
  }
  MPI_Comm_free(&comm);
  return 0;
}
