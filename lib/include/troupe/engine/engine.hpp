#pragma once
/// @file
/// @brief troupe::engine::Engine — the one component that makes troupe's own MPI calls.
///
/// The engine moves whole MPI messages of bytes over one private communicator: threads
/// queue outgoing messages (never blocking), and whoever holds the progress token — the
/// engine's progress thread, a thread waiting for a reply, or, without a progress thread,
/// the thread that created the engine — posts them with MPI_Isend, receives with
/// MPI_Improbe/MPI_Mrecv (one message per object, no pre-posted buffers), tests watched
/// requests, and hands each received message to the receiver. What a message means is the
/// messaging layer's business (troupe/messaging/messenger.hpp: frames, kinds, records).
///
/// **The progress token.** At most one thread is inside MPI for the engine at any time,
/// on every path (sends, receives, probes in the idle spin, watched requests). This is what
/// makes a progress thread legal below MPI_THREAD_MULTIPLE. At each thread level a direct
/// user of the engine follows one rule:
/// - MULTIPLE: progress_thread = true; any thread may call send()/watch()/try_progress();
///   the program's own MPI calls need no care.
/// - SERIALIZED: progress_thread = true is allowed only if the program makes no MPI calls
///   of its own while the engine runs (troupe's calls are serialized by the token);
///   otherwise progress_thread = false and the creating thread drives it (FUNNELED rule).
/// - FUNNELED / SINGLE: progress_thread = false; only the creating thread may make MPI
///   calls, so only it drives the engine (poll(), try_progress(), or any troupe wait on
///   that thread). Other threads may still send(): their messages wait in the queue.

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "troupe/core/error.hpp"

namespace troupe::engine {

/// @brief Receiver of every message: (source rank, the message's bytes). Runs on the thread
/// that holds progress, after it released the token; keep it short.
using Receiver = std::function<void(int source, std::vector<std::byte> message)>;
/// @brief Called at the start of every progress round, under the token (the messaging
/// layer hands its partly filled batches to the engine here: the latency bound).
using RoundHook = std::function<void()>;

/// @brief How an Engine runs.
struct EngineOptions {
  /// Start a progress thread (see the thread-level rules in the file comment). false: the
  /// thread that created the engine must drive it (poll(), try_progress()).
  bool progress_thread = true;
  /// Longest idle sleep of the progress thread; nullopt: troupe::settings().engine_backoff
  /// (TROUPE_ENGINE_BACKOFF_US, 1000 µs by default).
  std::optional<std::chrono::microseconds> max_backoff = std::nullopt;
  /// After traffic, keep polling (yielding the core) this long before sleeping: replies and
  /// the next request of a conversation arrive without a wake-up delay. nullopt:
  /// troupe::settings().engine_linger (TROUPE_ENGINE_LINGER_US, 200 µs by default).
  std::optional<std::chrono::microseconds> linger = std::nullopt;
  /// Idle spin before each sleep.
  std::chrono::microseconds spin{20};
};

/// @brief Counters (approximate while running).
struct EngineStats {
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
};

/// @brief Message transport over one communicator (a private duplicate: the engine's
/// messages use one tag and are matched from any source; bulk messages, the large parts of
/// a record, use a second tag and are received from the source that announced them).
///
/// Thread safety: send(), wake(), watch(), expect(), try_progress() and stats() from any
/// thread (try_progress() does nothing on a thread that may not drive MPI); on_receive()
/// and on_round() before start(); poll() only from the creating thread, only without a
/// progress thread.
class Engine {
 public:
  /// @brief Engine over @p comm (not freed by the engine).
  /// @throws ValueError for MPI_COMM_NULL; ValueError from troupe::settings() for a bad knob.
  Engine(MPI_Comm comm, EngineOptions options = {});
  /// @brief Stops progress after completing the sends already posted (bounded wait: a peer
  /// that never receives is given up after 10 s).
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// @brief Sets the receiver of every incoming message. Before start().
  void on_receive(Receiver receiver);
  /// @brief Sets the hook called at the start of every progress round. Before start().
  void on_round(RoundHook hook);
  /// @brief Starts progress (the progress thread, when configured).
  void start();

  /// @brief Queues @p message for rank @p dest as one MPI message (no 2 GiB limit: larger
  /// messages travel as one element of a derived type). Never blocks.
  /// @throws ValueError for a bad rank; InvalidStateError once the engine is stopping.
  void send(int dest, std::vector<std::byte> message);
  /// @brief Queues the @p data bytes for rank @p dest as bulk messages (at most 256 MiB
  /// each, on kBulkTag), sent straight from that memory: @p keep owns it until the sends
  /// complete. Ordered with the other bulk messages to @p dest (what the receiver's
  /// receive_bulk() relies on). Never blocks.
  /// @throws ValueError for a bad rank; InvalidStateError once the engine is stopping.
  void send_bulk(int dest, std::span<const std::byte> data, std::shared_ptr<const void> keep);
  /// @brief Receives the next bulk messages from @p source straight into @p into (each span
  /// cut as send_bulk() cuts it), in order with earlier receive_bulk() calls for that source,
  /// then calls @p done(ok) outside the token (ok false: an MPI error, or a message of
  /// another size than announced). The spans must stay valid until then. Never blocks.
  /// @throws ValueError for a bad rank.
  void receive_bulk(int source, const std::vector<std::span<std::byte>>& into, std::function<void(bool)> done);
  /// @brief Queues @p message for the receiver as if it had arrived from @p source, in order
  /// with the real arrivals (delivered by the next progress round, outside the token): the
  /// messaging layer reports what it finds inside a round (a silent peer) this way, so its
  /// handlers never run under the token.
  void deliver_here(int source, std::vector<std::byte> message);
  /// @brief Wakes a sleeping progress thread (the messaging layer has a batch to flush).
  void wake() noexcept;
  /// @brief Has the engine test @p request until it completes, then calls @p done with its
  /// status (outside the token). The request's buffers must stay valid until then.
  /// @throws ValueError for MPI_REQUEST_NULL.
  void watch(MPI_Request request, std::function<void(const MPI_Status&)> done);
  /// @brief Announces replies the layer above waits for (+n when it sends requests, -n when
  /// replies arrived): while some are expected, the engine's idle naps stay short.
  void expect(long delta) noexcept;

  /// @brief One round of progress in the calling thread; true if anything happened.
  /// @throws InvalidStateError with a progress thread, or from another thread than the creator.
  bool poll();
  /// @brief One round of progress if this thread may drive MPI and no other thread holds the
  /// token; true if it did something. Never blocks.
  bool try_progress();

  /// @brief How long the calling thread, having just moved traffic with try_progress(),
  /// should keep polling before it naps: the configured linger for the thread that drives an
  /// engine without a progress thread (nobody else will take the reply or the next request
  /// off the wire), zero otherwise (the progress thread lingers itself).
  std::chrono::microseconds driver_linger() const noexcept;

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  EngineStats stats() const noexcept;

  /// @brief The MPI tag of engine traffic (the comm is private, so one tag suffices).
  static constexpr int kTag = 0x7270;
  /// @brief The MPI tag of bulk messages (send_bulk / receive_bulk: large payloads).
  static constexpr int kBulkTag = 0x7271;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace troupe::engine
