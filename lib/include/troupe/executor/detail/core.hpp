#pragma once
// The non-template heart of troupe::Executor: credits and dispatch, the table of tasks in
// flight, the server side that runs tasks arriving from other ranks, and termination. All
// traffic goes through one messaging::Messenger (records, collectives, quiescence, errors).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "troupe/executor/stats.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe {
class Executor;
class Runtime;
class ThreadPool;
struct ExecutorOptions;
namespace messaging {
class Messenger;
struct MessengerStats;
}  // namespace messaging
}  // namespace troupe

namespace troupe::detail {

/// One task this rank submitted: dispatched here or to another rank.
class Envelope {
 public:
  virtual ~Envelope() = default;
  /// pending -> running; false if the future was cancelled meanwhile.
  virtual bool start() noexcept = 0;
  /// Appends the call ([callable id][state][args]) for another rank.
  virtual void encode(wire::Writer& out) = 0;
  /// Runs the task in this process and completes the future (no serialization).
  virtual void run_local() noexcept = 0;
  /// Completes the future from a result record sent by another rank.
  virtual void complete_remote(std::span<const std::byte> result) noexcept = 0;
  /// Completes the future with an exception.
  virtual void fail(std::exception_ptr e) noexcept = 0;
  /// Large payloads (docs/wire.md): true when the call's arguments may hold parts of at least
  /// wire::kBlockMin bytes, which then travel as bulk messages (encode() into a writer with
  /// blocks enabled keeps the arguments alive with it).
  virtual bool may_hold_blocks() const noexcept { return false; }
  /// Decodes a result record whose blocks are still on their way (@p result in deferred
  /// mode: its BlockSet lists where they go). Throws wire::DecodeError when it cannot.
  virtual void begin_blocks(wire::Reader& result) {
    (void)result;
    throw wire::DecodeError("Executor: this task's result cannot have blocks");
  }
  /// Completes the future once the blocks begin_blocks() placed arrived (@p ok) or not.
  virtual void finish_blocks(const std::shared_ptr<wire::BlockSet>& blocks, bool ok) noexcept {
    (void)blocks;
    (void)ok;
  }
  /// Cancels the future if it has not started.
  virtual void cancel() noexcept = 0;

  std::uint64_t id = 0;
  int target = -1;
  bool nested = false;
  std::size_t attempts = 0;  // times sent again after its rank was lost
};

class ExecutorCore {
 public:
  /// Builds the pool and the messenger (not started). Local only.
  ExecutorCore(Executor& owner, Runtime& rt, const ExecutorOptions& options);
  /// Collective: starts serving, checks that every rank has the same callables and learns
  /// their thread counts (tree collectives of the messenger). Separate from the constructor
  /// so that @p owner holds this core before any task can arrive and ask this_executor().
  void start();
  ~ExecutorCore();
  ExecutorCore(const ExecutorCore&) = delete;
  ExecutorCore& operator=(const ExecutorCore&) = delete;

  /// Accepts a task (ownership passes to the core). Throws InvalidStateError after
  /// shutdown (for outside callers) and BrokenExecutor once broken, naming @p api.
  void submit(std::unique_ptr<Envelope> env, const char* api, int pin = -1);

  int rank() const noexcept;
  int size() const noexcept;
  std::size_t total_workers() const noexcept;
  ThreadPool& pool() noexcept;
  messaging::Messenger& messenger();
  /// The messenger's counters (messages and bytes of this rank); after shutdown, as they
  /// were when it stopped (the quiescence included). From any thread.
  messaging::MessengerStats messenger_stats() const noexcept;
  Executor& owner() noexcept;
  bool closed() const noexcept;
  bool in_worker() const noexcept;

  /// Stops accepting outside work; optionally cancels undispatched tasks; when @p wait,
  /// waits for quiescence (collective) and stops the messenger.
  void shutdown(bool wait, bool cancel_futures);
  /// Marks rank @p r unreachable: its tasks fail with BrokenExecutor naming @p why, later
  /// submits throw.
  void break_rank(int r, const std::string& why);
  /// Rank @p r was lost (the failure detector): its tasks are sent again within the retries
  /// or fail with BrokenExecutor naming it; later submits avoid it; the executor goes on.
  void lose_rank(int r, const std::string& why);

  ExecutorStats stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The executor core of the calling pool worker, else the only executor of the process;
/// nullptr when there is none (or several and the caller is none's worker).
ExecutorCore* current_executor_core() noexcept;

}  // namespace troupe::detail
