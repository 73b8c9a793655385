// Messages and bytes per operation as the number of ranks P grows (issue 10, item 7;
// docs/scaling.md): the executor's operations and the cross-rank Barrier, counted with the
// messaging layer's counters (records, batches = MPI messages, bytes) and, for the Barrier,
// which makes its own MPI calls, with the MPI profiling interface. A test fails when an
// operation sends more than designed:
//  - a remote unchunked submit: exactly one task record from the submitter and one result
//    record from the rank that ran it, nothing on the other ranks;
//  - a map chunk sent to another rank: exactly one task record and one result record;
//  - Executor construction (its census), map_reduce_all, the messenger's barrier and
//    allreduce: one tree allreduce each: at most ceil(log2 P) + 1 records sent per rank,
//    2 (P - 1) in all, no other record;
//  - shutdown: R rounds of that allreduce (R >= 2: two rounds that agree), nothing else;
//  - the cross-rank Barrier: per wait and rank, one atomic on rank 0 and one MPI_Ibarrier,
//    no point-to-point message of troupe's.
// Records are asserted; MPI messages (batches) may be fewer (several records share one)
// and depend on timing, so they are only printed, with the bytes. Each rank prints nothing;
// rank 0 prints one `SCALING op=... P=...` line per operation (the table of docs/scaling.md).
// The messenger's own reduce and broadcast per root are checked in messaging_mpi_test.cpp.
#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <vector>

#include "troupe/executor/detail/testing.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/messaging/messenger.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/sync/barrier.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::Executor;
using troupe::messaging::MessengerStats;
using troupe_test::Comm;
using troupe_test::quiet;

// --- the MPI calls the cross-rank Barrier makes, counted (the MPI profiling interface) ----
namespace {
std::atomic<std::uint64_t> g_atomics{0}, g_atomics_off_root{0}, g_ibarriers{0}, g_isends{0};
}  // namespace

int MPI_Fetch_and_op(const void* origin, void* result, MPI_Datatype type, int target, MPI_Aint disp, MPI_Op op,
                     MPI_Win win) {
  g_atomics.fetch_add(1);
  if (target != 0) g_atomics_off_root.fetch_add(1);
  return PMPI_Fetch_and_op(origin, result, type, target, disp, op, win);
}
int MPI_Compare_and_swap(const void* origin, const void* compare, void* result, MPI_Datatype type, int target,
                         MPI_Aint disp, MPI_Win win) {
  g_atomics.fetch_add(1);
  if (target != 0) g_atomics_off_root.fetch_add(1);
  return PMPI_Compare_and_swap(origin, compare, result, type, target, disp, win);
}
int MPI_Ibarrier(MPI_Comm comm, MPI_Request* request) {
  g_ibarriers.fetch_add(1);
  return PMPI_Ibarrier(comm, request);
}
int MPI_Isend(const void* buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm, MPI_Request* request) {
  g_isends.fetch_add(1);
  return PMPI_Isend(buf, count, type, dest, tag, comm, request);
}

