#pragma once
/// @file
/// @brief troupe::messaging::Messenger — the one protocol between troupe's ranks.
///
/// Everything cross-rank (the executor today; queues, locks, windows and the dictionary
/// next) is a client of one Messenger per communicator:
/// - **records by kind**: send(dest, kind, encode) appends a typed record to the batch
///   for @p dest (aggregation with a latency bound: a batch goes out when it is full and at
///   every progress round); handlers registered with on(kind, ...) read it with the wire
///   codec. The kinds are one table (messaging/kinds.hpp), the layout one header
///   (messaging/detail/batch.hpp);
/// - **a mailbox** (post/take by key) and **tree collectives** over bytes built on it:
///   reduce, broadcast, allreduce, barrier, each O(log P) messages per rank;
/// - **quiescence**: after quiesce() returns on every rank, every counted message sent
///   before it has been handled, and every piece of work announced with begin_work() has
///   ended (YGM's counting, made exact with two agreeing rounds);
/// - **one error policy**: a malformed batch or record, an unknown kind or a record its
///   handler cannot decode is never printed and dropped: the messenger calls the owner's
///   broken handler (rank, cause) and tells the sending rank, whose owner breaks too.
///
/// Threads: send/post/begin_work/end_work from any thread; handlers run on the thread that
/// drives progress (keep them short, hand real work to a pool); the collectives, take() and
/// quiesce() are called by one thread per rank, every rank in the same order.

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/engine/engine.hpp"
#include "troupe/messaging/detail/batch.hpp"
#include "troupe/messaging/kinds.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe::messaging {

/// @brief How a Messenger runs.
struct MessengerOptions {
  /// The engine under it (progress thread, back-off, linger).
  engine::EngineOptions engine = {};
  /// A batch to one destination is sent as soon as it holds this many bytes (and at every
  /// progress round in any case).
  std::size_t batch_bytes = 64 * 1024;
  /// Failure detection (0: off). A peer this rank waits on (watch(), a collective's take)
  /// that stays silent this long is declared lost: after failure_timeout / 4 of silence it
  /// is pinged (its progress answers), after failure_timeout it is lost, and every other
  /// rank is told. Needs progress on the peer while it is silent: a progress thread, or a
  /// thread of its own waiting in troupe.
  std::chrono::milliseconds failure_timeout{0};
};

/// @brief Counters of one Messenger (approximate while running).
struct MessengerStats {
  std::uint64_t records_sent = 0;     ///< every frame, all kinds
  std::uint64_t records_handled = 0;  ///< every frame received, dispatched or dropped
  std::uint64_t mail_sent = 0;        ///< kMail frames (the collectives' messages)
  std::uint64_t mail_received = 0;
  std::uint64_t batches_sent = 0;  ///< MPI messages
  std::uint64_t batches_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t bad_records = 0;  ///< faults found here (each broke the owner)
};

/// @brief A mailbox record: collectives' bytes under a key.
struct MailRecord {
  std::uint64_t key = 0;
  std::vector<std::byte> bytes;
  TROUPE_FIELDS(key, bytes)
};
/// @brief An error notice: the receiver of our record could not use it.
struct BrokenRecord {
  std::string cause;
  TROUPE_FIELDS(cause)
};
/// @brief The head of a kBlocks frame: the inner record's kind and the sizes of its blocks,
/// which follow as bulk messages (engine::Engine::send_bulk); the inner record comes next.
struct BlocksHead {
  std::uint16_t kind = 0;
  std::vector<std::uint64_t> sizes;
  TROUPE_FIELDS(kind, sizes)
};
/// @brief A rank was declared lost (by the sender, or by this rank's own detector).
struct LostRecord {
  std::int32_t rank = -1;
  std::string cause;
  TROUPE_FIELDS(rank, cause)
};

