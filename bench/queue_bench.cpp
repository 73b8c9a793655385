// troupe::Queue and troupe::Pipe against raw MPI in the same run (issue 8).
//
//   mpirun --oversubscribe -n 2|4 build/bench/troupe_queue_bench
//
// Rank 0 hosts the queue. Measures, 8-byte items (std::uint64_t):
//   mpi_msgrate_many_to_one   ranks 1..N-1 MPI_Send 8 bytes to rank 0 (MPI_Recv ANY_SOURCE), msg/s
//   mpi_msgrate_one_to_many   rank 0 MPI_Send round-robin to ranks 1..N-1, msg/s
//   mpi_pingpong_8B           rank 0 <-> rank 1 MPI_Send/MPI_Recv round trip, us
//   queue_many_to_one         ranks 1..N-1 put(item), rank 0 get(), one call per item, items/s
//   queue_one_to_many         rank 0 put(item), ranks 1..N-1 get(), items/s
//   queue_put_async_many_to_one  ranks 1..N-1 put_async(item) (one-way), rank 0 get() per item
//   queue_put_async_get_many_many_to_one  put_async per item, get_many(kBatch) at rank 0
//   queue_batch_many_to_one   as above with put_many / get_many of kBatch items per call
//   queue_batch_one_to_many
//   queue_pingpong            rank 1 puts on a queue hosted on rank 0, rank 0 gets it and
//                             puts it on a queue hosted on rank 1, rank 1 gets it: us
//   pipe_stream               rank 1 -> rank 0 Pipe::send / recv, items/s
//   pipe_pingpong             rank 0 <-> rank 1 over a duplex Pipe, us
// and the ratios queue/MPI (RATIO lines). The raw MPI runs use a private duplicate of the
// Runtime's communicator while troupe's messenger (and its progress thread) is alive, as
// the queue's figures are taken. Each figure is the median of kReps batches.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "troupe/across/pipe.hpp"
#include "troupe/across/queue.hpp"
#include "troupe/runtime/runtime.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kReps = 5;
constexpr long kMpiMsgs = 200'000;     // per raw message-rate batch
constexpr long kMpiTrips = 20'000;     // per raw ping-pong batch
constexpr long kItems = 4'000;         // per one-call-per-item batch
constexpr long kBatchItems = 400'000;  // per batched batch
constexpr std::size_t kBatch = 1024;
constexpr long kAsyncItems = 40'000;  // per put_async batch (consumer: one get per item)
constexpr long kTrips = 1'000;        // per queue ping-pong batch
constexpr long kPipeItems = 200'000;
constexpr long kPipeTrips = 2'000;

int g_rank = 0, g_size = 1;
MPI_Comm g_comm = MPI_COMM_NULL;

// A barrier that does not spin: ranks that are done (or take no part in a measure) wait here
// without taking the cores that the measured ranks and their progress threads need
// (MPI_Barrier busy-polls; on 2 shared cores that alone multiplies latencies).
void quiet_barrier() { bench::quiet_barrier(g_comm); }

double since(Clock::time_point t0) { return bench::seconds_since(t0); }

using bench::median;

void result(const char* name, const char* unit, const std::vector<double>& v, long n) {
  (void)bench::report(g_comm, name, unit, v, n);
}

void ratio(const char* name, double a, double b) {
  if (g_rank != 0) return;
  std::printf("RATIO name=%s value=%.4g\n", name, b > 0 ? a / b : 0.0);
  std::fflush(stdout);
}

// Runs fn kReps times after one warm-up; fn returns the seconds rank 0 measured; the
// figure is n/seconds (rate) or seconds*1e6/n (latency).
template <class Fn>
double measure(const char* name, long n, bool rate, Fn fn) {
  fn();
  std::vector<double> v;
  for (int r = 0; r < kReps; ++r) {
    const double s = fn();
    v.push_back(rate ? static_cast<double>(n) / s : s * 1e6 / static_cast<double>(n));
  }
  result(name, rate ? "per_s" : "us", v, n);
  return median(v);
}

// How many of n items rank r handles when ranks 1..N-1 share them (N >= 2).
long share(long n, int r) {
  const long workers = g_size - 1;
  return n / workers + (r - 1 < n % workers ? 1 : 0);
}

double mpi_many_to_one() {
  MPI_Barrier(g_comm);
  const auto t0 = Clock::now();
  std::uint64_t x = 0;
  if (g_rank == 0) {
    for (long i = 0; i < kMpiMsgs; ++i) MPI_Recv(&x, 8, MPI_BYTE, MPI_ANY_SOURCE, 7, g_comm, MPI_STATUS_IGNORE);
  } else {
    for (long i = 0; i < share(kMpiMsgs, g_rank); ++i) MPI_Send(&x, 8, MPI_BYTE, 0, 7, g_comm);
  }
  const double s = since(t0);
  quiet_barrier();
  return s;
}

