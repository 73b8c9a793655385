#pragma once
// Test access to an Executor's internals (not part of the API; tests and benchmarks only):
// raw calls, declaring a rank broken, and the messenger underneath.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "troupe/executor/executor.hpp"
#include "troupe/messaging/messenger.hpp"

namespace troupe::detail {

/// Raw call bytes in, raw result bytes out (tests of the receiving side's checks).
class RawEnvelope final : public Envelope {
 public:
  explicit RawEnvelope(std::vector<std::byte> call) : call_(std::move(call)) {}
  Future<std::vector<std::byte>> future() const { return promise_.get_future(); }
  bool start() noexcept override { return promise_.set_running_or_notify_cancel(); }
  void encode(wire::Writer& out) override { out.write_bytes(call_.data(), call_.size()); }
  void run_local() noexcept override {
    try {
      wire::Reader in(call_);
      wire::Writer out;
      wire::decode_and_invoke(in, out);
      promise_.set_result(out.take());
    } catch (...) {
      fail(std::current_exception());
    }
  }
  void complete_remote(std::span<const std::byte> bytes) noexcept override {
    try {
      promise_.set_result(std::vector<std::byte>(bytes.begin(), bytes.end()));
    } catch (...) {
      fail(std::current_exception());
    }
  }
  void fail(std::exception_ptr e) noexcept override {
    try {
      promise_.set_exception(std::move(e));
    } catch (...) {  // already cancelled: nothing waits for it
    }
  }
  void cancel() noexcept override { promise_.get_future().cancel(); }

 private:
  std::vector<std::byte> call_;
  Promise<std::vector<std::byte>> promise_;
};

struct ExecutorTesting {
  /// Sends raw call bytes ([callable id][state][args]) to @p rank; the raw result bytes (or
  /// the error the receiving rank reported).
  static Future<std::vector<std::byte>> submit_raw(Executor& ex, int rank, std::vector<std::byte> call) {
    auto env = std::make_unique<RawEnvelope>(std::move(call));
    auto fut = env->future();
    ex.core_->submit(std::move(env), "ExecutorTesting::submit_raw", rank);
    return fut;
  }
  /// Treats rank @p r as unreachable (BrokenExecutor).
  static void break_rank(Executor& ex, int r) { ex.core_->break_rank(r, "marked unreachable by a test"); }
  /// The messenger under the executor.
  static messaging::Messenger& messenger(Executor& ex) { return ex.core_->messenger(); }
  /// The messenger's counters, also after shutdown (as they were when it stopped).
  static messaging::MessengerStats messenger_stats(const Executor& ex) { return ex.core_->messenger_stats(); }
};

}  // namespace troupe::detail
