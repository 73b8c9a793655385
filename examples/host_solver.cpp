// host_solver: a plain-MPI solver that owns MPI and calls troupe for one phase of each step.
//
// The host is shaped like a real code: it calls MPI_Init_thread(MPI_THREAD_FUNNELED) itself,
// owns a 1D domain split in blocks over MPI_COMM_WORLD, and every time step does its own halo
// exchange (MPI_Sendrecv with its neighbours) and a diffusion update. Between the steps it
// calls into a troupe phase: a "reaction" whose cost varies wildly from cell to cell (a
// number of sub-iterations that depends on the cell), which troupe load-balances over every
// rank × thread with Executor::map; the results are written back into the host's array.
//
// Python equivalent (mpi4py host, mpi4py.futures phase):
//
//   comm = MPI.COMM_WORLD                       # the host's own MPI
//   for step in range(K):
//       comm.Sendrecv(...)                      # halo exchange
//       u = diffuse(u)
//       with MPICommExecutor(phase_comm) as ex: # a phase on a sub-communicator
//           u = list(ex.map(react, enumerate(u)))
//
// The phase runs on a sub-communicator from MPI_Comm_split: here every rank (color 0) in
// reversed order (key = size-1-rank), so troupe's rank numbers differ from the host's —
// troupe only knows its own communicator. A rank that should stay out would pass
// MPI_UNDEFINED and skip the phase; its cells would then have to be sent to one that takes
// part (not done here: every rank owns cells).
//
// Two ways of holding troupe, one per half of the run:
// - steps [0, K/2): a phase opens a troupe::Runtime on the sub-communicator and an Executor,
//   maps, shuts down, and destroys both: between phases no troupe thread exists (checked by
//   counting /proc/self/task);
// - steps [K/2, K): one Runtime and Executor kept across the phases; between phases its
//   worker threads sleep (no CPU), and at MPI_THREAD_FUNNELED no troupe thread calls MPI,
//   so the host's MPI_Sendrecv needs no care.
// Every phase ends with Executor::map_reduce_all (a troupe collective whose wait drives
// troupe's MPI progress), so no rank goes back to host MPI while another still waits for a
// result only it can send. Rank 0 checks the final field against a serial computation of
// the same steps (the same floating-point operations: the answers must be equal).
//   mpirun -n 4 build/examples/example_host_solver
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <dirent.h>

#include <chrono>
#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <troupe/executor/executor.hpp>
#include <troupe/runtime/runtime.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {

constexpr long kN = 240;    // cells (divisible by 1, 2, 3, 4)
constexpr int kSteps = 24;  // time steps, one troupe phase each
constexpr double kAlpha = 0.2;

double initial(long i) { return std::sin(0.05 * static_cast<double>(i)) + (i > kN / 3 && i < kN / 2 ? 1.0 : 0.0); }

// The irregular per-cell work: 1..401 sub-iterations depending on the cell.
double react(std::pair<long, double> cell) {
  const auto [i, x0] = cell;
  const long iters = 1 + (i * 7919 % 97) * (i % 5 == 0 ? 4 : 1);
  double x = x0;
  for (long k = 0; k < iters; ++k) x = x + 1e-4 * std::sin(x) * std::cos(0.5 * x);
  return x;
}

double diffuse(double l, double s, double r) { return s + kAlpha * ((l - 2.0 * s) + r); }

std::vector<double> serial() {
  std::vector<double> u(kN), v(kN);
  for (long i = 0; i < kN; ++i) u[i] = initial(i);
  for (int s = 0; s < kSteps; ++s) {
    for (long i = 0; i < kN; ++i) {
      const double l = i > 0 ? u[i - 1] : u[i];  // zero-flux ends
      const double r = i + 1 < kN ? u[i + 1] : u[i];
      v[i] = diffuse(l, u[i], r);
    }
    for (long i = 0; i < kN; ++i) u[i] = react({i, v[i]});
  }
  return u;
}

