#pragma once
/// @file
/// @brief troupe::Pipe — Python's `multiprocessing.Pipe()` between two ranks: a
/// connection with an end on each, FIFO, duplex or one-way, with end-of-file after close.

#include <chrono>
#include <cstddef>
#include <memory>
#include <stop_token>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe {

/// @brief The peer closed its end of a Pipe and every item it sent was received (Python's
/// `Connection.recv` raises EOFError).
class EOFError : public Error {
 public:
  using Error::Error;
};

namespace detail {

class Handle;
class PipeEnd;

/// The type-erased machinery of Pipe<T> (lib/src/across/pipe.cpp).
class PipeCore {
 public:
  PipeCore(int rank_a, int rank_b, bool duplex, std::size_t window);
  ~PipeCore();
  PipeCore(const PipeCore&) = delete;
  PipeCore& operator=(const PipeCore&) = delete;

  void send(std::vector<std::byte> item, const Deadline& deadline, const std::stop_token* token);
  std::vector<std::byte> recv(const Deadline& deadline, const std::stop_token* token);
  bool poll(const Deadline& deadline, const std::stop_token* token);
  void close() noexcept;
  bool active() const noexcept { return peer_ >= 0; }
  int peer() const noexcept { return peer_; }
  bool closed() const noexcept;

 private:
  void check(const char* api, bool direction_ok, const char* direction) const;
  std::unique_ptr<Handle> handle_;
  std::shared_ptr<PipeEnd> end_;
  int peer_ = -1;
  bool send_ = true;
  bool recv_ = true;
};

}  // namespace detail

/// @brief A two-ended connection between rank @p rank_a and rank @p rank_b carrying items of T.
///
/// **Construction is collective**: every rank builds the Pipe, in the same order as its
/// other cross-rank objects. Ranks a and b hold its two ends; on every other rank the
/// object is an *inactive* end (active() is false; send/recv/poll throw InvalidStateError)
/// that exists only so object ids agree. The two ends must be on different ranks (a == b
/// throws ValueError: between the threads of one rank use a Queue with Scope::Threads).
///
/// **Direction**: duplex (the default) sends both ways; with @p duplex = false items flow
/// from @p rank_a to @p rank_b only (a's end is send-only, b's receive-only; Python's
/// `Pipe(duplex=False)` returns (receive end, send end)).
///
/// **Mechanism** (docs/queues.md): send() is one hub notice straight to the peer rank (no
/// third rank, no reply; troupe's messenger batches them), kept in FIFO order by the
/// messenger's per-destination order. Received items wait in the receiving end until
/// recv() takes them. Flow control is a credit window: at most @p window items may be in
/// flight or waiting unreceived; a send beyond it waits until the receiver has taken items
/// (it returns credits every window/2 items), like a full OS pipe.
///
/// **End of file**: close() (or the end's destruction) sends an end-of-file mark after
/// everything sent; once the peer has received every item before it, recv() throws EOFError
/// and poll() returns true (Python: poll is true when recv would not block).
///
/// @code
/// troupe::Pipe<std::string> pipe(0, 1);           // on every rank
/// if (rank == 0) { pipe.send("hello"); pipe.close(); }
/// if (rank == 1) {
///   try { for (;;) std::cout << pipe.recv(std::chrono::seconds(10)) << "\n"; }
///   catch (const troupe::EOFError&) {}
/// }
/// @endcode
/// @note Every member is thread-safe (several threads of an end's rank may send or receive;
/// each item goes to exactly one recv). Waits do not run other pool tasks.
template <class T>
class Pipe {
 public:
  /// @brief A pipe between @p rank_a and @p rank_b (collective; see the class comment).
  /// @param window the credit window (items in flight or unreceived), >= 1.
  /// @throws ValueError when a rank is out of range, a == b, or window is 0;
  /// InvalidStateError without a live Runtime.
  Pipe(int rank_a, int rank_b, bool duplex = true, std::size_t window = 4096)
      : core_(std::make_unique<detail::PipeCore>(rank_a, rank_b, duplex, window)) {}
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  /// @brief Sends @p item to the peer, waiting while the credit window is used up.
  /// @throws InvalidStateError on an inactive, receive-only or closed end, or when the peer
  /// closed its end (Python's BrokenPipeError); BrokenExecutor when the peer rank was lost.
  void send(const T& item) { core_->send(wire::serialize(item), Deadline{}, nullptr); }
  /// @brief As send(), waiting at most @p timeout for credit. @throws TimeoutError when it passes.
  template <class Rep, class Period>
  void send(const T& item, std::chrono::duration<Rep, Period> timeout) {
    core_->send(wire::serialize(item), Deadline::after(timeout, "Pipe::send"), nullptr);
  }
  /// @brief As send(), until @p deadline or a stop request on @p token.
  /// @throws TimeoutError; CancelledError.
  void send(const T& item, const Deadline& deadline, CancellationToken token = {}) {
    core_->send(wire::serialize(item), deadline, &token);
  }

  /// @brief Receives the oldest item sent by the peer, waiting as long as there is none.
  /// @throws EOFError when the peer closed and everything it sent was received;
  /// InvalidStateError on an inactive, send-only or closed end.
  T recv() { return wire::deserialize<T>(core_->recv(Deadline{}, nullptr)); }
  /// @brief As recv(), at most @p timeout. @throws TimeoutError when it passes first.
  template <class Rep, class Period>
  T recv(std::chrono::duration<Rep, Period> timeout) {
    return wire::deserialize<T>(core_->recv(Deadline::after(timeout, "Pipe::recv"), nullptr));
  }
  /// @brief As recv(), until @p deadline or a stop request on @p token.
  /// @throws TimeoutError; CancelledError; as recv().
  T recv(const Deadline& deadline, CancellationToken token = {}) {
    return wire::deserialize<T>(core_->recv(deadline, &token));
  }
  /// @brief True when recv() would not block (an item, or end of file, is here); returns at
  /// once (Python's `poll()`).
  bool poll() { return core_->poll(Deadline::after(std::chrono::seconds(0), "Pipe::poll"), nullptr); }
  /// @brief Waits at most @p timeout for recv() not to block (Python's `poll(timeout)`).
  /// @return false when the timeout passed with nothing to receive.
  template <class Rep, class Period>
  bool poll(std::chrono::duration<Rep, Period> timeout) {
    return core_->poll(Deadline::after(timeout, "Pipe::poll"), nullptr);
  }
  /// @brief As poll(timeout), until @p deadline or a stop request on @p token.
  bool poll(const Deadline& deadline, CancellationToken token = {}) { return core_->poll(deadline, &token); }
  /// @brief Closes this end: the peer gets end-of-file after what was sent; later send/recv
  /// here throw InvalidStateError. Idempotent; a no-op on an inactive end; never blocks.
  void close() noexcept { core_->close(); }
  /// @brief True on ranks a and b (the ends), false elsewhere.
  bool active() const noexcept { return core_->active(); }
  /// @brief The rank of the other end (-1 on an inactive end).
  int peer() const noexcept { return core_->peer(); }
  /// @brief True once close() was called on this end.
  bool closed() const noexcept { return core_->closed(); }

 private:
  std::unique_ptr<detail::PipeCore> core_;
};

}  // namespace troupe
