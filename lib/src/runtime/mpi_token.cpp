// The process-wide MPI token of MpiMode::Serialized (troupe/runtime/mpi_token.hpp): a flag
// taken with one exchange, a thread-local "held here", and a word that a release notifies
// only while some thread waits for the token.
#include "troupe/runtime/mpi_token.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>

#include "troupe/core/detail/wait.hpp"

namespace troupe::detail {

namespace {
std::atomic<bool> g_mode{false};
std::atomic<bool> g_token{false};
std::atomic<int> g_waiting{0};
WaitWord g_released;
thread_local bool tls_held = false;
}  // namespace

bool mpi_token_mode() noexcept { return g_mode.load(std::memory_order_acquire); }
void set_mpi_token_mode(bool on) noexcept { g_mode.store(on, std::memory_order_release); }
bool mpi_token_held() noexcept { return tls_held; }

bool try_acquire_mpi_token() noexcept {
  if (g_token.load(std::memory_order_relaxed) || g_token.exchange(true, std::memory_order_acquire)) return false;
  tls_held = true;
  return true;
}

bool acquire_mpi_token(const Deadline& deadline) {
  if (try_acquire_mpi_token()) return true;
  g_waiting.fetch_add(1, std::memory_order_seq_cst);
  // The holder makes one MPI call or one progress round: spin first, then sleep on the
  // word (a release notifies it while g_waiting is non-zero). No helping: a thread that
  // waits for the token may be inside a task's MPI call.
  WaitParams params;
  params.help = false;
  params.poll_while_asleep = false;
  const bool got = g_released.wait([] { return try_acquire_mpi_token(); }, deadline, nullptr, "with_mpi", params);
  g_waiting.fetch_sub(1, std::memory_order_seq_cst);
  return got;
}

void release_mpi_token() noexcept {
  tls_held = false;
  g_token.store(false, std::memory_order_seq_cst);
  if (g_waiting.load(std::memory_order_seq_cst) != 0) g_released.notify_one();
}

namespace {
std::atomic<int> g_rule{0};
std::atomic<int> g_action{static_cast<int>(MpiCheckAction::Abort)};
std::atomic<std::uint64_t> g_checked{0}, g_violations{0};
std::mutex g_report_mu;
std::string g_last;
std::set<std::string> g_printed;
}  // namespace

void set_mpi_rule(int rule) noexcept { g_rule.store(rule, std::memory_order_release); }
int mpi_rule() noexcept { return g_rule.load(std::memory_order_acquire); }

void check_mpi_call(const char* name, bool is_main) noexcept {
  g_checked.fetch_add(1, std::memory_order_relaxed);
  const int rule = g_rule.load(std::memory_order_acquire);
  std::string what;
  if (rule == 1 && !tls_held) {
    what = std::string(name) +
           " from a thread without troupe's MPI token (MpiMode::Serialized: make the program's MPI calls inside "
           "troupe::with_mpi)";
  } else if (rule == 2 && !is_main) {
    what = std::string(name) +
           " from a thread other than MPI's main thread (MpiMode::Funneled at MPI_THREAD_FUNNELED or SINGLE: only "
           "the thread that initialized MPI may call it)";
  } else {
    return;
  }
  g_violations.fetch_add(1, std::memory_order_relaxed);
  bool first = false;
  try {
    std::lock_guard lock(g_report_mu);
    g_last = what;
    first = g_printed.insert(name).second;
  } catch (...) {  // out of memory: the count above still says it
  }
  const bool abort_now = g_action.load(std::memory_order_relaxed) == static_cast<int>(MpiCheckAction::Abort);
  if (first || abort_now) std::fprintf(stderr, "troupe::mpi_check: %s\n", what.c_str());
  if (abort_now) std::abort();
}

}  // namespace troupe::detail

namespace troupe {

void set_mpi_check_action(MpiCheckAction action) noexcept {
  detail::g_action.store(static_cast<int>(action), std::memory_order_relaxed);
}

MpiCheckReport mpi_check_report() {
  MpiCheckReport r;
  r.checked = detail::g_checked.load(std::memory_order_relaxed);
  r.violations = detail::g_violations.load(std::memory_order_relaxed);
  std::lock_guard lock(detail::g_report_mu);
  r.last = detail::g_last;
  return r;
}

}  // namespace troupe
