// A plain-MPI host at MPI_THREAD_FUNNELED calling troupe phases (issue 13). Its own main:
// the gtest MPI harness starts MPI at MULTIPLE, and what is tested here is troupe adopting a
// host's lower level. Registered at 1, 2 and 4 ranks by host_code.cmake.
//
// 1. isolation: the host's own messages on MPI_COMM_WORLD, on the tags troupe might use
//    (0, 1, 2, 3), posted before a phase and received after it (MPI_ANY_TAG), arrive intact
//    and exactly counted; an MPI_Iprobe(ANY_SOURCE, ANY_TAG, WORLD) after the phase finds
//    nothing; troupe's phase gives the right answers meanwhile;
// 2. 100 phases in a row (Runtime on a split communicator + Executor + map + shutdown +
//    destruction): the process's threads (/proc/self/task) are the host's after every phase,
//    and no communicator leaks (a probe communicator's Fortran handle, see below);
// 3. the FUNNELED rule: the binary links troupe::mpi_check, whose MPI_* definitions (the
//    PMPI profiling interface: troupe is a static library, so its calls bind there too)
//    check every MPI call made while a Runtime is up against the rule of its mode, here
//    "MPI's main thread only"; set to count (MpiCheckAction::Count), its report must show
//    many calls checked and none from another thread. Between phases no troupe thread
//    exists (check 2). The main thread may make its own MPI calls at any time it is not
//    inside a troupe call, including while a map's tasks are running on troupe's worker
//    threads. A deliberate call from another thread shows that the check sees one.
//
// Every wait is bounded; a failed check prints `[rank r] FAILED: ...` and calls MPI_Abort,
// so no rank hangs and the run exits non-zero.
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <troupe/executor/executor.hpp>
#include <troupe/runtime/mpi_token.hpp>
#include <troupe/runtime/runtime.hpp>

using namespace std::chrono_literals;

namespace {

int g_rank = 0;
int g_size = 1;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "[rank %d] FAILED: %s\n", g_rank, what.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

void expect(bool ok, const std::string& what) {
  if (!ok) fail(what);
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

// Completes @p reqs within @p limit, else fails naming @p what (MPI_Testall, then yield).
void wait_all(std::vector<MPI_Request>& reqs, std::vector<MPI_Status>* st, const char* what,
              std::chrono::seconds limit = 30s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int done = 0;
    MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &done, st ? st->data() : MPI_STATUSES_IGNORE);
    if (done) return;
    if (std::chrono::steady_clock::now() > end) fail(std::string(what) + ": not complete after 30 s");
    std::this_thread::yield();
  }
}

void barrier(const char* what) {
  std::vector<MPI_Request> r(1);
  MPI_Ibarrier(MPI_COMM_WORLD, r.data());
  wait_all(r, nullptr, what);
}

// The probe: the Fortran index Open MPI gives a fresh communicator. Freed indices are reused
// lowest first, so it stays put unless communicators leaked (then it grows).
int comm_probe() {
  MPI_Comm c = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &c);
  const int f = static_cast<int>(MPI_Comm_c2f(c));
  MPI_Comm_free(&c);
  return f;
}

// The per-cell work: irregular cost; run on troupe's worker threads (never calls MPI).
long work(long i) {
  long x = i;
  const long iters = 1 + (i * 31 % 17) * 50;
  for (long k = 0; k < iters; ++k) x = (x * 1103515245 + 12345) % 2147483648L;
  return x;
}

