#pragma once
/// @file
/// @brief troupe::Bag — a work bag for irregular parallelism over every rank (and thread):
/// any party pushes, any party processes, idle ranks steal, and the library detects global
/// termination so that every rank's loop ends together.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/core/scope.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe {

namespace detail {
class Handle;
class BagHost;
}  // namespace detail

/// @brief Counters of one Bag on this rank; the global_* fields are set once the
/// computation has terminated (0 before).
struct BagStats {
  std::uint64_t pushed = 0;            ///< items pushed on this rank
  std::uint64_t processed = 0;         ///< items handed out by pop() on this rank
  std::uint64_t received = 0;          ///< items stolen by this rank (moved here from others)
  std::uint64_t given = 0;             ///< items this rank gave to thieves
  std::uint64_t steal_requests = 0;    ///< steal requests this rank sent
  std::uint64_t waves = 0;             ///< termination waves started (rank 0 only)
  bool terminated = false;             ///< the global termination was detected
  std::uint64_t global_pushed = 0;     ///< items pushed on every rank (after termination)
  std::uint64_t global_processed = 0;  ///< items processed on every rank (after termination)
};

namespace detail {

/// @brief The type-erased machinery of Bag: items are byte strings (wire-encoded).
class BagCore {
 public:
  BagCore(Scope scope, int consumers_per_rank, const char* api);
  ~BagCore();
  BagCore(const BagCore&) = delete;
  BagCore& operator=(const BagCore&) = delete;
  void push(std::vector<std::byte> item, const char* api);
  std::optional<std::vector<std::byte>> pop(const Deadline& deadline, const std::stop_token* token, const char* api);
  int rank() const noexcept;
  int size() const noexcept;
  int consumers() const noexcept { return consumers_; }
  Scope scope() const noexcept { return scope_; }
  bool terminated() const noexcept;
  BagStats stats() const;

 private:
  std::shared_ptr<BagHost> host_;
  std::unique_ptr<Handle> handle_;
  Scope scope_;
  int consumers_;
};

}  // namespace detail

/// @brief A work bag (YGM's recursive visitors, UTS, Charm++ seeds): items of type @p T
/// that any rank and thread pushes and any consumer processes, in no particular order,
/// with global termination detection.
///
/// @tparam T the item type: anything troupe's wire format sends (wire/serialize.hpp).
///
/// **Parties.** Every rank builds the bag collectively (same order as its other cross-rank
/// objects). Each rank has `consumers_per_rank` consumers: threads that call pop() in a
/// loop (or run(), which starts them). A consumer that calls pop() again is idle: the item
/// it had is done. Scope::Ranks: one consumer per rank; Scope::RanksAndThreads: @p
/// consumers_per_rank per rank; Scope::Threads: @p consumers_per_rank threads of this
/// process, no MPI.
///
/// **Termination.** pop() returns std::nullopt, on every consumer of every rank, once the
/// whole computation has ended: no item is left anywhere, none is in flight between ranks,
/// and every consumer of every rank is waiting in pop(). Nobody counts anything: a tree of
/// pushes from pushes ends by itself. It never ends early and never hangs: every pop()
/// takes a deadline.
///
/// **Mechanism** (docs/bag.md): items live in a deque on the rank that pushed them; local
/// consumers take the newest (depth first). A rank whose deque is empty (or whose last item
/// a consumer just took: steal-ahead) asks a random other rank (then the next ones, once
/// each) for work; a victim holding two or more items gives half of them, the oldest
/// (Charm++'s seed balancer, UTS); a victim with nothing remembers the thief and sends it
/// work as soon as it has some to spare. Rank 0 detects termination with waves of probes:
/// each rank answers a probe only while idle, with its counts of items sent and received and
/// whether it was busy since its last answer; two waves in which nobody was busy in between
/// and sent == received prove that the whole computation was idle with nothing in flight at
/// one instant (Mattern's four-counter method with Safra-style dirty flags). Every message is
/// a hub notice.
///
/// **Rules.** Push from a consumer (inside the processing of an item) or before this rank's
/// consumers first pop; a push from another thread while every consumer of its rank waits
/// races with termination. Exactly @p consumers_per_rank threads pop on each rank: fewer and
/// the bag never terminates (pop() times out), more waiting at once is an InvalidStateError.
/// A bag holds one computation: after its pop() returned std::nullopt on every consumer of
/// a rank, push() there throws.
///
/// @code
/// troupe::Bag<std::vector<int>> bag(troupe::Scope::Ranks);   // collective
/// if (rt.rank() == 0) bag.push({});                          // the root of the search
/// std::uint64_t here = bag.run([&](std::vector<int> prefix, auto& b) {
///   for (auto& child : expand(prefix)) b.push(child);        // fn may push more
/// }, std::chrono::minutes(5));
/// @endcode
///
/// @note Not copyable or movable. push(), pop(), run() and stats() are thread-safe.
template <class T>
class Bag {
 public:
  /// @brief The item type.
  using value_type = T;

