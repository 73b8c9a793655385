// The cross-rank Barrier (Scope::Ranks, Scope::RanksAndThreads).
//
// Arrival: every party takes a ticket, one MPI_Fetch_and_op(+1) on a counter on rank 0
// (detail::AtomicCell). The ticket's count gives the global arrival index, (count % parties),
// and the generation; the party with index parties-1 is the last of its generation and runs
// the action. Then the last party of each rank posts one MPI_Ibarrier on the cell's private
// communicator and tests it with the one wait loop; the rank's other threads wait for it.
//
// Breaking, consistently on every rank: a party that gives up (timeout, cancel, abort, a
// throwing action) adds kBreak to the same counter. The fetch-and-op order decides, for
// every party alike:
//  - a ticket whose value already carries a kBreak mark belongs to a broken barrier: that
//    party throws BrokenBarrierError and never posts its MPI_Ibarrier, so the generation
//    cannot complete anywhere;
//  - the party that gives up sees the count before its mark: if its generation had already
//    filled, every party of it has posted its MPI_Ibarrier, the generation completes, and
//    the giver-up waits for it and returns normally (as Python: a party never breaks a
//    generation that completed); its mark then breaks the next generation, for everyone.
//    Otherwise the generation is broken: notices to every rank wake the parties waiting in
//    their MPI_Ibarrier, which throw.
// Teardown (the destructor and reset(), both collective): a broken generation leaves some
// ranks with an MPI_Ibarrier posted and others without, and MPI forbids cancelling or
// freeing a non-blocking collective's request, yet requires every one to be complete before
// MPI_Finalize (MPI-3.1 §8.7; MPICH's ch4:ucx fails MPI_Finalize on one still active, or
// on a barrier message nobody received). So each rank keeps the requests it gave up on and
// counts the MPI_Ibarriers it posted on the counter's communicator; drain() exchanges the
// counts (point-to-point messages on that communicator, which never match its collectives),
// posts the missing MPI_Ibarriers so every rank has posted as many, and waits for all of
// them, within the start-up timeout. Then the counter's window is freed as any other. Only
// when a rank never comes (it never destroys or resets its Barrier) are the requests left,
// with their counter and communicator, for the life of the process, and a log line says so.
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "troupe/across/detail/atomic_cell.hpp"
#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/detail/text.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/sync/barrier.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe {
namespace detail {

namespace {

constexpr std::int64_t kBreak = std::int64_t{1} << 40;  // a break mark on the ticket counter
constexpr std::int64_t kCountMask = kBreak - 1;
constexpr int kDrainTag = 0x6272;  // drain(): the posted-Ibarrier counts, point to point
enum Op : std::uint32_t { kBroken = 1 };

// The counters of broken barriers: their communicator holds MPI_Ibarrier requests that can
// neither complete nor be freed, so they are kept, never freed, for the life of the process
// (reachable, not leaked).
void abandon(std::unique_ptr<AtomicCell> cell) {
  static std::mutex mu;
  static auto* kept = new std::vector<std::unique_ptr<AtomicCell>>();
  cell->leak();  // neither its destructor nor the Runtime's release may wait on that communicator
  std::lock_guard lock(mu);
  kept->push_back(std::move(cell));
}

// This rank's view of the barrier: the break notices of other ranks land here.
struct LocalState final : Hosted {
  std::mutex mu;
  WaitWord word;
  std::atomic<bool> broken{false};
  std::string reason;
  std::atomic<std::uint64_t> generation{0};  // generations released on this rank
  std::ptrdiff_t arrived = 0;                // threads of this rank in the filling generation
  std::ptrdiff_t waiting = 0;                // threads of this rank inside wait()

  void mark_broken(const std::string& why) {
    {
      std::lock_guard lock(mu);
      if (!broken.load()) reason = why;
      broken.store(true, std::memory_order_release);
    }
    word.notify_all();
  }
  void on_call(int src, std::uint64_t, std::uint32_t op, wire::Reader& args) override {
    if (op != kBroken) throw wire::DecodeError("Barrier: unknown notice " + std::to_string(op));
    mark_broken(args.read<std::string>() + " (on rank " + std::to_string(src) + ")");
  }
  void on_cancel(int, std::uint64_t) override {}
  void on_lost(int rank) override { mark_broken("rank " + std::to_string(rank) + " was lost"); }
  void on_close() override { mark_broken("the Runtime is closing"); }
};

}  // namespace

class RankBarrier : public std::enable_shared_from_this<RankBarrier> {
 public:
  RankBarrier(Scope scope, std::ptrdiff_t parties, std::ptrdiff_t local_parties, Barrier::Action action)
      : parties_(parties),
        local_parties_(local_parties),
        action_(std::move(action)),
        state_(std::make_shared<LocalState>()),
        handle_(scope, state_, 0, "Barrier") {}
  /// Collective: builds the counter (after construction: its release hook needs weak_from_this).
  void start() { make_cell(Deadline::after(settings().startup_timeout, "Barrier")); }
  ~RankBarrier() {
    if (cell_ && !drain(Deadline::after(settings().startup_timeout, "Barrier"))) abandon(std::move(cell_));
  }

