// Raw MPI baselines for issue 3's benchmarks: the floor that any MPI-based executor sits
// on, on this machine, measured with nothing but the MPI C API between two ranks.
//
//   mpirun --allow-run-as-root -n 2 build-bench/bench/troupe_mpi_baseline [--thread-level=multiple|serialized|single]
//
// Measures (rank 0 <-> rank 1, one thread per rank):
//   pingpong_{8,64,1024}B  full round trip (send + receive back), µs
//   msgrate_8B             one-way 8-byte message rate: windows of 64 MPI_Isend + one
//                          MPI_Waitall; the receiver keeps two windows of MPI_Irecv posted
//   tasks_16B              "task-shaped": rank 0 sends 16-byte tasks, rank 1 answers each with
//                          a 16-byte result, 256 tasks in flight, refilled 32 at a time: tasks/s. This is the ceiling
//                          of an executor that sends one MPI message per task and per result;
//                          an executor that batches several tasks into one message can beat it.
//
// Each figure is the median of 5 timed batches after one warm-up batch; every batch is far
// above 1 ms, so a scheduler stall on the shared cores shows up in min/max instead of
// hiding between samples (docs/performance.md, reference "pitfall 7"). Output, rank 0 only,
// one line per measure, parsed by scripts/compare-mpi4py.sh:
//
//   RESULT name=pingpong_8B unit=us value=0.41 reps=5 min=0.40 max=0.52 n=20000 level=multiple
//
// value/min/max are the median, best and worst batch; n is the count per batch. With
// --thread-level=single every name gets the suffix "_single" (the reference point: troupe
// initializes MPI_THREAD_MULTIPLE, which costs about 25% on this Open MPI).
#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kBatches = 5;
constexpr long kRoundTrips = 20'000;  // per ping-pong batch: 8-16 ms at 0.4-0.8 µs
constexpr int kRateWindow = 64;       // MPI_Isend per MPI_Waitall
constexpr long kRateWindows = 4'000;  // per message-rate batch: 256,000 messages
constexpr int kTaskWindow = 256;      // tasks in flight
constexpr long kTasks = 200'000;      // per task-shaped batch
constexpr int kTaskBytes = 16;

// Tags: distinct per purpose so that a bug cannot match a control message as data.
constexpr int kTagPing = 1;
constexpr int kTagData = 2;
constexpr int kTagReady = 3;
constexpr int kTagAck = 4;
constexpr int kTagTask = 5;
constexpr int kTagResult = 6;

int g_rank = 0;
std::string g_suffix;      // "" or "_single"
std::string g_level_name;  // "multiple" or "single"

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  std::fprintf(stderr, "[rank %d] %s failed: %s\n", g_rank, call, text);
  MPI_Abort(MPI_COMM_WORLD, 2);
}
#define CHECK_MPI(call) check((call), #call)

using bench::seconds_since;

// Only rank 0 times and prints; rank 1's own numbers would only repeat it.
void report(const char* name, const char* unit, const std::vector<double>& samples, long n, double batch_seconds_min) {
  if (g_rank != 0) return;
  bench::print_result(std::string(name).append(g_suffix).c_str(), unit, samples,
                      bench::field("n", n).append(" level=").append(g_level_name));
  if (batch_seconds_min < 1e-3) {
    std::printf("WARNING %s: a batch took %.3f ms (< 1 ms); stalls may hide between batches\n", name,
                batch_seconds_min * 1e3);
  }
  std::fflush(stdout);
}

// Starts both ranks' batch together, so that rank 0's clock does not include rank 1 arriving late.
void align() { CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD)); }

