#pragma once
/// @file
/// @brief troupe::engine::Engine — the one component that makes troupe's own MPI calls.
///
/// Threads hand it messages through a lock-free queue; a progress thread (or the MPI
/// thread itself through poll(), at MPI_THREAD_FUNNELED) aggregates them per destination
/// into framed batches, posts non-blocking sends, receives with MPI_Improbe/MPI_Mrecv
/// (one message per object, no pre-posted buffers) and dispatches every frame to the
/// handler registered for its type. Idle, it spins briefly, then sleeps with a growing
/// back-off (TROUPE_ENGINE_BACKOFF_US caps it), so an idle rank does not burn a core.

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "troupe/core/error.hpp"

namespace troupe::engine {

/// @brief Handler of one message type: (source rank, payload). Runs on the progress
/// thread (or in poll()); keep it short and hand real work to a pool.
using Handler = std::function<void(int source, std::span<const std::byte> payload)>;
/// @brief Called with a clear message when a malformed frame or an unknown type arrives.
using ErrorHandler = std::function<void(int source, const std::string& what)>;

/// @brief How an Engine runs.
struct EngineOptions {
  /// Start a progress thread (needs MPI_THREAD_SERIALIZED or MULTIPLE from the user's
  /// side: troupe's thread then owns all of troupe's MPI calls). false: the thread that
  /// created the engine must call poll() (FUNNELED).
  bool progress_thread = true;
  /// Small messages to one destination are packed into batches up to this size; a batch
  /// is also sent as soon as the outgoing queue runs dry (latency bound).
  std::size_t batch_bytes = 64 * 1024;
  /// Longest idle sleep of the progress thread; nullopt: TROUPE_ENGINE_BACKOFF_US or 1000 µs.
  std::optional<std::chrono::microseconds> max_backoff = std::nullopt;
  /// Idle spin before each sleep.
  std::chrono::microseconds spin{20};
  /// After traffic, keep polling (yielding the core) this long before sleeping: replies
  /// and the next request of a conversation arrive without a wake-up delay. 0 disables.
  std::chrono::microseconds linger{200};
};

/// @brief Counters (approximate while running).
struct EngineStats {
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t batches_sent = 0;
  std::uint64_t batches_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t bad_frames = 0;
};

/// @brief Message transport over one communicator (normally Runtime::comm(), a private dup).
///
/// Thread safety: send() and stats() from any thread; on() before start(); poll() only
/// from the thread that created the engine and only without a progress thread.
class Engine {
 public:
  /// @brief Engine over @p comm (not freed by the engine). @p comm must not be used for
  /// other traffic with the engine's tag.
  Engine(MPI_Comm comm, EngineOptions options = {});
  /// @brief Stops progress after completing the sends already posted (bounded wait).
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// @brief Registers the handler of message type @p type (1..65535). Before start().
  void on(std::uint16_t type, Handler handler);
  /// @brief Registers the receiver of protocol errors (default: print to stderr).
  void on_error(ErrorHandler handler);
  /// @brief Starts progress (the progress thread, when configured).
  void start();

  /// @brief Queues @p payload of @p type for rank @p dest. Never blocks; thread safe.
  /// @throws ValueError for a bad rank or type; InvalidStateError after stop.
  void send(int dest, std::uint16_t type, std::vector<std::byte> payload);
  /// @brief Starts an MPI_Iallreduce(SUM) of @p values on the engine's communicator from
  /// the engine's MPI thread, and calls @p done with the sums when it completes (on that
  /// thread). Collective: every rank must call it, in the same order. Thread safe.
  void allreduce_sum(std::vector<long long> values, std::function<void(std::vector<long long>)> done);
  /// @brief Has the engine test @p request until it completes, then calls @p done with its
  /// status on the engine's thread (the basis of troupe::async_mpi). The request must stay
  /// valid (buffers alive) until then. Thread safe.
  void watch(MPI_Request request, std::function<void(const MPI_Status&)> done);

  /// @brief Announces replies the layer above waits for (+n when it sends requests, -n when
  /// replies arrived): while some are expected, the engine's idle naps stay short.
  void expect(long delta) noexcept;

  /// @brief One round of progress in the calling thread; true if anything happened.
  /// Only without a progress thread, from the creating thread.
  bool poll();

  /// @brief One round of progress if no other thread is making MPI calls for the engine
  /// right now; true if it did something. Any thread (the creating thread only, without a
  /// progress thread). A thread waiting for a reply calls it so that the reply is taken off
  /// the wire by the waiter itself, without waking the progress thread.
  bool try_progress();

  /// @brief Rank and size of the communicator.
  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  EngineStats stats() const noexcept;

  /// @brief The MPI tag of engine traffic (the comm is private, so one tag suffices).
  static constexpr int kTag = 0x7270;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace troupe::engine