/// @brief The protocol endpoint of this rank on one (private) communicator.
class Messenger {
 public:
  /// @brief Reads one record of a kind from @p source; throw wire::DecodeError (or any
  /// exception) for a record that makes no sense: the error policy takes over.
  using Handler = std::function<void(int source, wire::Reader& record)>;
  /// @brief Told of a fault: @p rank is the peer involved, @p cause says what happened.
  using BrokenHandler = std::function<void(int rank, const std::string& cause)>;
  /// @brief Told once per lost rank, on the thread that delivers messages (never under the
  /// progress token).
  using LostHandler = std::function<void(int rank, const std::string& cause)>;
  /// @brief Reads a record whose blocks are still on their way (on_blocks): decodes it with
  /// @p record in deferred mode (record.blocks()->dest: where each block goes, the decoded
  /// value's own memory) and returns what to call once they arrived (true) or could not be
  /// received (false); an empty function drops them.
  using BlocksHandler = std::function<std::function<void(bool ok)>(int source, wire::Reader& record)>;
  /// @brief Combines two partial results of a reduction: (lower ranks, higher ranks).
  using Combine = std::function<std::vector<std::byte>(std::vector<std::byte> left, std::vector<std::byte> right)>;

  /// @brief Messenger over @p comm, which must be private to it (a duplicate). Not started.
  /// @throws ValueError for MPI_COMM_NULL or batch_bytes < 64.
  Messenger(MPI_Comm comm, MessengerOptions options = {});
  /// @brief Stops the engine (completes posted sends, bounded).
  ~Messenger();
  Messenger(const Messenger&) = delete;
  Messenger& operator=(const Messenger&) = delete;

  /// @brief Registers the handler of @p kind. Before start().
  void on(Kind kind, Handler handler);
  /// @brief Registers the handler of @p kind's records that come with blocks, decoded before
  /// the blocks arrive so that they are received straight into the value. Without one, such
  /// records wait until their blocks arrived (staged in buffers of their own) and go to the
  /// kind's ordinary handler. Before start().
  void on_blocks(Kind kind, BlocksHandler handler);
  /// @brief Registers the owner's broken handler. Before start(). Without one, faults are
  /// only counted (stats().bad_records) and kept (errors()).
  void on_broken(BrokenHandler handler);
  /// @brief Registers the owner's handler of lost ranks. Before start().
  void on_lost(LostHandler handler);
  /// @brief Starts progress.
  void start();

  /// @brief This rank waits on @p peer for @p delta more (or, negative, fewer) things: while
  /// the count is positive the failure detector watches the peer (see
  /// MessengerOptions::failure_timeout). From any thread.
  void watch(int peer, int delta) noexcept;
  /// @brief True once @p peer was declared lost (here or by another rank). A lost rank stays
  /// lost: nothing more is sent to it or taken from it, and the collectives and quiescence
  /// go on over the others.
  bool is_lost(int peer) const noexcept;
  /// @brief The ranks declared lost so far, in the order they were.
  std::vector<int> lost() const;

  /// @brief Sends a record of @p kind to @p dest: @p encode(wire::Writer&) writes it
  /// straight into the batch (no intermediate buffer). Never blocks on the network.
  /// @throws ValueError for a bad rank; what @p encode throws (nothing is sent then).
  template <class Encode>
  void send(int dest, Kind kind, Encode&& encode) {
    Outgoing out = open(dest, counted(kind), "Messenger::send");
    try {
      detail::append_frame(*out.batch, static_cast<std::uint16_t>(kind), encode);
    } catch (...) {
      close(out, false);
      throw;
    }
    close(out, true);
  }
  /// @brief Sends a record of @p kind whose large parts @p blocks (recorded by a block-enabled
  /// wire::Writer) travel as bulk messages straight from their memory, which @p keep owns
  /// until they are sent; @p encode writes the rest of the record. The receiver decodes it
  /// with its on_blocks handler, or its ordinary one once the blocks arrived. A record with
  /// blocks may overtake records sent after it. Never blocks on the network.
  /// @throws ValueError for a bad rank or no blocks; what @p encode throws (nothing sent).
  template <class Encode>
  void send_blocks(int dest, Kind kind, const std::vector<wire::Writer::Block>& blocks,
                   std::shared_ptr<const void> keep, Encode&& encode) {
    Outgoing out = open(dest, counted(kind), "Messenger::send_blocks");
    try {
      BlocksHead head{static_cast<std::uint16_t>(kind), {}};
      for (const auto& b : blocks) head.sizes.push_back(b.size);
      if (head.sizes.empty()) throw ValueError("Messenger::send_blocks: no blocks");
      detail::append_frame(*out.batch, static_cast<std::uint16_t>(Kind::kBlocks), [&](wire::Writer& w) {
        wire::save(w, head);
        encode(w);
      });
    } catch (...) {
      close(out, false);
      throw;
    }
    try {
      queue_blocks(out, blocks, std::move(keep));  // in the order of the frames (under the lock)
    } catch (...) {                                // the engine is stopping
      close(out, true);
      throw;
    }
    close(out, true);
  }
  /// @brief Sends raw record bytes of any kind number (tests of the error policy).
  void send_raw(int dest, std::uint16_t kind, std::span<const std::byte> record);