  /// @brief A bag over @p scope with @p consumers_per_rank consumers on each rank.
  /// Collective for the cross-rank scopes.
  /// @throws ValueError when @p consumers_per_rank < 1, or != 1 with Scope::Ranks;
  /// InvalidStateError when a cross-rank scope is asked for without a live Runtime;
  /// TimeoutError when the first cross-rank object is not built by every rank within the
  /// start-up timeout.
  explicit Bag(Scope scope = Scope::Ranks, int consumers_per_rank = 1) : core_(scope, consumers_per_rank, "Bag") {}

  /// @brief Adds @p item (copied or moved into its wire encoding). Never blocks.
  /// @throws InvalidStateError "Bag::push: ..." after every consumer of this rank saw the
  /// end of the computation, or when the Runtime is gone; BrokenExecutor when a rank was
  /// lost.
  void push(const T& item) { core_.push(wire::serialize(item), "Bag::push"); }

  /// @brief The next item, or std::nullopt once the computation has terminated everywhere.
  /// Blocks until then (a pool worker runs other tasks meanwhile). Calling it again means
  /// the previous item is done.
  /// @throws InvalidStateError when more than consumers_per_rank threads of this rank wait
  /// at once, or the Runtime is gone; BrokenExecutor when a rank was lost.
  std::optional<T> pop() { return decode(core_.pop(Deadline{}, nullptr, "Bag::pop")); }
  /// @brief As pop(), waiting at most @p timeout.
  /// @throws TimeoutError "Bag::pop: ..." when @p timeout passes with no item and no
  /// termination (the consumer counts as idle); ValueError for a negative timeout.
  template <class Rep, class Period>
  std::optional<T> pop(std::chrono::duration<Rep, Period> timeout) {
    return pop(Deadline::after(timeout, "Bag::pop"));
  }
  /// @brief As pop(), until @p deadline or a stop request on @p token.
  /// @throws TimeoutError when @p deadline passes; CancelledError when @p token stops first.
  std::optional<T> pop(const Deadline& deadline, CancellationToken token = {}) {
    return decode(core_.pop(deadline, &token, "Bag::pop"));
  }

  /// @brief Runs `fn(item, bag)` (or `fn(item)`) on every item, on consumers_per_rank
  /// threads of this rank (the caller and consumers_per_rank - 1 new ones), until global
  /// termination. @p fn may push more items.
  /// @return the number of items processed on this rank.
  /// @throws TimeoutError "Bag::run: ..." when @p deadline passes first; the first exception
  /// @p fn threw on this rank, rethrown after termination (the other items are still
  /// processed: a failing item does not stall the other ranks).
  template <class F>
  std::uint64_t run(F&& fn, const Deadline& deadline = {}, CancellationToken token = {}) {
    std::atomic<std::uint64_t> count{0};
    std::mutex emu;
    std::exception_ptr first;
    auto record = [&] {
      std::lock_guard lock(emu);
      if (!first) first = std::current_exception();
    };
    auto loop = [&] {
      try {
        for (;;) {
          // pop() returns an available item even past its deadline: a loop that never runs
          // out of items ends here.
          if (deadline.expired()) {
            throw TimeoutError("Bag::run: the deadline passed before the computation terminated (rank " +
                               std::to_string(core_.rank()) + ")");
          }
          auto bytes = core_.pop(deadline, &token, "Bag::run");
          if (!bytes) break;
          try {
            T item = wire::deserialize<T>(*bytes);
            if constexpr (std::is_invocable_v<F&, T&&, Bag&>) {
              fn(std::move(item), *this);
            } else {
              fn(std::move(item));
            }
          } catch (...) {
            record();
          }
          count.fetch_add(1, std::memory_order_relaxed);
        }
      } catch (...) {
        record();
      }
    };
    std::vector<std::thread> threads;
    for (int i = 1; i < core_.consumers(); ++i) threads.emplace_back(loop);
    loop();
    for (auto& t : threads) t.join();
    if (first) std::rethrow_exception(first);
    return count.load();
  }
  /// @brief run() with a timeout for the whole loop.
  /// @throws ValueError for a negative timeout; as run().
  template <class F, class Rep, class Period>
  std::uint64_t run(F&& fn, std::chrono::duration<Rep, Period> timeout) {
    return run(std::forward<F>(fn), Deadline::after(timeout, "Bag::run"));
  }

  /// @brief True once this rank learned that the computation terminated.
  bool terminated() const noexcept { return core_.terminated(); }
  /// @brief This rank's counters, and the global totals after termination.
  BagStats stats() const { return core_.stats(); }
  /// @brief This rank, and the number of ranks of the bag (1 for Scope::Threads).
  int rank() const noexcept { return core_.rank(); }
  int size() const noexcept { return core_.size(); }
  /// @brief Consumers per rank, as given.
  int consumers_per_rank() const noexcept { return core_.consumers(); }
  /// @brief The scope given at construction.
  Scope scope() const noexcept { return core_.scope(); }

 private:
  static std::optional<T> decode(std::optional<std::vector<std::byte>> bytes) {
    if (!bytes) return std::nullopt;
    return wire::deserialize<T>(*bytes);
  }
  detail::BagCore core_;
};

}  // namespace troupe