namespace {

std::uint64_t log2_ceil(int p) { return static_cast<std::uint64_t>(std::ceil(std::log2(static_cast<double>(p)))); }

// What one rank sent during one operation.
struct Sent {
  std::uint64_t records = 0;  // records other than the collectives' mail (tasks, results, ...)
  std::uint64_t mail = 0;     // the collectives' records
  std::uint64_t batches = 0;  // MPI messages
  std::uint64_t bytes = 0;
};

Sent delta(const MessengerStats& before, const MessengerStats& after) {
  return Sent{(after.records_sent - after.mail_sent) - (before.records_sent - before.mail_sent),
              after.mail_sent - before.mail_sent, after.batches_sent - before.batches_sent,
              after.bytes_sent - before.bytes_sent};
}

// Every rank's Sent, gathered with plain MPI on the test's own communicator (no record of
// the messenger's), and the line of the table printed by rank 0.
std::vector<Sent> gather(const Comm& c, const Sent& mine, const char* op, std::uint64_t ops = 1) {
  std::uint64_t v[4] = {mine.records, mine.mail, mine.batches, mine.bytes};
  std::vector<std::uint64_t> all(4 * static_cast<std::size_t>(c.size()));
  MPI_Allgather(v, 4, MPI_UINT64_T, all.data(), 4, MPI_UINT64_T, c.comm);
  std::vector<Sent> out;
  Sent max, sum;
  for (int r = 0; r < c.size(); ++r) {
    const std::uint64_t* a = &all[4 * static_cast<std::size_t>(r)];
    out.push_back(Sent{a[0], a[1], a[2], a[3]});
    max = Sent{std::max(max.records, a[0]), std::max(max.mail, a[1]), std::max(max.batches, a[2]),
               std::max(max.bytes, a[3])};
    sum = Sent{sum.records + a[0], sum.mail + a[1], sum.batches + a[2], sum.bytes + a[3]};
  }
  if (c.rank() == 0 && std::getenv("TROUPE_SCALING_PER_RANK")) {
    for (int r = 0; r < c.size(); ++r) {
      const auto& x = out[static_cast<std::size_t>(r)];
      std::printf("SCALING_RANK op=%s rank=%d records=%.0f mail=%.0f mpi_msgs=%.0f bytes=%.0f\n", op, r,
                  static_cast<double>(x.records), static_cast<double>(x.mail), static_cast<double>(x.batches),
                  static_cast<double>(x.bytes));
    }
  }
  if (c.rank() == 0) {
    const auto n = static_cast<double>(ops);
    std::printf(
        "SCALING op=%s P=%d ops=%llu per_op: records_max_rank=%.3g records_all=%.3g mail_max_rank=%.3g mail_all=%.3g "
        "mpi_msgs_max_rank=%.3g mpi_msgs_all=%.3g bytes_max_rank=%.4g bytes_all=%.4g\n",
        op, c.size(), static_cast<unsigned long long>(ops), static_cast<double>(max.records) / n,
        static_cast<double>(sum.records) / n, static_cast<double>(max.mail) / n, static_cast<double>(sum.mail) / n,
        static_cast<double>(max.batches) / n, static_cast<double>(sum.batches) / n, static_cast<double>(max.bytes) / n,
        static_cast<double>(sum.bytes) / n);
    std::fflush(stdout);
  }
  return out;
}

// One tree allreduce of the messaging layer (reduce to rank 0, broadcast): no other record,
// at most ceil(log2 P) + 1 mail records sent per rank, 2 (P - 1) in all.
void expect_one_allreduce(const std::vector<Sent>& all, const char* op, std::uint64_t rounds = 1) {
  const auto p = static_cast<int>(all.size());
  std::uint64_t total = 0;
  for (int r = 0; r < p; ++r) {
    const auto& s = all[static_cast<std::size_t>(r)];
    EXPECT_EQ(s.records, 0u) << op << ": rank " << r << " sent records besides the collective's";
    EXPECT_LE(s.mail, rounds * (log2_ceil(p) + 1)) << op << ": rank " << r << " sent more than a tree allows";
    EXPECT_LE(s.batches, s.records + s.mail) << op << ": rank " << r;
    total += s.mail;
  }
  EXPECT_EQ(total, rounds * 2 * static_cast<std::uint64_t>(p - 1)) << op << ": a tree allreduce sends 2 (P - 1)";
}

int echo(int x) { return x; }

}  // namespace

