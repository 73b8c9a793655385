#pragma once
// The non-template heart of troupe::Executor: credits and dispatch, the table of tasks in
// flight, the server side that runs tasks arriving from other ranks, and termination.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "troupe/wire/serialize.hpp"

namespace troupe {
class Runtime;
class ThreadPool;
struct ExecutorOptions;
namespace engine {
class Engine;
}
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
  /// Cancels the future if it has not started.
  virtual void cancel() noexcept = 0;

  std::uint64_t id = 0;
  int target = -1;
  bool nested = false;
};

class ExecutorCore {
 public:
  ExecutorCore(Runtime& rt, const ExecutorOptions& options);
  /// Starts serving (the engine); separate so the Executor is published before any task
  /// that calls this_executor() can arrive.
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
  std::size_t local_workers() const noexcept;
  ThreadPool& pool() noexcept;
  engine::Engine& engine() noexcept;
  bool closed() const noexcept;
  bool in_worker() const noexcept;

  /// Stops accepting outside work; optionally cancels undispatched tasks; when @p wait,
  /// runs the collective termination protocol and stops the engine.
  void shutdown(bool wait, bool cancel_futures);
  /// Marks rank @p r unreachable: its tasks fail with BrokenExecutor, later submits throw.
  void break_rank(int r, const std::string& why);

  /// Collective sum over ranks through the engine (blocks the caller, not the engine).
  std::vector<long long> allreduce_sum(std::vector<long long> values);
  /// Key space of collectives made of engine messages: every rank calls the collectives
  /// in the same order, so the n-th collective has the same sequence number everywhere.
  std::uint64_t next_collective() noexcept;
  /// Sends @p bytes to rank @p dest under @p key (non-blocking).
  void post(int dest, std::uint64_t key, std::vector<std::byte> bytes);
  /// Waits for the bytes that rank @p src posted to this rank under @p key.
  std::vector<std::byte> take(int src, std::uint64_t key);

  struct Stats {
    std::uint64_t submitted = 0, completed = 0, ran_here = 0, sent_remote = 0, served_remote = 0;
    std::uint64_t cancelled_remote = 0;  ///< tasks from other ranks cancelled here before they started
  };
  Stats stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The executor of this rank while one exists (for tasks that submit tasks).
ExecutorCore* current_executor_core() noexcept;

}  // namespace troupe::detail