// One phase: a Runtime on a split of the world (reversed), an Executor with two workers,
// every rank maps its own cells, the sum over all ranks by map_reduce_all; checks the answers.
// @p host_mpi runs on the main thread between submitting and reading the map (the rule:
// the main thread may call MPI when it is not inside a troupe call).
template <class HostMpi>
void phase(int cells_per_rank, HostMpi&& host_mpi) {
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, 0, g_size - 1 - g_rank, &sub);
  {
    troupe::RuntimeOptions ro;
    ro.quiet = true;
    troupe::Runtime rt(sub, ro);
    expect(rt.thread_level() == troupe::ThreadLevel::Funneled, "Runtime::thread_level() is not FUNNELED");
    expect(!rt.owns_mpi(), "Runtime claims to own the host's MPI");
    troupe::ExecutorOptions eo;
    eo.threads = 2;
    eo.startup_timeout = 30s;
    eo.shutdown_timeout = 30s;
    troupe::Executor ex(rt, eo);
    std::vector<long> in;
    for (int k = 0; k < cells_per_rank; ++k) in.push_back(static_cast<long>(g_rank) * cells_per_rank + k);
    auto results = ex.map([](long i) { return work(i); }, in, {.chunksize = 2, .timeout = 30s});
    host_mpi();
    const std::vector<long> got = results.to_vector();
    expect(got.size() == in.size(), "map returned " + std::to_string(got.size()) + " results");
    for (std::size_t k = 0; k < in.size(); ++k) {
      if (got[k] != work(in[k])) fail("map result " + std::to_string(k) + " is wrong");
    }
    const long n_all = static_cast<long>(cells_per_rank) * g_size;
    const long count = ex.map_reduce_all([](long) { return 1L; }, std::plus<>{}, got, 0L);
    expect(count == n_all, "map_reduce_all counted " + std::to_string(count));
    ex.shutdown();
  }
  MPI_Comm_free(&sub);
}

// 1. The host's messages and troupe's never meet.
void test_isolation() {
  constexpr int kTags = 4;  // 0..3: the small tags troupe's engine and collectives might use
  constexpr int kPerTag = 5;
  const int right = (g_rank + 1) % g_size;
  const int left = (g_rank + g_size - 1) % g_size;
  // (sender, tag, seq, stream) quadruples, kept alive until the sends complete; stream 0 goes
  // to the right-hand neighbour, stream 1 to myself.
  std::vector<int> payload;
  payload.reserve(4 * kTags * kPerTag * 2);
  std::vector<MPI_Request> sends;
  for (int tag = 0; tag < kTags; ++tag) {
    for (int q = 0; q < kPerTag; ++q) {
      for (int stream : {0, 1}) {
        payload.insert(payload.end(), {g_rank, tag, q, stream});
        sends.emplace_back();
        MPI_Isend(&payload[payload.size() - 4], 4, MPI_INT, stream == 0 ? right : g_rank, tag, MPI_COMM_WORLD,
                  &sends.back());
      }
    }
  }
  // A phase while the host's sends are pending, with more host traffic (a Sendrecv with the
  // neighbours, on tag 9 so that it does not take one of the pending messages) while the
  // map's tasks run.
  int sr_in = -1;
  phase(64, [&] {
    int out = 1000 + g_rank;
    MPI_Sendrecv(&out, 1, MPI_INT, right, /*tag=*/9, &sr_in, 1, MPI_INT, left, /*tag=*/9, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
  });
  expect(sr_in == 1000 + left, "the Sendrecv during the phase got " + std::to_string(sr_in));

  // Receive with MPI_ANY_SOURCE and MPI_ANY_TAG: exactly kPerTag per tag from the left and as
  // many from myself, each (sender, tag, seq, stream) once, in order per tag and stream.
  const int expected = 2 * kTags * kPerTag;
  std::vector<int> buf(4 * expected);
  std::vector<MPI_Request> recvs(expected);
  std::vector<MPI_Status> st(expected);
  for (int k = 0; k < expected; ++k) {
    MPI_Irecv(&buf[4 * k], 4, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &recvs[k]);
  }
  wait_all(recvs, &st, "the host's receives");
  wait_all(sends, nullptr, "the host's sends");
  // next[stream][tag]: the sequence number expected next
  std::vector<std::vector<int>> next(2, std::vector<int>(kTags, 0));
  for (int k = 0; k < expected; ++k) {
    const int src = buf[4 * k], tag = buf[4 * k + 1], q = buf[4 * k + 2], stream = buf[4 * k + 3];
    expect(st[k].MPI_SOURCE == src && st[k].MPI_TAG == tag, "a message's envelope does not match its contents");
    expect(stream == 0 || stream == 1, "a message of stream " + std::to_string(stream));
    expect(src == (stream == 0 ? left : g_rank), "a message from rank " + std::to_string(src));
    expect(tag >= 0 && tag < kTags, "a message with tag " + std::to_string(tag));
    expect(q == next[stream][tag], "out of order or duplicate: seq " + std::to_string(q));
    ++next[stream][tag];
  }
  for (int stream : {0, 1}) {
    for (int tag = 0; tag < kTags; ++tag) {
      expect(next[stream][tag] == kPerTag, "tag " + std::to_string(tag) + ": " + std::to_string(next[stream][tag]) +
                                               " messages, want " + std::to_string(kPerTag));
    }
  }
  barrier("isolation barrier");
  int flag = 0;
  MPI_Status probe{};
  MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &probe);
  expect(!flag, "an unexpected message on MPI_COMM_WORLD from rank " + std::to_string(probe.MPI_SOURCE) + " tag " +
                    std::to_string(probe.MPI_TAG));
  if (g_rank == 0) std::printf("isolation: %d host messages per rank on tags 0-3 intact, none extra\n", expected);
}