// ---------------------------------------------------------------------------------------
// Ping-pong: blocking MPI_Send/MPI_Recv, the full round trip per iteration.
double pingpong_batch(std::vector<char>& buf, int bytes, long iters) {
  align();
  const auto t0 = Clock::now();
  for (long i = 0; i < iters; ++i) {
    if (g_rank == 0) {
      CHECK_MPI(MPI_Send(buf.data(), bytes, MPI_BYTE, /*dest=*/1, kTagPing, MPI_COMM_WORLD));
      CHECK_MPI(MPI_Recv(buf.data(), bytes, MPI_BYTE, /*source=*/1, kTagPing, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    } else {
      CHECK_MPI(MPI_Recv(buf.data(), bytes, MPI_BYTE, /*source=*/0, kTagPing, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      CHECK_MPI(MPI_Send(buf.data(), bytes, MPI_BYTE, /*dest=*/0, kTagPing, MPI_COMM_WORLD));
    }
  }
  return seconds_since(t0);
}

void pingpong(int bytes) {
  std::vector<char> buf(static_cast<std::size_t>(bytes), 'x');
  pingpong_batch(buf, bytes, kRoundTrips);  // warm-up
  std::vector<double> us;
  double shortest = 1e9;
  for (int b = 0; b < kBatches; ++b) {
    const double s = pingpong_batch(buf, bytes, kRoundTrips);
    shortest = std::min(shortest, s);
    us.push_back(s * 1e6 / static_cast<double>(kRoundTrips));
  }
  const std::string name = "pingpong_" + std::to_string(bytes) + "B";
  report(name.c_str(), "us", us, kRoundTrips, shortest);
}

// ---------------------------------------------------------------------------------------
// Message rate, rank 0 -> rank 1, 8-byte messages. The receiver keeps two windows of
// MPI_Irecv posted (double buffering), so messages normally find a posted receive; the
// sender's window is MPI_Isend x 64 + MPI_Waitall. Rank 0's clock starts when rank 1 says
// its windows are posted and stops at rank 1's acknowledgement of the last message.
double msgrate_batch(long windows) {
  constexpr int kBytes = 8;
  std::array<std::array<std::uint64_t, kRateWindow>, 2> bufs{};
  std::array<std::array<MPI_Request, kRateWindow>, 2> reqs{};
  double elapsed = 0;
  align();
  if (g_rank == 0) {
    std::array<std::uint64_t, kRateWindow> out{};
    CHECK_MPI(MPI_Recv(nullptr, 0, MPI_BYTE, 1, kTagReady, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    const auto t0 = Clock::now();
    for (long w = 0; w < windows; ++w) {
      for (int j = 0; j < kRateWindow; ++j) {
        out[static_cast<std::size_t>(j)] = static_cast<std::uint64_t>(w);
        CHECK_MPI(MPI_Isend(&out[static_cast<std::size_t>(j)], kBytes, MPI_BYTE, /*dest=*/1, kTagData, MPI_COMM_WORLD,
                            &reqs[0][static_cast<std::size_t>(j)]));
      }
      CHECK_MPI(MPI_Waitall(kRateWindow, reqs[0].data(), MPI_STATUSES_IGNORE));
    }
    CHECK_MPI(MPI_Recv(nullptr, 0, MPI_BYTE, 1, kTagAck, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    elapsed = seconds_since(t0);
  } else {
    auto post = [&](int slot) {
      for (int j = 0; j < kRateWindow; ++j) {
        CHECK_MPI(MPI_Irecv(&bufs[static_cast<std::size_t>(slot)][static_cast<std::size_t>(j)], kBytes, MPI_BYTE,
                            /*source=*/0, kTagData, MPI_COMM_WORLD,
                            &reqs[static_cast<std::size_t>(slot)][static_cast<std::size_t>(j)]));
      }
    };
    post(0);
    if (windows > 1) post(1);
    CHECK_MPI(MPI_Send(nullptr, 0, MPI_BYTE, 0, kTagReady, MPI_COMM_WORLD));
    for (long w = 0; w < windows; ++w) {
      const int slot = static_cast<int>(w % 2);
      CHECK_MPI(MPI_Waitall(kRateWindow, reqs[static_cast<std::size_t>(slot)].data(), MPI_STATUSES_IGNORE));
      if (bufs[static_cast<std::size_t>(slot)][kRateWindow - 1] != static_cast<std::uint64_t>(w)) {
        std::fprintf(stderr, "msgrate: window %ld received out of order\n", w);
        MPI_Abort(MPI_COMM_WORLD, 3);
      }
      if (w + 2 < windows) post(slot);  // matched in post order: after the other window
    }
    CHECK_MPI(MPI_Send(nullptr, 0, MPI_BYTE, 0, kTagAck, MPI_COMM_WORLD));
  }
  return elapsed;
}

void msgrate() {
  msgrate_batch(kRateWindows);  // warm-up
  std::vector<double> rate;
  double shortest = 1e9;
  const double msgs = static_cast<double>(kRateWindows * kRateWindow);
  for (int b = 0; b < kBatches; ++b) {
    const double s = msgrate_batch(kRateWindows);
    shortest = std::min(shortest, s);
    rate.push_back(g_rank == 0 ? msgs / s : 0.0);
  }
  report("msgrate_8B", "msg/s", rate, kRateWindows * kRateWindow, shortest);
}

// ---------------------------------------------------------------------------------------
// Task-shaped: rank 0 keeps kTaskWindow 16-byte tasks in flight; rank 1 answers each task
// with its own 16-byte result (id + 1 in the second word). Both sides keep kTaskWindow
// receives posted and work in groups of kTaskGroup: wait for a group, repost its receives,
// send its messages (one MPI message per task and per result, never aggregated). Refilling
// one slot per completed message instead made the rate flip between two steady states
// (about 2 M and 5.5 M tasks/s, batch to batch); refilling by groups is stable and faster.
// Results return in order (no overtaking between one pair and one tag), so slot i % window
// receives result i, then i + window, ...
constexpr int kTaskGroup = 32;
static_assert(kTaskWindow % kTaskGroup == 0 && kTasks % kTaskGroup == 0);

struct Msg {
  std::uint64_t id;
  std::uint64_t value;
};
static_assert(sizeof(Msg) == kTaskBytes);

double tasks_batch(long n) {
  const int peer = 1 - g_rank;
  const int recv_tag = g_rank == 0 ? kTagResult : kTagTask;
  const int send_tag = g_rank == 0 ? kTagTask : kTagResult;
  std::vector<Msg> slots(kTaskWindow);
  std::array<Msg, kTaskGroup> out{};
  std::vector<MPI_Request> reqs(kTaskWindow);
  auto post = [&](long first) {  // receives for messages first .. first + kTaskGroup - 1
    for (long i = first; i < first + kTaskGroup; ++i) {
      const auto s = static_cast<std::size_t>(i % kTaskWindow);
      CHECK_MPI(MPI_Irecv(&slots[s], kTaskBytes, MPI_BYTE, peer, recv_tag, MPI_COMM_WORLD, &reqs[s]));
    }
  };
  auto send = [&](std::size_t count) {
    for (std::size_t j = 0; j < count; ++j) {
      CHECK_MPI(MPI_Send(&out[j], kTaskBytes, MPI_BYTE, peer, send_tag, MPI_COMM_WORLD));
    }
  };
  for (long first = 0; first < kTaskWindow && first < n; first += kTaskGroup) post(first);
  align();
  const auto t0 = Clock::now();
  if (g_rank == 0) {  // the first window of tasks
    for (long first = 0; first < kTaskWindow && first < n; first += kTaskGroup) {
      for (int j = 0; j < kTaskGroup; ++j) {
        const auto id = static_cast<std::uint64_t>(first + j);
        out[static_cast<std::size_t>(j)] = Msg{id, id};
      }
      send(kTaskGroup);
    }
  }
  for (long first = 0; first < n; first += kTaskGroup) {
    const auto base = static_cast<std::size_t>(first % kTaskWindow);
    CHECK_MPI(MPI_Waitall(kTaskGroup, &reqs[base], MPI_STATUSES_IGNORE));
    for (std::size_t j = 0; j < kTaskGroup; ++j) {
      const Msg& m = slots[base + j];
      const auto expected = static_cast<std::uint64_t>(first) + j;
      if (m.id != expected || (g_rank == 0 && m.value != m.id + 1)) {
        std::fprintf(stderr, "[rank %d] tasks: message %llu wrong (id %llu)\n", g_rank,
                     static_cast<unsigned long long>(expected), static_cast<unsigned long long>(m.id));
        MPI_Abort(MPI_COMM_WORLD, 3);
      }
      if (g_rank == 1) out[j] = Msg{m.id, m.value + 1};  // the "work"
    }
    const long next = first + kTaskWindow;  // the next messages these slots will receive
    if (next < n) post(next);
    if (g_rank == 0) {
      if (next < n) {
        for (std::size_t j = 0; j < kTaskGroup; ++j) {
          const auto id = static_cast<std::uint64_t>(next) + j;
          out[j] = Msg{id, id};
        }
        send(kTaskGroup);
      }
    } else {
      send(kTaskGroup);  // the results of this group
    }
  }
  return seconds_since(t0);
}

void tasks() {
  tasks_batch(kTasks);  // warm-up
  std::vector<double> rate;
  double shortest = 1e9;
  for (int b = 0; b < kBatches; ++b) {
    const double s = tasks_batch(kTasks);
    shortest = std::min(shortest, s);
    rate.push_back(g_rank == 0 ? static_cast<double>(kTasks) / s : 0.0);
  }
  report("tasks_16B", "tasks/s", rate, kTasks, shortest);
}

}  // namespace

int main(int argc, char** argv) {
  int requested = MPI_THREAD_MULTIPLE;
  g_level_name = "multiple";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--thread-level=single") {
      requested = MPI_THREAD_SINGLE;
      g_level_name = "single";
      g_suffix = "_single";
    } else if (arg == "--thread-level=serialized") {
      requested = MPI_THREAD_SERIALIZED;
      g_level_name = "serialized";
      g_suffix = "_serialized";
    } else if (arg == "--thread-level=multiple") {
      // the default
    } else {
      std::fprintf(stderr, "usage: %s [--thread-level=multiple|serialized|single]\n  unknown argument: %s\n", argv[0],
                   argv[i]);
      return 2;
    }
  }
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(&argc, &argv, requested, &provided);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 2) {
    if (g_rank == 0) std::fprintf(stderr, "troupe_mpi_baseline needs exactly 2 ranks, got %d\n", size);
    MPI_Finalize();
    return 2;
  }
  if (provided < requested && g_rank == 0) {
    std::printf("WARNING requested thread level %d, MPI provided %d\n", requested, provided);
  }
  pingpong(8);
  pingpong(64);
  pingpong(1024);
  msgrate();
  tasks();
  MPI_Finalize();
  return 0;
}