long thread_count() {
  long n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// True once the process is back to @p want threads, polling /proc/self/task for at most
// @p limit: a thread that std::thread::join has seen exit can stay listed there until the
// kernel reaps it (the join wakes on the thread's exit futex, before the task is removed),
// and nothing notifies that removal, so the count is polled. A thread that is still
// running (a real leak) keeps the count up for the whole limit.
bool threads_back_to(long want, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (thread_count() == want) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// One troupe phase on an open executor: map the irregular work over my cells, write the
// results back, and end with a collective (the sum of the field, returned).
double phase(troupe::Executor& ex, long first, std::vector<double>& u) {
  std::vector<std::pair<long, double>> cells;
  for (std::size_t k = 0; k < u.size(); ++k) cells.emplace_back(first + static_cast<long>(k), u[k]);
  const auto out = ex.map(troupe::remote<&react>, cells, {.chunksize = 4, .timeout = 60s}).to_vector();
  u = out;
  return ex.map_reduce_all([](double x) { return x; }, std::plus<>{}, u, 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const long host_threads = thread_count();  // MPI's own threads included

  const long block = kN / size;
  const long first = rank * block;
  std::vector<double> u(static_cast<std::size_t>(block)), v(u.size());
  for (long k = 0; k < block; ++k) u[k] = initial(first + k);
  const int left = rank > 0 ? rank - 1 : MPI_PROC_NULL;
  const int right = rank + 1 < size ? rank + 1 : MPI_PROC_NULL;

  // The phase's communicator: every rank, reversed. The host keeps it and frees it.
  MPI_Comm phase_comm = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, /*color=*/0, /*key=*/size - 1 - rank, &phase_comm);

  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::ExecutorOptions eo;
  eo.threads = 2;
  eo.shutdown_timeout = 60s;

  std::optional<troupe::Runtime> kept_rt;
  std::optional<troupe::Executor> kept_ex;
  bool no_thread_between = true;
  bool funneled = true;
  double total = 0.0;
  for (int s = 0; s < kSteps; ++s) {
    // The host's own halo exchange on MPI_COMM_WORLD (tags 0 and 1, as troupe might use).
    double from_left = u.front(), from_right = u.back();
    MPI_Sendrecv(&u.back(), 1, MPI_DOUBLE, right, /*tag=*/0,  // my last cell to the right
                 &from_left, 1, MPI_DOUBLE, left, /*tag=*/0,  // the left one's last cell
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Sendrecv(&u.front(), 1, MPI_DOUBLE, left, /*tag=*/1, &from_right, 1, MPI_DOUBLE, right, /*tag=*/1,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    for (long k = 0; k < block; ++k) {
      const double l = k > 0 ? u[k - 1] : from_left;
      const double r = k + 1 < block ? u[k + 1] : from_right;
      v[k] = diffuse(l, u[k], r);
    }
    u = v;

    if (s < kSteps / 2) {
      // A phase that leaves nothing behind: Runtime and Executor live for this block only.
      troupe::Runtime rt(phase_comm, ro);
      funneled = funneled && rt.thread_level() == troupe::ThreadLevel::Funneled;
      troupe::Executor ex(rt, eo);
      total = phase(ex, first, u);
      ex.shutdown();
    } else {
      if (!kept_ex) {
        kept_rt.emplace(phase_comm, ro);
        kept_ex.emplace(*kept_rt, eo);
      }
      total = phase(*kept_ex, first, u);
    }
    if (s < kSteps / 2) no_thread_between = no_thread_between && threads_back_to(host_threads);
  }
  kept_ex.reset();  // collective shutdown, then the Runtime: troupe frees only its duplicates
  kept_rt.reset();
  const bool back_to_host = threads_back_to(host_threads);
  MPI_Comm_free(&phase_comm);

  std::vector<double> all(rank == 0 ? kN : 0);
  MPI_Gather(u.data(), static_cast<int>(block), MPI_DOUBLE, all.data(), static_cast<int>(block), MPI_DOUBLE, 0,
             MPI_COMM_WORLD);
  if (rank == 0) {
    const std::vector<double> want = serial();
    double worst = 0.0, sum = 0.0;
    for (long i = 0; i < kN; ++i) {
      worst = std::max(worst, std::fabs(all[i] - want[i]));
      sum += want[i];
    }
    std::printf("host_solver: %d steps of %ld cells on %d rank(s) at %s, a troupe phase per step\n", kSteps, kN, size,
                provided == MPI_THREAD_FUNNELED ? "MPI_THREAD_FUNNELED" : "another level");
    std::printf(
        "  largest difference from the serial run: %.3g; field sum %.6f (troupe's last map_reduce_all "
        "%.6f)\n",
        worst, sum, total);
    std::printf("  threads: host %ld, after every per-step phase %s, after the kept executor %s\n", host_threads,
                no_thread_between ? "the same" : "MORE", back_to_host ? "the same" : "MORE");
    example::check(worst == 0.0, "the field matches the serial computation exactly");
    example::check(std::fabs(total - sum) <= 1e-9 * std::fabs(sum) + 1e-12, "map_reduce_all gave the field's sum");
  }
  example::check(funneled, "troupe adopted the host's MPI_THREAD_FUNNELED");
  example::check(no_thread_between, "no troupe thread left between per-step phases");
  example::check(back_to_host, "no troupe thread left after the kept executor");
  int failures = example::failures;
  MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();  // the host finalizes; troupe never does when it did not initialize MPI
  return failures == 0 ? 0 : 1;
}
