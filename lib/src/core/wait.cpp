#include "troupe/core/detail/wait.hpp"

#include <algorithm>
#include <climits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/config.hpp"
#include "troupe/core/detail/futex.hpp"
#include "troupe/core/error.hpp"

namespace troupe::detail {

// ---------------------------------------------------------------------------------------
// Helping

namespace {
thread_local HelpHook* tls_help_hook = nullptr;
}  // namespace

HelpHook* current_help_hook() noexcept { return tls_help_hook; }
HelpHook* set_help_hook(HelpHook* hook) noexcept { return std::exchange(tls_help_hook, hook); }

// ---------------------------------------------------------------------------------------
// Helping from outside. A gate is entered with a seq_cst RMW on `users` and then a look
// at `generation`; closing bumps `generation` and then waits for `users` to reach zero:
// one of the two sees the other, so no waiter calls into a pool that has ended.

namespace {
std::mutex g_gates_mu;
// Retired gates, reused; gates are never freed. The list itself is never destroyed either,
// so that the gates stay reachable to the very end (a static vector destroyed at exit would
// leave them for LeakSanitizer to report).
std::vector<HelpGate*>& free_gates() {
  static auto* gates = new std::vector<HelpGate*>();
  return *gates;
}
}  // namespace

HelpTicket open_help_gate(HelpSource* source) {
  HelpGate* gate = nullptr;
  {
    std::lock_guard lock(g_gates_mu);
    auto& gates = free_gates();
    if (!gates.empty()) {
      gate = gates.back();
      gates.pop_back();
    }
  }
  if (gate == nullptr) gate = new HelpGate();  // never freed (see HelpGate)
  gate->source.store(source, std::memory_order_seq_cst);
  return HelpTicket{gate, gate->generation.load(std::memory_order_seq_cst)};
}

void close_help_gate(const HelpTicket& ticket) noexcept {
  HelpGate* gate = ticket.gate;
  if (gate == nullptr) return;
  gate->generation.fetch_add(1, std::memory_order_seq_cst);
  for (std::uint32_t u; (u = gate->users.load(std::memory_order_seq_cst)) != 0;) {
    futex_wait(gate->users, u, Deadline{});
  }
  gate->source.store(nullptr, std::memory_order_seq_cst);
  try {
    std::lock_guard lock(g_gates_mu);
    free_gates().push_back(gate);
  } catch (...) {
    // Out of memory for the free list: the gate is simply not reused.
  }
}

bool OutsideHelp::help_one() {
  if (stage_ == Stage::kNew) {
    HelpGate* gate = ticket_.gate;
    gate->users.fetch_add(1, std::memory_order_seq_cst);
    if (gate->generation.load(std::memory_order_seq_cst) != ticket_.generation) {
      if (gate->users.fetch_sub(1, std::memory_order_seq_cst) == 1) futex_wake(gate->users, INT_MAX);
      stage_ = Stage::kClosed;
      return false;
    }
    source_ = gate->source.load(std::memory_order_seq_cst);
    stage_ = Stage::kIn;
  }
  if (stage_ != Stage::kIn) return false;
  return source_->help_outside(seat_);
}

OutsideHelp::~OutsideHelp() {
  if (stage_ != Stage::kIn) return;
  source_->leave_outside(seat_);
  HelpGate* gate = ticket_.gate;
  if (gate->users.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      gate->generation.load(std::memory_order_seq_cst) != ticket_.generation) {
    futex_wake(gate->users, INT_MAX);  // close_help_gate is waiting
  }
}

// ---------------------------------------------------------------------------------------
// Progress sources: a fixed table, so that drive_progress() takes no lock. A slot's
// `users` counts the threads inside (or about to enter) its source; remove waits for it
// to drop to zero, sleeping on it as a futex word.

namespace {
struct alignas(64) Slot {
  std::atomic<ProgressSource*> src{nullptr};
  std::atomic<std::uint32_t> users{0};
};
Slot g_slots[kMaxProgressSources];
std::atomic<int> g_active{0};  // registered sources
std::atomic<int> g_high{0};    // slots [0, g_high) may hold one
std::mutex g_registry_mu;      // serialises add and remove, never taken by drive_progress
}  // namespace

void add_progress_source(ProgressSource* src) {
  if (src == nullptr) throw InvalidStateError("add_progress_source: null source");
  std::lock_guard lock(g_registry_mu);
  int free_slot = -1;
  for (int i = 0; i < kMaxProgressSources; ++i) {
    ProgressSource* s = g_slots[i].src.load(std::memory_order_relaxed);
    if (s == src) throw InvalidStateError("add_progress_source: the source is already registered");
    if (s == nullptr && free_slot < 0) free_slot = i;
  }
  if (free_slot < 0) {
    throw InvalidStateError("add_progress_source: " + std::to_string(kMaxProgressSources) +
                            " progress sources are registered already");
  }
  if (g_high.load(std::memory_order_relaxed) <= free_slot) g_high.store(free_slot + 1, std::memory_order_seq_cst);
  g_slots[free_slot].src.store(src, std::memory_order_seq_cst);
  g_active.fetch_add(1, std::memory_order_seq_cst);
}

void remove_progress_source(ProgressSource* src) noexcept {
  if (src == nullptr) return;
  std::lock_guard lock(g_registry_mu);
  for (auto& slot : g_slots) {
    if (slot.src.load(std::memory_order_relaxed) != src) continue;
    slot.src.store(nullptr, std::memory_order_seq_cst);
    g_active.fetch_sub(1, std::memory_order_seq_cst);
    // A caller of drive_progress that read `src` before the store either sees the store
    // after raising `users` (and backs out) or is counted here; the last one out wakes us.
    for (std::uint32_t u; (u = slot.users.load(std::memory_order_seq_cst)) != 0;) {
      futex_wait(slot.users, u, Deadline{});
    }
    return;
  }
}

bool has_progress_sources() noexcept { return g_active.load(std::memory_order_relaxed) != 0; }

namespace {
// Calls @p fn(source) for every registered source, safely against a concurrent remove.
template <class Fn>
void for_each_source(Fn&& fn) noexcept {
  const int high = g_high.load(std::memory_order_acquire);
  for (int i = 0; i < high; ++i) {
    Slot& slot = g_slots[i];
    ProgressSource* src = slot.src.load(std::memory_order_acquire);
    if (src == nullptr) continue;
    slot.users.fetch_add(1, std::memory_order_seq_cst);
    if (slot.src.load(std::memory_order_seq_cst) == src) fn(*src);
    if (slot.users.fetch_sub(1, std::memory_order_seq_cst) == 1 && slot.src.load(std::memory_order_seq_cst) != src) {
      futex_wake(slot.users, INT_MAX);  // a remove_progress_source is waiting
    }
  }
}
}  // namespace

bool drive_progress() noexcept {
  if (g_active.load(std::memory_order_relaxed) == 0) return false;
  bool did = false;
  for_each_source([&](ProgressSource& src) { did |= src.try_progress(); });
  return did;
}

std::chrono::nanoseconds progress_linger() noexcept {
  std::chrono::nanoseconds longest{0};
  if (g_active.load(std::memory_order_relaxed) == 0) return longest;
  for_each_source([&](ProgressSource& src) { longest = std::max(longest, src.linger()); });
  return longest;
}

// ---------------------------------------------------------------------------------------
// Shared cores

namespace {
// -1: not set by a Runtime (TROUPE_SHARED_CORES decides, read on first use); 0 or 1: set.
std::atomic<int> g_shared{-1};
}  // namespace

bool cores_shared() noexcept {
  const int v = g_shared.load(std::memory_order_relaxed);
  if (v >= 0) return v != 0;
  bool on = false;
  try {
    on = settings().shared_cores.value_or(0) == 1;
  } catch (...) {  // a malformed knob: reported by the Runtime and the pool, not by a wait
  }
  int expected = -1;
  g_shared.compare_exchange_strong(expected, on ? 1 : 0, std::memory_order_relaxed);
  return g_shared.load(std::memory_order_relaxed) != 0;
}

void set_cores_shared(bool shared) noexcept { g_shared.store(shared ? 1 : 0, std::memory_order_relaxed); }
void reset_cores_shared() noexcept { g_shared.store(-1, std::memory_order_relaxed); }

std::chrono::nanoseconds effective_spin(std::chrono::nanoseconds spin) noexcept {
  return cores_shared() ? std::chrono::nanoseconds(0) : spin;
}

// ---------------------------------------------------------------------------------------
// The policy

std::chrono::nanoseconds wait_backoff_ceiling() noexcept {
  try {
    return settings().wait_backoff;  // one atomic load once read
  } catch (...) {
    // A malformed TROUPE_* knob: the Runtime and ThreadPool constructors report it (they
    // read the settings first); a wait must not throw it, it keeps the default.
    return Settings{}.wait_backoff;
  }
}

namespace {
// First nap of a polling sleeper; doubles up to wait_backoff_ceiling().
constexpr std::chrono::nanoseconds kFirstNap{1'000};
// Pauses per spin round; the condition is looked at every kPausesPerCheck of them.
constexpr int kPausesPerRound = 16;
constexpr int kPausesPerCheck = 4;
// Every kRoundsPerYield spin rounds the core is offered to another thread: a producer
// descheduled on an oversubscribed core must get to run.
constexpr unsigned kRoundsPerYield = 8;

// pause loop; true as soon as the condition holds
bool relax(WaitTarget& t) noexcept {
  for (int i = 1; i <= kPausesPerRound; ++i) {
    cpu_relax();
    if (i % kPausesPerCheck == 0 && t.ready()) return true;
  }
  return false;
}

Deadline nap_deadline(std::chrono::nanoseconds nap, const Deadline& deadline) {
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(nap);
  if (!deadline.infinite() && deadline.time_point() < until) return deadline;
  return Deadline::at(until);
}

// The futex flavour follows the word: private for a word of this process, shared for a
// word in memory several processes map.
void sleep_on(WaitTarget& t, std::uint32_t expected, const Deadline& deadline) noexcept {
  if (t.process_shared()) {
    futex_wait_shared(t.word(), expected, deadline);
  } else {
    futex_wait(t.word(), expected, deadline);
  }
}

struct Poke {
  WaitTarget* target;
  void operator()() const noexcept { target->poke(); }
};
}  // namespace

WaitStatus wait_until(WaitTarget& t, const Deadline& deadline, const std::stop_token* token, const WaitParams& params) {
  if (t.ready()) return WaitStatus::kReady;
  const bool stoppable = token != nullptr && token->stop_possible();
  auto stopped = [&] { return stoppable && token->stop_requested(); };
  if (stopped()) return WaitStatus::kCancelled;

  HelpHook* own = params.help ? current_help_hook() : nullptr;
  HelpHook* hook = own != nullptr ? own : (params.help ? params.outside_help : nullptr);
  // Shared cores: no spin window, but a waiter that can help or drive progress still does
  // so while that finds work (it costs no core that another thread needs).
  const auto spin = effective_spin(params.spin);
  const bool shared = spin.count() == 0 && params.spin.count() > 0;
  // The spin window: the spin, or after progress moved here, the sources' linger.
  auto window = spin;
  auto useful = [&] {
    if (hook != nullptr && hook->help_one()) return true;
    if (!drive_progress()) return false;
    window = std::max(spin, progress_linger());
    return true;
  };
  // Registered before the first sleep only: a spinning thread looks at the token itself.
  std::optional<std::stop_callback<Poke>> on_stop;
  for (;;) {
    // 1-3. Spin, help, drive progress.
    if (params.spin.count() > 0) {
      // The spin window starts at the first round that found nothing to do: a helping
      // worker that runs task after task (a fork-join tree) reads no clock per task.
      bool timing = false;
      Clock::time_point spin_until{};
      unsigned round = 0;
      for (;;) {
        if (t.ready()) return WaitStatus::kReady;
        if (stopped()) return WaitStatus::kCancelled;
        if (useful()) {
          timing = false;
          continue;
        }
        if (shared) break;  // nothing to do: sleep, leave the core to others
        if (relax(t)) return WaitStatus::kReady;
        if (++round % kRoundsPerYield == 0) std::this_thread::yield();
        const auto now = Clock::now();
        if (!deadline.infinite() && now >= deadline.time_point()) {
          return t.ready() ? WaitStatus::kReady : WaitStatus::kTimeout;
        }
        if (!timing) {
          spin_until = now + std::chrono::duration_cast<Clock::duration>(window);
          timing = true;
        }
        if (now >= spin_until) break;
      }
    }

    // 4. Sleep on the word.
    if (stoppable && !on_stop) on_stop.emplace(*token, Poke{&t});
    const auto ceiling = std::max(params.max_nap.count() > 0 ? params.max_nap : wait_backoff_ceiling(), kFirstNap);
    auto nap = kFirstNap;
    for (;;) {
      // An outside helper (no hook of its own) does not poll for tasks: it sleeps until its
      // future is done, as it did before it could help.
      const bool poll = params.poll_while_asleep && (own != nullptr || has_progress_sources());
      const std::uint32_t expected = t.arm();
      if (t.ready()) {
        t.disarm();
        return WaitStatus::kReady;
      }
      if (stopped()) {
        t.disarm();
        return WaitStatus::kCancelled;
      }
      if (deadline.expired()) {
        t.disarm();
        return WaitStatus::kTimeout;
      }
      if (poll) {
        sleep_on(t, expected, nap_deadline(nap, deadline));
        nap = std::min(nap * 2, ceiling);
      } else {
        sleep_on(t, expected, deadline);
      }
      t.disarm();
      if (t.ready()) return WaitStatus::kReady;
      if (stopped()) return WaitStatus::kCancelled;
      if (poll && useful()) break;  // back to spinning: work is trickling in
    }
  }
}

[[noreturn]] void throw_wait_cancelled(const char* api) {
  throw CancelledError(std::string(api) + ": cancelled by token");
}

void WaitWord::wake(bool one) noexcept { futex_wake(seq_, one ? 1 : INT_MAX); }

}  // namespace troupe::detail
