// The executor's dispatch choice against the number of ranks P, without P ranks (issue 10,
// item 7): the O(P) scan that ExecutorCore::Impl::pick was (copied below as the baseline)
// against detail::CreditTable (O(log P)), in the same run, at P = 2 .. 4096.
//
// Two shapes of traffic, per task, with the bookkeeping the executor does under its
// dispatch mutex:
//  - saturated (a map with more chunks than credits, the common case at scale): a result
//    returns one credit, then the next queued task is placed: return + pick + take;
//  - idle (one task at a time): pick + take, then its result returns the credit.
// Every rank has a window of 2 threads x 4 credits (ExecutorOptions::credits_per_thread).
//
// Also the messaging layer's flush at every progress round (Messenger::Impl::flush_all): a
// pass over all P outboxes (before) against the list of destinations with something batched
// (after), with one destination active, as a root streaming tasks to one rank at a time.
//
// Prints `RESULT name=dispatch_<shape>_<scan|table>_p<P> unit=ns value=<median> ...`,
// `RESULT name=flush_<all|pending>_p<P> unit=ns ...` and a RATIO line per pair. Single
// process, no MPI.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "troupe/executor/detail/credits.hpp"

namespace {

// ExecutorCore::Impl::pick before issue 10: one pass over every rank.
struct Scan {
  std::vector<long long> credits;
  std::vector<bool> broken;
  std::size_t rr = 0;
  explicit Scan(int size) : credits(static_cast<std::size_t>(size), 0), broken(static_cast<std::size_t>(size)) {}
  int pick(bool nested, int rank) {
    const int size = static_cast<int>(credits.size());
    long long best = 0;
    int choice = -1;
    for (int k = 0; k < size; ++k) {
      const int r = static_cast<int>((rr + static_cast<std::size_t>(k)) % static_cast<std::size_t>(size));
      const long long free = credits[static_cast<std::size_t>(r)];
      if (broken[static_cast<std::size_t>(r)] || free <= 0) continue;
      if (free > best || (free == best && nested && r == rank)) {
        best = free;
        choice = r;
      }
    }
    if (choice >= 0) rr = static_cast<std::size_t>(choice) + 1;
    return choice;
  }
  void add(int r, long long d) { credits[static_cast<std::size_t>(r)] += d; }
};

struct Table {
  troupe::detail::CreditTable t;
  explicit Table(int size) : t(size) {}
  int pick(bool nested, int rank) { return t.pick(nested, rank); }
  void add(int r, long long d) { t.add(r, d); }
};

constexpr long long kWindow = 2 * 4;
volatile int g_sink = 0;

// Nanoseconds per task, median of @p reps runs of @p n tasks.
template <class T>
double saturated(int p, long n, int reps) {
  std::vector<double> runs;
  for (int rep = 0; rep < reps; ++rep) {
    T d(p);
    for (int r = 0; r < p; ++r) d.add(r, kWindow);
    // In flight, oldest first (results come back roughly in order): a ring.
    std::vector<int> ring(static_cast<std::size_t>(p * kWindow));
    std::size_t head = 0, count = 0;
    for (int t; (t = d.pick(false, 0)) >= 0;) {
      d.add(t, -1);
      ring[(head + count++) % ring.size()] = t;
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) {
      const int back = ring[head];  // a result: its credit comes back (on_done)
      head = (head + 1) % ring.size();
      d.add(back, +1);
      const int t = d.pick(false, 0);  // pump: the next queued task
      d.add(t, -1);
      ring[(head + ring.size() - 1) % ring.size()] = t;
      g_sink = t;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    runs.push_back(s * 1e9 / static_cast<double>(n));
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

template <class T>
double idle(int p, long n, int reps) {
  std::vector<double> runs;
  for (int rep = 0; rep < reps; ++rep) {
    T d(p);
    for (int r = 0; r < p; ++r) d.add(r, kWindow);
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) {
      const int t = d.pick(false, 0);
      d.add(t, -1);
      d.add(t, +1);
      g_sink = t;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    runs.push_back(s * 1e9 / static_cast<double>(n));
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

// The progress round's flush, both ways (the outbox as messaging's: a mutex and a batch).
struct Outbox {
  std::mutex mu;
  std::vector<std::byte> batch;
};

double flush_all_outboxes(int p, long n, int reps) {
  std::vector<double> runs;
  auto out = std::make_unique<Outbox[]>(static_cast<std::size_t>(p));
  for (int rep = 0; rep < reps; ++rep) {
    long found = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) {
      for (int d = 0; d < p; ++d) {
        std::lock_guard lock(out[static_cast<std::size_t>(d)].mu);
        found += out[static_cast<std::size_t>(d)].batch.empty() ? 0 : 1;
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    g_sink = static_cast<int>(found);
    runs.push_back(s * 1e9 / static_cast<double>(n));
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

double flush_pending(int p, long n, int reps) {
  std::vector<double> runs;
  auto out = std::make_unique<Outbox[]>(static_cast<std::size_t>(p));
  std::mutex pending_mu;
  std::vector<int> pending;
  pending.reserve(16);
  for (int rep = 0; rep < reps; ++rep) {
    long found = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) {
      {  // a record batched for one destination since the last round (close())
        std::lock_guard lock(pending_mu);
        pending.push_back(static_cast<int>(i % p));
      }
      std::vector<int> todo;  // flush_all()
      {
        std::lock_guard lock(pending_mu);
        todo.swap(pending);
      }
      for (int d : todo) {
        std::lock_guard lock(out[static_cast<std::size_t>(d)].mu);
        found += out[static_cast<std::size_t>(d)].batch.empty() ? 0 : 1;
      }
      todo.clear();
      std::lock_guard lock(pending_mu);
      if (pending.empty()) pending.swap(todo);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    g_sink = static_cast<int>(found);
    runs.push_back(s * 1e9 / static_cast<double>(n));
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

void row(const char* shape, int p, double scan, double table, int reps, long n) {
  std::printf("RESULT name=dispatch_%s_scan_p%d unit=ns value=%.4g reps=%d n=%ld ranks=1\n", shape, p, scan, reps, n);
  std::printf("RESULT name=dispatch_%s_table_p%d unit=ns value=%.4g reps=%d n=%ld ranks=1\n", shape, p, table, reps, n);
  std::printf("RATIO name=dispatch_%s_scan_over_table_p%d value=%.3g ranks=1\n", shape, p, scan / table);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::max(1, std::atoi(argv[i + 1]));
  }
  for (int p : {2, 4, 8, 16, 64, 256, 1024, 4096}) {
    // About the same work per run for the scan at every P: fewer tasks where it is slow.
    const long n = std::max(20000L, 4000000L / p);
    row("saturated", p, saturated<Scan>(p, n, reps), saturated<Table>(p, n, reps), reps, n);
    row("idle", p, idle<Scan>(p, n, reps), idle<Table>(p, n, reps), reps, n);
  }
  for (int p : {2, 16, 256, 1024, 4096}) {
    const long n = std::max(2000L, 20000000L / p);
    const double all = flush_all_outboxes(p, n, reps), pending = flush_pending(p, n, reps);
    std::printf("RESULT name=flush_all_p%d unit=ns value=%.4g reps=%d n=%ld ranks=1\n", p, all, reps, n);
    std::printf("RESULT name=flush_pending_p%d unit=ns value=%.4g reps=%d n=%ld ranks=1\n", p, pending, reps, n);
    std::printf("RATIO name=flush_all_over_pending_p%d value=%.3g ranks=1\n", p, all / pending);
    std::fflush(stdout);
  }
  return 0;
}