  /// @brief Announces work a handler (or the owner) started that quiescence must wait for.
  void begin_work() noexcept;
  /// @brief Ends one piece of work announced with begin_work().
  void end_work() noexcept;

  /// @brief Posts @p bytes to rank @p dest under @p key (a mailbox slot). Non-blocking.
  void post(int dest, std::uint64_t key, std::vector<std::byte> bytes);
  /// @brief Waits for the bytes rank @p src posted here under @p key, driving progress.
  /// @throws TimeoutError naming @p api when @p deadline passes; BrokenExecutor naming
  /// @p src when it is (or becomes) lost.
  std::vector<std::byte> take(int src, std::uint64_t key, const Deadline& deadline, const char* api);

  /// The collectives run over the ranks not lost: a rank lost while one runs makes every
  /// rank start it again over the others (keys carry the count of lost ranks), so a
  /// collective completes without the lost rank. They throw TimeoutError when @p deadline
  /// passes, naming the ranks still awaited, and BrokenExecutor when @p root is lost.
  ///
  /// @brief Collective: reduces every rank's @p mine towards @p root by a binomial tree
  /// (one message sent per non-root rank, at most ceil(log2 P) received). The partial
  /// results are combined in rank order relative to @p root (rank order for root 0), so
  /// @p combine needs only associativity. The result on @p root, nullopt elsewhere.
  std::optional<std::vector<std::byte>> reduce(std::vector<std::byte> mine, const Combine& combine, int root,
                                               const Deadline& deadline = {});
  /// @brief Collective: @p root's @p value on every rank, by a binomial tree (at most
  /// ceil(log2 P) messages sent or received per rank). @p value is ignored elsewhere.
  std::vector<std::byte> broadcast(std::vector<std::byte> value, int root, const Deadline& deadline = {});
  /// @brief Collective: reduce to rank 0, then broadcast (rank order kept).
  std::vector<std::byte> allreduce(std::vector<std::byte> mine, const Combine& combine, const Deadline& deadline = {});
  /// @brief Collective: returns once every rank has entered it.
  void barrier(const Deadline& deadline = {});
  /// @brief Collective: allreduce of a wire-serializable value with @p op(left, right).
  template <class T, class Op>
  T allreduce_value(const T& mine, Op op, const Deadline& deadline = {}) {
    auto bytes = allreduce(
        wire::serialize(mine),
        [&op](std::vector<std::byte> l, std::vector<std::byte> r) {
          return wire::serialize(op(wire::deserialize<T>(l), wire::deserialize<T>(r)));
        },
        deadline);
    return wire::deserialize<T>(bytes);
  }

  /// @brief Collective: returns when every counted message sent anywhere before the call
  /// has been handled and no announced work is running, on every rank (two consecutive
  /// rounds of a tree allreduce of the counters agree). Handlers keep running meanwhile.
  /// @throws TimeoutError when @p deadline passes.
  void quiesce(const Deadline& deadline = {});

  /// @brief One round of progress if this thread may drive MPI; true if it did something.
  bool try_progress();

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  engine::Engine& engine() noexcept;
  MessengerStats stats() const noexcept;
  /// @brief The faults seen so far ("rank r: cause"), in order.
  std::vector<std::string> errors() const;

 private:
  struct Restart {};  // the set of lost ranks changed during a collective
  template <class Body>
  auto over_live(Body body, const char* api);
  std::vector<std::byte> take_in(int src, std::uint64_t key, const Deadline& deadline, const char* api,
                                 std::uint32_t epoch);
  std::vector<std::byte> broadcast_in(std::vector<std::byte> value, int root, const Deadline& deadline,
                                      std::uint64_t key, const std::vector<int>& live, std::uint32_t epoch);

  struct Outgoing {
    std::vector<std::byte>* batch;
    void* lock;
    int dest;
    bool was_empty;
    bool counted;
  };
  Outgoing open(int dest, bool is_counted, const char* api);
  void queue_blocks(Outgoing& out, const std::vector<wire::Writer::Block>& blocks, std::shared_ptr<const void> keep);
  void close(Outgoing& out, bool sent) noexcept;

  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace troupe::messaging