double mpi_one_to_many() {
  MPI_Barrier(g_comm);
  const auto t0 = Clock::now();
  std::uint64_t x = 0;
  if (g_rank == 0) {
    for (long i = 0; i < kMpiMsgs; ++i) MPI_Send(&x, 8, MPI_BYTE, 1 + static_cast<int>(i % (g_size - 1)), 8, g_comm);
    quiet_barrier();  // every receiver has everything
  } else {
    long mine = 0;
    for (long i = 0; i < kMpiMsgs; ++i)
      if (1 + i % (g_size - 1) == g_rank) ++mine;
    for (long i = 0; i < mine; ++i) MPI_Recv(&x, 8, MPI_BYTE, 0, 8, g_comm, MPI_STATUS_IGNORE);
    quiet_barrier();
  }
  const double s = since(t0);
  quiet_barrier();
  return s;
}

double mpi_pingpong() {
  MPI_Barrier(g_comm);
  const auto t0 = Clock::now();
  std::uint64_t x = 0;
  for (long i = 0; i < kMpiTrips; ++i) {
    if (g_rank == 0) {
      MPI_Send(&x, 8, MPI_BYTE, 1, 9, g_comm);
      MPI_Recv(&x, 8, MPI_BYTE, 1, 9, g_comm, MPI_STATUS_IGNORE);
    } else if (g_rank == 1) {
      MPI_Recv(&x, 8, MPI_BYTE, 0, 9, g_comm, MPI_STATUS_IGNORE);
      MPI_Send(&x, 8, MPI_BYTE, 0, 9, g_comm);
    }
  }
  const double s = since(t0);
  quiet_barrier();
  return s;
}

// Every rank's part is done: ranks 1..N-1 tell rank 0 through a troupe queue (an MPI_Barrier
// would spin on the cores that the messenger's progress threads need), rank 0 stops the
// clock when all have.
troupe::Queue<int>* g_done = nullptr;
double finish(Clock::time_point t0) {
  if (g_rank != 0) {
    g_done->put(1);
  } else {
    for (int r = 1; r < g_size; ++r) g_done->get(120s);
  }
  const double s = since(t0);
  quiet_barrier();
  return s;
}

// Producers on ranks 1..N-1, consumer rank 0 (the host) or the reverse, n items in all.
double queue_run(troupe::Queue<std::uint64_t>& q, long n, bool many_to_one, bool batched, bool async = false) {
  MPI_Barrier(g_comm);
  const auto t0 = Clock::now();
  const bool producer = many_to_one ? g_rank != 0 : g_rank == 0;
  const long mine = many_to_one ? (g_rank == 0 ? n : share(n, g_rank)) : (g_rank == 0 ? n : share(n, g_rank));
  if (producer) {
    if (batched && !async) {
      std::vector<std::uint64_t> b;
      for (long i = 0; i < mine; ++i) {
        b.push_back(static_cast<std::uint64_t>(i));
        if (b.size() == kBatch || i + 1 == mine) {
          q.put_many(b);
          b.clear();
        }
      }
    } else {
      for (long i = 0; i < mine; ++i) {
        if (async) {
          q.put_async(static_cast<std::uint64_t>(i));
        } else {
          q.put(static_cast<std::uint64_t>(i));
        }
      }
    }
  } else {
    long got = 0;
    while (got < mine) {
      if (batched) {
        got += static_cast<long>(q.get_many(std::min<std::size_t>(kBatch, static_cast<std::size_t>(mine - got)),
                                            troupe::Deadline::after(120s, "bench"))
                                     .size());
      } else {
        q.get(120s);
        ++got;
      }
    }
  }
  const double s = finish(t0);
  return s;
}

double queue_pingpong(troupe::Queue<std::uint64_t>& to0, troupe::Queue<std::uint64_t>& to1) {
  MPI_Barrier(g_comm);
  const auto t0 = Clock::now();
  for (long i = 0; i < kTrips; ++i) {
    if (g_rank == 1) {
      to0.put(static_cast<std::uint64_t>(i));
      to1.get(120s);
    } else if (g_rank == 0) {
      to1.put(to0.get(120s));
    }
  }
  return finish(t0);
}