// 2. + 3. 100 phases: threads, communicators, and who called MPI.
void test_many_phases() {
  constexpr int kPhases = 100;
  const long threads0 = thread_count();
  const int probe0 = comm_probe();
  int probe_max = probe0;
  for (int p = 0; p < kPhases; ++p) {
    phase(16, [] {});
    if (!threads_back_to(threads0)) {
      const long t = thread_count();
      fail("phase " + std::to_string(p) + ": " + std::to_string(t) + " threads 5 s after the phase, the host had " +
           std::to_string(threads0));
    }
    if (p % 10 == 9) probe_max = std::max(probe_max, comm_probe());
  }
  const int probe1 = comm_probe();
  expect(probe1 == probe0, "communicator leak: the probe's handle index went from " + std::to_string(probe0) + " to " +
                               std::to_string(probe1));
  expect(probe_max == probe0, "communicator handle index grew during the phases to " + std::to_string(probe_max));
  // Sanity of the method: a deliberately leaked communicator moves the probe.
  MPI_Comm leak = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &leak);
  expect(comm_probe() != probe0, "the probe does not see a leaked communicator");
  MPI_Comm_free(&leak);
  expect(comm_probe() == probe0, "the probe did not come back after freeing the leak");
  if (g_rank == 0) {
    std::printf(
        "100 phases: threads %ld before and after every phase; communicator probe index %d before, "
        "%d after\n",
        threads0, probe0, probe1);
  }
}

void test_funneled_rule() {
  const troupe::MpiCheckReport r = troupe::mpi_check_report();
  expect(r.violations == 0, "FUNNELED broken: " + std::to_string(r.violations) +
                                " MPI calls from threads other than main; the last: " + r.last);
  // The interposition works: troupe's own calls and the host's were checked.
  expect(r.checked > 1000, "only " + std::to_string(r.checked) + " MPI calls checked (troupe::mpi_check linked?)");
  // Sanity of the method: a call from another thread while a phase runs is found.
  phase(4, [] {
    std::thread other([] {
      int rank = -1;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);  // a local query: harmless, but against the rule
    });
    other.join();
  });
  const troupe::MpiCheckReport after = troupe::mpi_check_report();
  expect(after.violations == 1 && after.last.find("MPI_Comm_rank") != std::string::npos,
         "the check missed a call from another thread (" + std::to_string(after.violations) + " violations)");
  if (g_rank == 0) {
    std::printf("FUNNELED: %llu MPI calls checked, 0 from any other thread (a deliberate one was found)\n",
                static_cast<unsigned long long>(r.checked));
  }
}

}  // namespace

int main(int argc, char** argv) {
  troupe::set_mpi_check_action(troupe::MpiCheckAction::Count);  // report, do not abort: asserted at the end
  int provided = -1;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  expect(provided == MPI_THREAD_FUNNELED, "MPI provided level " + std::to_string(provided) + ", not FUNNELED");
  test_isolation();
  test_many_phases();
  test_funneled_rule();
  barrier("final barrier");
  int finalized = 1;
  MPI_Finalized(&finalized);
  expect(!finalized, "troupe finalized the host's MPI");
  if (g_rank == 0) std::printf("host_code: all checks passed at %d rank(s)\n", g_size);
  MPI_Finalize();
  return 0;
}