TEST(Scaling, ExecutorOperationsSendWhatTheDesignSays) {
  Comm c;
  const int p = c.size();
  if (p < 2) GTEST_SKIP() << "needs 2 ranks or more";
  troupe::Runtime rt(quiet());
  troupe::ExecutorOptions opts;
  opts.threads = 1;            // P ranks on 2 cores: modest
  opts.failure_timeout = 0ms;  // no pings: only the operations' own records
  const auto none = MessengerStats{};
  Executor ex(rt, opts);
  const int rank = ex.rank();
  using troupe::detail::ExecutorTesting;

  // Construction: the census (one tree allreduce) and nothing else. Counted after an
  // MPI_Barrier (the last broadcast messages have left their sender: every rank has them)
  // and before anyone can submit (gather's MPI_Allgather comes first).
  MPI_Barrier(c.comm);
  const auto built = ExecutorTesting::messenger_stats(ex);
  expect_one_allreduce(gather(c, delta(none, built), "construction"), "construction");

  // Remote unchunked submits, pinned to rank 1: one task record each from rank 0, one result
  // record each from rank 1, nothing elsewhere.
  constexpr std::uint64_t kSubmits = 64;
  // Every window: the counters read, then an MPI_Barrier (nobody starts the operation before
  // every rank has read them), the operation, an MPI_Barrier (every record of it has left
  // its sender), the counters read again, gathered (an MPI_Allgather: every rank has read
  // them before anyone starts the next operation).
  auto s0 = ExecutorTesting::messenger_stats(ex);
  MPI_Barrier(c.comm);
  if (rank == 0) {
    for (std::uint64_t i = 0; i < kSubmits; ++i) {
      EXPECT_EQ(ex.submit_to(1, troupe::remote<&echo>, static_cast<int>(i)).result(120s), static_cast<int>(i));
    }
  }
  MPI_Barrier(c.comm);  // rank 1 has sent every result: rank 0 has them all
  auto all = gather(c, delta(s0, ExecutorTesting::messenger_stats(ex)), "submit_remote", kSubmits);
  for (int r = 0; r < p; ++r) {
    const auto& s = all[static_cast<std::size_t>(r)];
    EXPECT_EQ(s.records, r <= 1 ? kSubmits : 0u) << "submit: rank " << r;
    EXPECT_EQ(s.mail, 0u) << "submit: rank " << r;
    // The records' size does not depend on P (an int argument, an int result).
    if (r <= 1) {
      EXPECT_LE(s.bytes, kSubmits * 96) << "submit: rank " << r;
    }
  }

  // Submits placed by credits (the dispatch choice): every task that leaves rank 0 is one
  // task record, and its result one result record.
  const auto e0 = ex.stats();
  s0 = ExecutorTesting::messenger_stats(ex);
  MPI_Barrier(c.comm);
  if (rank == 0) {
    std::vector<troupe::Future<int>> fs;
    for (int i = 0; i < 256; ++i) fs.push_back(ex.submit(troupe::remote<&echo>, i));
    for (int i = 0; i < 256; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(120s), i);
  }
  MPI_Barrier(c.comm);
  const auto e1 = ex.stats();
  const std::uint64_t sent = e1.sent_remote - e0.sent_remote, served = e1.served_remote - e0.served_remote;
  all = gather(c, delta(s0, ExecutorTesting::messenger_stats(ex)), "submit_by_credits",
               rank == 0 ? std::max<std::uint64_t>(sent, 1) : 1);
  EXPECT_EQ(all[static_cast<std::size_t>(rank)].records, rank == 0 ? sent : served) << "rank " << rank;

  // A map: every chunk sent to another rank is one task record and one result record.
  s0 = ExecutorTesting::messenger_stats(ex);
  const auto m0 = ex.stats();
  MPI_Barrier(c.comm);
  constexpr std::size_t kItems = 4096, kChunk = 64;
  if (rank == 0) {
    std::vector<int> in(kItems);
    std::iota(in.begin(), in.end(), 0);
    auto out = ex.map(troupe::remote<&echo>, in, {.chunksize = kChunk, .timeout = 120s}).to_vector();
    EXPECT_EQ(out, in);
  }
  MPI_Barrier(c.comm);
  const auto m1 = ex.stats();
  std::uint64_t chunks_sent = m1.sent_remote - m0.sent_remote;
  MPI_Bcast(&chunks_sent, 1, MPI_UINT64_T, 0, c.comm);
  all =
      gather(c, delta(s0, ExecutorTesting::messenger_stats(ex)), "map_chunk", std::max<std::uint64_t>(chunks_sent, 1));
  std::uint64_t results = 0;
  for (int r = 1; r < p; ++r) results += all[static_cast<std::size_t>(r)].records;
  EXPECT_EQ(all[0].records, chunks_sent) << "map: one task record per chunk sent";
  EXPECT_EQ(results, chunks_sent) << "map: one result record per chunk sent";
  EXPECT_EQ(all[static_cast<std::size_t>(rank)].records, rank == 0 ? chunks_sent : m1.served_remote - m0.served_remote);

  // map_reduce_all: one tree allreduce.
  std::vector<long> mine(100, rank + 1);
  s0 = ExecutorTesting::messenger_stats(ex);
  MPI_Barrier(c.comm);
  const long total = ex.map_reduce_all([](long x) { return x; }, std::plus<long>{}, mine);
  MPI_Barrier(c.comm);
  auto s1 = ExecutorTesting::messenger_stats(ex);
  EXPECT_EQ(total, 100L * p * (p + 1) / 2);
  expect_one_allreduce(gather(c, delta(s0, s1), "map_reduce_all"), "map_reduce_all");

  // The messenger's barrier and allreduce (the executor's collectives are made of them).
  auto& m = ExecutorTesting::messenger(ex);
  s0 = ExecutorTesting::messenger_stats(ex);
  MPI_Barrier(c.comm);
  m.barrier(troupe::Deadline::after(120s, "test"));
  MPI_Barrier(c.comm);
  s1 = ExecutorTesting::messenger_stats(ex);
  expect_one_allreduce(gather(c, delta(s0, s1), "messenger_barrier"), "messenger barrier");
  s0 = ExecutorTesting::messenger_stats(ex);
  MPI_Barrier(c.comm);
  const auto sum = m.allreduce_value(std::uint64_t{1}, std::plus<>{}, troupe::Deadline::after(120s, "test"));
  MPI_Barrier(c.comm);
  s1 = ExecutorTesting::messenger_stats(ex);
  EXPECT_EQ(sum, static_cast<std::uint64_t>(p));
  expect_one_allreduce(gather(c, delta(s0, s1), "messenger_allreduce_u64"), "messenger allreduce");

  // Shutdown: quiescence, R rounds of the allreduce of the counters (R >= 2), nothing else.
  s0 = ExecutorTesting::messenger_stats(ex);
  MPI_Barrier(c.comm);
  ex.shutdown();
  // As the messenger stopped: its records are all counted; the last round's broadcast
  // messages may still have been in their batches (MPI messages and bytes a little short).
  s1 = ExecutorTesting::messenger_stats(ex);
  std::uint64_t shutdown_mail = s1.mail_sent - s0.mail_sent;
  std::uint64_t all_mail = 0;
  MPI_Allreduce(&shutdown_mail, &all_mail, 1, MPI_UINT64_T, MPI_SUM, c.comm);
  const std::uint64_t per_round = 2 * static_cast<std::uint64_t>(p - 1);
  ASSERT_EQ(all_mail % per_round, 0u) << "shutdown: whole rounds of a tree allreduce";
  const std::uint64_t rounds = all_mail / per_round;
  EXPECT_GE(rounds, 2u) << "shutdown: two agreeing rounds at least";
  all = gather(c, delta(s0, s1), "shutdown");
  expect_one_allreduce(all, "shutdown", rounds);
  if (rank == 0)
    std::printf("SCALING op=shutdown P=%d quiescence_rounds=%llu\n", p, static_cast<unsigned long long>(rounds));
}