double pipe_stream(troupe::Pipe<std::uint64_t>& p) {
  MPI_Barrier(g_comm);
  const auto t0 = Clock::now();
  if (g_rank == 1) {
    for (long i = 0; i < kPipeItems; ++i) p.send(static_cast<std::uint64_t>(i));
  } else if (g_rank == 0) {
    for (long i = 0; i < kPipeItems; ++i) p.recv(120s);
  }
  return finish(t0);
}

double pipe_pingpong(troupe::Pipe<std::uint64_t>& p) {
  MPI_Barrier(g_comm);
  const auto t0 = Clock::now();
  for (long i = 0; i < kPipeTrips; ++i) {
    if (g_rank == 0) {
      p.send(static_cast<std::uint64_t>(i));
      p.recv(120s);
    } else if (g_rank == 1) {
      p.send(p.recv(120s));
    }
  }
  return finish(t0);
}

}  // namespace

int main(int argc, char** argv) try {
  troupe::Runtime rt(argc, argv);
  g_rank = rt.rank();
  g_size = rt.size();
  if (g_size < 2) {
    if (g_rank == 0) std::printf("queue_bench: run with 2 or more ranks\n");
    return 0;
  }
  MPI_Comm_dup(rt.comm(), &g_comm);
  if (g_rank == 0) {
    std::printf("queue_bench: %d ranks, thread level %s, 8-byte items, batch %zu\n", g_size,
                rt.thread_level() == troupe::ThreadLevel::Multiple ? "multiple" : "below multiple", kBatch);
  }
  {
    troupe::Queue<std::uint64_t> q(troupe::Scope::Ranks, 0, 0);
    troupe::Queue<std::uint64_t> to0(troupe::Scope::Ranks, 0, 0);
    troupe::Queue<std::uint64_t> to1(troupe::Scope::Ranks, 0, 1);
    troupe::Pipe<std::uint64_t> pipe(0, 1);
    troupe::Queue<int> done(troupe::Scope::Ranks, 0, 0);
    g_done = &done;

    const double mpi_m2o = measure("mpi_msgrate_many_to_one", kMpiMsgs, true, mpi_many_to_one);
    const double mpi_o2m = measure("mpi_msgrate_one_to_many", kMpiMsgs, true, mpi_one_to_many);
    const double mpi_pp = measure("mpi_pingpong_8B", kMpiTrips, false, mpi_pingpong);

    const double q_m2o = measure("queue_many_to_one", kItems, true, [&] { return queue_run(q, kItems, true, false); });
    const double q_o2m = measure("queue_one_to_many", kItems, true, [&] { return queue_run(q, kItems, false, false); });
    const double qa_m2o = measure("queue_put_async_many_to_one", kAsyncItems, true,
                                  [&] { return queue_run(q, kAsyncItems, true, false, true); });
    const double qab_m2o = measure("queue_put_async_get_many_many_to_one", kBatchItems, true,
                                   [&] { return queue_run(q, kBatchItems, true, true, true); });
    const double qb_m2o =
        measure("queue_batch_many_to_one", kBatchItems, true, [&] { return queue_run(q, kBatchItems, true, true); });
    const double qb_o2m =
        measure("queue_batch_one_to_many", kBatchItems, true, [&] { return queue_run(q, kBatchItems, false, true); });
    const double q_pp = measure("queue_pingpong", kTrips, false, [&] { return queue_pingpong(to0, to1); });
    const double p_st = measure("pipe_stream", kPipeItems, true, [&] { return pipe_stream(pipe); });
    const double p_pp = measure("pipe_pingpong", kPipeTrips, false, [&] { return pipe_pingpong(pipe); });

    ratio("queue_many_to_one_vs_mpi_msgrate", q_m2o, mpi_m2o);
    ratio("queue_one_to_many_vs_mpi_msgrate", q_o2m, mpi_o2m);
    ratio("queue_put_async_many_to_one_vs_mpi_msgrate", qa_m2o, mpi_m2o);
    ratio("queue_put_async_get_many_many_to_one_vs_mpi_msgrate", qab_m2o, mpi_m2o);
    ratio("queue_batch_many_to_one_vs_mpi_msgrate", qb_m2o, mpi_m2o);
    ratio("queue_batch_one_to_many_vs_mpi_msgrate", qb_o2m, mpi_o2m);
    ratio("queue_pingpong_vs_mpi_pingpong", q_pp, mpi_pp);
    ratio("pipe_stream_vs_mpi_msgrate", p_st, mpi_m2o);
    ratio("pipe_pingpong_vs_mpi_pingpong", p_pp, mpi_pp);
    MPI_Barrier(g_comm);
  }
  MPI_Comm_free(&g_comm);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "queue_bench: rank %d: %s\n", g_rank, e.what());
  return 1;
}