  std::ptrdiff_t wait(const Deadline& deadline, const CancellationToken& token) {
    Hub& hub = handle_.hub();
    if (!hub.may_call_mpi()) {
      throw InvalidStateError(
          "Barrier::wait: below MPI_THREAD_MULTIPLE only the thread that built troupe's first cross-rank object may "
          "wait on a cross-rank Barrier");
    }
    struct Inside {
      LocalState& s;
      explicit Inside(LocalState& st) : s(st) {
        std::lock_guard lock(s.mu);
        ++s.waiting;
      }
      ~Inside() {
        std::lock_guard lock(s.mu);
        --s.waiting;
      }
    } inside(*state_);
    if (state_->broken.load(std::memory_order_acquire)) throw_broken();
    const std::int64_t ticket = cell_->fetch_add(1, "Barrier::wait");
    if (ticket >= kBreak) {  // a party gave up before this one arrived
      state_->mark_broken("a party gave up before this one arrived");
      throw_broken();
    }
    const std::int64_t count = ticket & kCountMask;
    const auto index = static_cast<std::ptrdiff_t>(count % parties_);
    const std::int64_t end_of_generation = (count / parties_ + 1) * parties_;  // tickets that fill it
    if (index == parties_ - 1 && action_) {
      try {
        action_();
      } catch (...) {
        // The generation has filled, but this party will not post its MPI_Ibarrier: a real break.
        give_up(-1, "the action threw: " + describe_current_exception());
        throw;
      }
    }
    std::uint64_t my_generation = 0;
    bool last_here = false;
    {
      std::lock_guard lock(state_->mu);
      my_generation = state_->generation.load();
      last_here = ++state_->arrived == local_parties_;
      if (last_here) state_->arrived = 0;
    }
    if (last_here) {
      // This rank's parties are all here: join the other ranks.
      MPI_Request req = MPI_REQUEST_NULL;
      if (TROUPE_MPI_UNCHECKED(MPI_Ibarrier(cell_->comm(), &req)) != MPI_SUCCESS) {
        give_up(end_of_generation, "MPI_Ibarrier failed");
        throw_broken();
      }
      struct Keep {  // a request given up on stays for drain(), never dropped while active
        RankBarrier& self;
        MPI_Request& req;
        ~Keep() {
          std::lock_guard lock(self.requests_mu_);
          ++self.posted_;
          if (req != MPI_REQUEST_NULL) self.pending_.push_back(req);
        }
      } keep{*this, req};
      auto broken = [this] { return state_->broken.load(std::memory_order_acquire); };
      if (!wait_request(req, deadline, broken, &token)) {
        if (!broken()) {
          const bool completed = give_up(
              end_of_generation, token.stop_requested() ? "a party's wait was cancelled" : "a party's wait timed out");
          // The generation had filled: it completes everywhere, and here too.
          if (completed && wait_request(req, Deadline::after(settings().startup_timeout, "Barrier::wait"), {})) {
            release_generation();
            return index;
          }
        }
        throw_broken();
      }
      release_generation();
      return index;
    }
    auto released = [&] {
      return state_->generation.load(std::memory_order_acquire) != my_generation ||
             state_->broken.load(std::memory_order_acquire);
    };
    const auto st = state_->word.wait_status(released, deadline, &token);
    if (state_->generation.load(std::memory_order_acquire) != my_generation) return index;
    if (st != WaitStatus::kReady && !state_->broken.load()) {
      const bool completed = give_up(end_of_generation, st == WaitStatus::kCancelled ? "a party's wait was cancelled"
                                                                                     : "a party's wait timed out");
      if (completed) {  // the rank's last party is on its way through the MPI_Ibarrier
        state_->word.wait(released, Deadline::after(settings().startup_timeout, "Barrier::wait"));
        if (state_->generation.load(std::memory_order_acquire) != my_generation) return index;
      }
    }
    throw_broken();
  }

  void abort() noexcept {
    try {
      give_up(-1, "abort() was called");
    } catch (...) {
      state_->mark_broken("abort() was called");
    }
  }

