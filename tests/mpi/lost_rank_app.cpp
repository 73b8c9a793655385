// A rank dies mid-map (issue 7): launched by lost_rank.cmake under mpirun with Open MPI's
// recovery enabled (the job survives a dead process), at 3 ranks. Rank 2 kills itself with
// SIGKILL while it runs its 10th task. The root's map must then
//   - with retries: complete with the exact result (the lost rank's tasks run again on
//     the other ranks);
//   - without retries: end with BrokenExecutor naming rank 2;
// later submits must avoid rank 2, and shutdown must complete on the ranks left.
// Usage: test_mpi_lost_rank_app retries|noretries <file for the kill time>
// Each survivor prints "LOSTRANK rank <r>: ..." lines that lost_rank.cmake checks.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "troupe/executor/executor.hpp"
#include "troupe/runtime/runtime.hpp"

namespace {

constexpr int kVictim = 2;
int g_rank = -1;
const char* g_kill_file = nullptr;
std::atomic<int> g_ran{0};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

long square_slowly(long x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // stands in for work
  if (g_rank == kVictim && g_ran.fetch_add(1) == 9) {
    std::ofstream(g_kill_file) << now_ms() << "\n";  // steady_clock is system-wide on Linux
    ::kill(::getpid(), SIGKILL);
  }
  return x * x;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "retries") != 0 && std::strcmp(argv[1], "noretries") != 0)) {
    std::fprintf(stderr, "usage: %s retries|noretries <kill-time file>\n", argv[0]);
    return 2;
  }
  const bool retries = std::strcmp(argv[1], "retries") == 0;
  g_kill_file = argv[2];
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::Runtime rt(ro);
  g_rank = rt.rank();
  if (rt.size() != 3) {
    std::fprintf(stderr, "LOSTRANK needs 3 ranks, got %d\n", rt.size());
    return 2;
  }
  troupe::ExecutorOptions opts;
  opts.failure_timeout = std::chrono::milliseconds(1000);
  opts.retries = retries ? 2 : 0;
  opts.threads = 1;
  troupe::Executor ex(rt, opts);
  int status = 0;
  if (ex.is_root()) {
    std::vector<long> in(300);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<long>(i);
    const auto start = now_ms();
    try {
      auto out = ex.map(troupe::remote<&square_slowly>, in, troupe::MapOptions{.chunksize = 1}).to_vector();
      bool exact = out.size() == in.size();
      for (std::size_t i = 0; exact && i < in.size(); ++i) exact = out[i] == in[i] * in[i];
      std::printf("LOSTRANK rank 0: map completed, result %s, retried %llu, lost ranks %llu\n",
                  exact ? "exact" : "WRONG", static_cast<unsigned long long>(ex.stats().retried),
                  static_cast<unsigned long long>(ex.stats().lost_ranks));
      if (!exact || !retries) status = 1;
    } catch (const troupe::BrokenExecutor& e) {
      long long killed = 0;
      std::ifstream(g_kill_file) >> killed;
      std::printf("LOSTRANK rank 0: map raised BrokenExecutor %lld ms after the kill (%lld ms into the map): %s\n",
                  killed ? static_cast<long long>(now_ms() - killed) : -1LL, static_cast<long long>(now_ms() - start),
                  e.what());
      if (retries) status = 1;
    }
    // Later work avoids the lost rank.
    long sum = 0;
    for (long i = 0; i < 40; ++i) sum += ex.submit(troupe::remote<&square_slowly>, i).result(std::chrono::seconds(60));
    std::printf("LOSTRANK rank 0: 40 later submits %s\n", sum == 20540 ? "ok" : "WRONG");
    if (sum != 20540) status = 1;
  }
  ex.shutdown();
  std::printf("LOSTRANK rank %d: shutdown completed without rank %d\n", rt.rank(), kVictim);
  std::fflush(stdout);
  return status;
}