TEST(Scaling, CrossRankBarrierWaitIsOneAtomicAndOneIbarrierPerRank) {
  Comm c;
  const int p = c.size();
  troupe::Runtime rt(quiet());
  troupe::Barrier b(troupe::Scope::Ranks, p);
  (void)b.wait(120s);  // warm: anything lazy happens here, outside the count
  constexpr std::uint64_t kWaits = 20;
  MPI_Barrier(c.comm);
  const std::uint64_t a0 = g_atomics.load(), o0 = g_atomics_off_root.load(), i0 = g_ibarriers.load(),
                      s0 = g_isends.load();
  for (std::uint64_t k = 0; k < kWaits; ++k) (void)b.wait(120s);
  const std::uint64_t mine[4] = {g_atomics.load() - a0, g_atomics_off_root.load() - o0, g_ibarriers.load() - i0,
                                 g_isends.load() - s0};
  MPI_Barrier(c.comm);
  EXPECT_EQ(mine[0], kWaits) << "one atomic (the arrival ticket) per wait";
  EXPECT_EQ(mine[1], 0u) << "every ticket is taken on rank 0";
  EXPECT_EQ(mine[2], kWaits) << "one MPI_Ibarrier per wait";
  EXPECT_EQ(mine[3], 0u) << "no point-to-point message of troupe's";
  std::uint64_t at_root = 0;
  MPI_Reduce(&mine[0], &at_root, 1, MPI_UINT64_T, MPI_SUM, 0, c.comm);
  if (c.rank() == 0) {
    EXPECT_EQ(at_root, kWaits * static_cast<std::uint64_t>(p)) << "rank 0 serves P atomics per generation";
    std::printf(
        "SCALING op=across_barrier_wait P=%d per_wait: atomics_per_rank=1 atomics_at_rank0=%d ibarrier_per_rank=1 "
        "ibarrier_rounds=ceil(log2 P)=%llu troupe_p2p=0\n",
        p, p, static_cast<unsigned long long>(log2_ceil(p)));
    std::fflush(stdout);
  }
}