  void reset() noexcept {
    try {
      // Parties waiting here leave with BrokenBarrierError (as Python) before the counter
      // they use is replaced.
      if (n_waiting() > 0) state_->mark_broken("reset() was called");
      state_->word.wait(
          [this] {
            std::lock_guard lock(state_->mu);
            return state_->waiting == 0;
          },
          Deadline::after(settings().startup_timeout, "Barrier::reset"));
      // Complete every rank's MPI_Ibarriers on the old counter's communicator, then free it.
      auto old = std::move(cell_);
      if (old) {
        const bool drained = drain_cell(*old, Deadline::after(settings().startup_timeout, "Barrier::reset"));
        if (!drained) abandon(std::move(old));
        old.reset();
      }
      make_cell(Deadline::after(settings().startup_timeout, "Barrier::reset"));
      std::lock_guard lock(state_->mu);
      state_->broken.store(false);
      state_->reason.clear();
      state_->arrived = 0;
    } catch (...) {
      state_->mark_broken("reset() did not complete on every rank: " + describe_current_exception());
    }
  }

  bool broken() const noexcept { return state_->broken.load(std::memory_order_acquire); }
  std::ptrdiff_t n_waiting() const noexcept {
    std::lock_guard lock(state_->mu);
    return state_->broken.load() ? 0 : state_->waiting;
  }

 private:
  void make_cell(const Deadline& deadline) {
    Hub& hub = handle_.hub();
    cell_ = std::make_unique<AtomicCell>(hub.comm(), Runtime::current()->comm(), 0, 0, deadline, "Barrier");
    // A Barrier outliving its Runtime: the Runtime's release (collective) drains the counter's
    // requests before it frees the counter's window (release hooks run last registered first).
    std::weak_ptr<RankBarrier> weak = weak_from_this();
    const AtomicCell* cell = cell_.get();
    Runtime::current()->on_release([weak, cell] {
      if (auto self = weak.lock()) self->drain_at_release(cell);
    });
  }

  void drain_at_release(const AtomicCell* cell) noexcept {
    if (cell_.get() != cell || cell_->freed()) return;  // an earlier counter (reset), or done
    if (!drain(Deadline::after(settings().startup_timeout, "Barrier"))) cell_->leak();
  }

  bool drain(const Deadline& deadline) noexcept { return drain_cell(*cell_, deadline); }

  // Collective over the cell's communicator, bounded by @p deadline: completes every
  // MPI_Ibarrier this barrier posted on it, on every rank (see the file comment). Returns
  // false when a rank did not come in time; the requests are then left active.
  bool drain_cell(AtomicCell& cell, const Deadline& deadline) noexcept {
    std::lock_guard lock(requests_mu_);
    try {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (finalized != 0 || cell.freed()) return true;  // MPI, or the Runtime's release, ended it
      const MPI_Comm comm = cell.comm();
      int rank = 0;
      int size = 1;
      TROUPE_MPI_CHECK(MPI_Comm_rank(comm, &rank));
      TROUPE_MPI_CHECK(MPI_Comm_size(comm, &size));
      std::int64_t most = posted_;
      if (size > 1) {
        const auto n = static_cast<std::size_t>(size);
        std::vector<std::int64_t> counts(n, 0);
        std::vector<MPI_Request> recvs(n, MPI_REQUEST_NULL);
        std::vector<MPI_Request> sends(n, MPI_REQUEST_NULL);
        for (int r = 0; r < size; ++r) {
          if (r == rank) continue;
          const auto i = static_cast<std::size_t>(r);
          TROUPE_MPI_CHECK(MPI_Irecv(&counts[i], 1, MPI_INT64_T, r, kDrainTag, comm, &recvs[i]));
          TROUPE_MPI_CHECK(MPI_Isend(&posted_, 1, MPI_INT64_T, r, kDrainTag, comm, &sends[i]));
        }
        bool all = true;
        for (auto* reqs : {&recvs, &sends}) {
          for (auto& r : *reqs) all = all && wait_request(r, deadline, {});
        }
        if (!all) {
          for (auto& r : recvs) {  // a receive cancels locally
            if (r == MPI_REQUEST_NULL) continue;
            TROUPE_MPI_UNCHECKED(MPI_Cancel(&r));
            TROUPE_MPI_UNCHECKED(MPI_Wait(&r, MPI_STATUS_IGNORE));
          }
          for (auto& r : sends) {
            if (r == MPI_REQUEST_NULL) continue;
            TROUPE_MPI_UNCHECKED(MPI_Cancel(&r));
            TROUPE_MPI_UNCHECKED(MPI_Request_free(&r));
          }
          log("Barrier: a rank did not destroy or reset it within the time allowed; " +
              std::to_string(pending_.size()) + " MPI_Ibarrier request(s) are left active");
          return false;
        }
        for (const auto c : counts) most = std::max(most, c);
      }
      for (; posted_ < most; ++posted_) {  // this rank's share of the broken generations
        MPI_Request req = MPI_REQUEST_NULL;
        TROUPE_MPI_CHECK(MPI_Ibarrier(comm, &req));
        pending_.push_back(req);
      }
      while (!pending_.empty()) {
        if (!wait_request(pending_.back(), deadline, {})) {
          log("Barrier: " + std::to_string(pending_.size()) +
              " MPI_Ibarrier request(s) did not complete within the time allowed; they are left active");
          return false;
        }
        pending_.pop_back();
      }
      posted_ = 0;
      return true;
    } catch (...) {
      log("Barrier: its MPI_Ibarrier requests could not be completed: " + describe_current_exception());
      return false;
    }
  }

