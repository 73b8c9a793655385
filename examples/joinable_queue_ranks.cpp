// A JoinableQueue shared by every rank: producers on every rank put jobs, consumer threads
// on every rank take them, process them and call task_done(); join() on every rank waits
// until every job of every producer has been processed; then close() ends the consumers —
// each one's get() raises troupe::ShutDown once the queue is drained, so no sentinel
// items are needed (Python 3.13's queue.shutdown()).
//
//   mpirun -n 4 build/examples/joinable_queue_ranks
//
// Each consumer reports (jobs, sum of squares) on a SimpleQueue hosted on rank 0, which
// checks the totals against the closed form.
#include <troupe/across/queue.hpp>
#include <troupe/runtime/runtime.hpp>

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <utility>
#include <vector>

#include "example_check.hpp"

using namespace std::chrono_literals;

struct Job {
  std::int64_t id = 0;
  std::int64_t value = 0;
  template <class A>
  void troupe_fields(A& a) {
    a(id, value);
  }
};

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  constexpr std::int64_t kPerRank = 300;
  constexpr int kConsumersPerRank = 2;
  // Collective: every rank builds both queues, in the same order. At most 16 jobs wait at
  // once, over all ranks together (rank 0 holds them).
  troupe::JoinableQueue<Job> jobs(troupe::Scope::RanksAndThreads, /*maxsize=*/16);
  troupe::SimpleQueue<std::pair<std::int64_t, std::int64_t>> totals(troupe::Scope::Ranks);

  std::vector<std::thread> consumers;
  for (int t = 0; t < kConsumersPerRank; ++t) {
    consumers.emplace_back([&] {
      std::int64_t n = 0, sum = 0;
      try {
        for (;;) {
          const Job job = jobs.get(60s);  // Empty after 60 s without a job: a stuck run fails
          sum += job.value * job.value;
          ++n;
          jobs.task_done();
        }
      } catch (const troupe::ShutDown&) {  // closed and drained: this consumer is done
      }
      totals.put({n, sum});
    });
  }

  // This rank's producer: jobs 1..kPerRank offset by rank (put waits while 16 are queued).
  for (std::int64_t i = 1; i <= kPerRank; ++i) jobs.put(Job{rt.rank() * kPerRank + i, rt.rank() * kPerRank + i}, 60s);

  // Every producer has put everything (an MPI barrier on a private communicator), then
  // every rank waits until all of it has been processed.
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  MPI_Barrier(comm);
  const bool joined = jobs.join(60s);
  example::check(joined, "join() returned before the timeout");
  MPI_Barrier(comm);                 // every rank's join has returned
  if (rt.rank() == 0) jobs.close();  // wakes every consumer on every rank
  for (auto& c : consumers) c.join();

  if (rt.rank() == 0) {
    std::int64_t n = 0, sum = 0;
    for (int i = 0; i < kConsumersPerRank * rt.size(); ++i) {
      const auto [cn, csum] = totals.get(60s);
      n += cn;
      sum += csum;
    }
    const std::int64_t N = kPerRank * rt.size();
    const auto stats = jobs.stats();
    std::printf("%lld jobs from %d producers processed by %d consumers: sum of squares %lld (high-water %zu of 16)\n",
                static_cast<long long>(n), rt.size(), kConsumersPerRank * rt.size(), static_cast<long long>(sum),
                stats.high_water);
    example::check(n == N, "every job processed exactly once");
    example::check(sum == N * (N + 1) * (2 * N + 1) / 6, "sum of squares 1..N");
    example::check(stats.high_water <= 16, "never more than maxsize jobs queued");
    example::check(stats.unfinished == 0, "no unfinished job");
  }
  MPI_Barrier(comm);
  MPI_Comm_free(&comm);
  return example::failures == 0 ? 0 : 1;
}