  // Marks the counter; returns true when the party's generation had already filled (nothing
  // is broken for it; its mark breaks the next one). Tells every rank otherwise.
  bool give_up(std::int64_t end_of_generation, const std::string& why) {
    const std::int64_t before = cell_->fetch_add(kBreak, "Barrier::wait");
    if (end_of_generation >= 0 && before < kBreak && (before & kCountMask) >= end_of_generation) return true;
    state_->mark_broken(why);
    Hub& hub = handle_.hub();
    for (int r = 0; r < hub.size(); ++r) {
      if (r == hub.rank()) continue;
      try {
        handle_.notice(r, kBroken, pack(why));
      } catch (...) {  // a rank we cannot reach learns it from its ticket
      }
    }
    return false;
  }

  void release_generation() {
    state_->generation.fetch_add(1, std::memory_order_acq_rel);
    state_->word.notify_all();
  }

  [[noreturn]] void throw_broken() const {
    std::string why;
    {
      std::lock_guard lock(state_->mu);
      why = state_->reason;
    }
    throw BrokenBarrierError("Barrier::wait: the barrier is broken" + (why.empty() ? std::string() : ": " + why));
  }

  const std::ptrdiff_t parties_;
  const std::ptrdiff_t local_parties_;
  Barrier::Action action_;
  std::shared_ptr<LocalState> state_;
  Handle handle_;
  std::unique_ptr<AtomicCell> cell_;
  std::mutex requests_mu_;
  std::int64_t posted_ = 0;           // MPI_Ibarriers this rank posted on cell_'s communicator
  std::vector<MPI_Request> pending_;  // those given up on (a broken generation), for drain()
};

}  // namespace detail

namespace {
std::ptrdiff_t scope_parties(Scope scope, std::ptrdiff_t parties) {
  if (parties < 1) throw ValueError("Barrier: parties must be >= 1, got " + std::to_string(parties));
  if (scope == Scope::Threads) return parties;
  Runtime* rt = Runtime::current();
  if (rt == nullptr) {
    throw InvalidStateError(std::string("Barrier(") + to_string(scope) +
                            "): no troupe::Runtime is alive; build one first, or use Scope::Threads");
  }
  const std::ptrdiff_t p = rt->size();
  if (scope == Scope::Ranks && parties != p) {
    throw ValueError("Barrier(Scope::Ranks, " + std::to_string(parties) + "): parties must equal the " +
                     std::to_string(p) + " ranks (one party per rank)");
  }
  if (scope == Scope::RanksAndThreads && parties % p != 0) {
    throw ValueError("Barrier(Scope::RanksAndThreads, " + std::to_string(parties) +
                     "): parties must be a multiple of the " + std::to_string(p) +
                     " ranks (every rank brings parties / ranks threads)");
  }
  return parties;
}
}  // namespace

Barrier::Barrier(Scope scope, std::ptrdiff_t parties, Action action)
    : parties_(scope_parties(scope, parties)), action_(scope == Scope::Threads ? std::move(action) : Action{}) {
  if (scope == Scope::Threads) return;
  const std::ptrdiff_t local = scope == Scope::Ranks ? 1 : parties / Runtime::current()->size();
  across_ = std::make_shared<detail::RankBarrier>(scope, parties, local, std::move(action));
  across_->start();
  across_scope_ = scope;
}

std::ptrdiff_t Barrier::across_wait(const Deadline& deadline, CancellationToken token) {
  return across_->wait(deadline, token);
}
void Barrier::across_abort() noexcept { across_->abort(); }
void Barrier::across_reset() noexcept { across_->reset(); }
bool Barrier::across_broken() const noexcept { return across_->broken(); }
std::ptrdiff_t Barrier::across_n_waiting() const noexcept { return across_->n_waiting(); }

}  // namespace troupe
