#include "troupe/across/pipe.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/detail/wait.hpp"

namespace troupe::detail {

namespace {
using Bytes = std::vector<std::byte>;
enum Op : std::uint32_t { kData = 1, kEof = 2, kCredit = 3 };
}  // namespace

// One end of a pipe (an inactive one on the other ranks): the items received and not yet
// taken, the peer's end-of-file, the send credits. Notices from the peer arrive on the
// message thread; sending and receiving threads wait on `word`.
class PipeEnd final : public Hosted {
 public:
  PipeEnd(int peer, std::size_t window) : peer_(peer), window_(window), credits_(static_cast<std::int64_t>(window)) {}

  void on_call(int src, std::uint64_t call, std::uint32_t op, wire::Reader& args) override {
    if (call != 0 || src != peer_) {
      throw wire::DecodeError("Pipe: a record from rank " + std::to_string(src) + " which is not the peer");
    }
    switch (op) {
      case kData: {
        auto item = args.read<Bytes>();
        std::lock_guard lock(mu_);
        inbox_.push_back(std::move(item));
        break;
      }
      case kEof: {
        std::lock_guard lock(mu_);
        peer_eof_ = true;
        break;
      }
      case kCredit:
        credits_.fetch_add(static_cast<std::int64_t>(args.read<std::uint64_t>()), std::memory_order_acq_rel);
        break;
      default:
        throw wire::DecodeError("Pipe: unknown operation " + std::to_string(op));
    }
    word_.notify_all();
  }
  void on_cancel(int, std::uint64_t) override {}
  void on_lost(int rank) override {
    if (rank != peer_) return;
    peer_lost_.store(true);
    word_.notify_all();
  }
  void on_close() override {
    gone_.store(true);
    word_.notify_all();
  }

  const int peer_;
  const std::size_t window_;
  std::mutex mu_;
  std::deque<Bytes> inbox_;
  bool peer_eof_ = false;
  std::size_t taken_ = 0;  // items received since the last credit return
  std::atomic<std::int64_t> credits_;
  std::atomic<bool> peer_lost_{false};
  std::atomic<bool> gone_{false};
  std::atomic<bool> closed_{false};
  WaitWord word_;

  bool has_news() {
    std::lock_guard lock(mu_);
    return !inbox_.empty() || peer_eof_;
  }
};

namespace {
constexpr WaitParams no_help() {
  WaitParams p;
  p.help = false;
  return p;
}
}  // namespace

PipeCore::PipeCore(int rank_a, int rank_b, bool duplex, std::size_t window) {
  if (rank_a == rank_b) {
    throw ValueError("Pipe: the two ends must be on different ranks, got " + std::to_string(rank_a) +
                     " twice (between the threads of one rank use troupe::Queue with Scope::Threads)");
  }
  if (window == 0) throw ValueError("Pipe: window must be >= 1, got 0");
  // Registered on every rank (ids agree); only the ends use it.
  auto hub = Hub::of(Scope::Ranks, Deadline::after(settings().startup_timeout, "Pipe"), "Pipe");
  const int me = hub->rank();
  for (int r : {rank_a, rank_b}) {
    if (r < 0 || r >= hub->size()) {
      throw ValueError("Pipe: ranks must be in [0, " + std::to_string(hub->size()) + "), got " + std::to_string(r));
    }
  }
  if (me == rank_a) peer_ = rank_b;
  if (me == rank_b) peer_ = rank_a;
  if (!duplex) {
    send_ = me == rank_a;
    recv_ = me == rank_b;
  }
  end_ = std::make_shared<PipeEnd>(peer_, window);
  handle_ = std::make_unique<Handle>(Scope::Ranks, end_, 0, "Pipe");
}

PipeCore::~PipeCore() { close(); }

bool PipeCore::closed() const noexcept { return end_->closed_.load(); }

void PipeCore::check(const char* api, bool direction_ok, const char* direction) const {
  if (peer_ < 0) {
    throw InvalidStateError(std::string(api) + ": rank " + std::to_string(handle_->hub().rank()) +
                            " holds no end of this pipe (an inactive end)");
  }
  if (!direction_ok) throw InvalidStateError(std::string(api) + ": this end is " + direction + " (duplex = false)");
  if (end_->closed_.load()) throw InvalidStateError(std::string(api) + ": this end is closed");
  if (end_->gone_.load())
    throw InvalidStateError(std::string(api) + ": the troupe::Runtime of this pipe was destroyed");
}

void PipeCore::send(std::vector<std::byte> item, const Deadline& deadline, const std::stop_token* token) {
  constexpr const char* api = "Pipe::send";
  check(api, send_, "receive-only");
  auto& e = *end_;
  auto broken = [&] {
    if (e.peer_lost_.load()) return true;
    std::lock_guard lock(e.mu_);
    return e.peer_eof_;
  };
  auto got_credit = [&] {
    auto c = e.credits_.load(std::memory_order_acquire);
    while (c > 0) {
      if (e.credits_.compare_exchange_weak(c, c - 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  };
  bool credit = false;
  auto ready = [&] {
    if (!credit) credit = got_credit();
    return credit || e.peer_lost_.load() || e.gone_.load() || e.closed_.load() || broken();
  };
  if (!e.word_.wait(ready, deadline, token, api, no_help())) {
    throw TimeoutError(std::string(api) + ": the peer (rank " + std::to_string(peer_) +
                       ") did not take items within "
                       "the timeout (" +
                       std::to_string(e.window_) + " items in flight: the credit window is full)");
  }
  if (!credit || broken()) {
    if (credit) e.credits_.fetch_add(1);
    if (e.peer_lost_.load()) {
      throw BrokenExecutor(std::string(api) + ": the peer rank " + std::to_string(peer_) + " was lost");
    }
    check(api, true, "");
    throw InvalidStateError(std::string(api) + ": the peer (rank " + std::to_string(peer_) +
                            ") closed its end (broken pipe)");
  }
  handle_->notice(peer_, kData, pack(item));
}

std::vector<std::byte> PipeCore::recv(const Deadline& deadline, const std::stop_token* token) {
  constexpr const char* api = "Pipe::recv";
  check(api, recv_, "send-only");
  auto& e = *end_;
  for (;;) {
    auto ready = [&] { return e.has_news() || e.peer_lost_.load() || e.gone_.load() || e.closed_.load(); };
    if (!e.word_.wait(ready, deadline, token, api, no_help())) {
      throw TimeoutError(std::string(api) + ": nothing arrived from rank " + std::to_string(peer_) +
                         " within the timeout");
    }
    Bytes item;
    std::uint64_t credit = 0;
    {
      std::unique_lock lock(e.mu_);
      if (e.inbox_.empty()) {
        if (e.peer_eof_) {
          throw EOFError(std::string(api) + ": end of file: the peer (rank " + std::to_string(peer_) +
                         ") closed its end and every item it sent was received");
        }
        lock.unlock();
        if (e.peer_lost_.load()) {
          throw BrokenExecutor(std::string(api) + ": the peer rank " + std::to_string(peer_) + " was lost");
        }
        check(api, true, "");
        continue;  // another thread took the item
      }
      item = std::move(e.inbox_.front());
      e.inbox_.pop_front();
      if (++e.taken_ >= std::max<std::size_t>(1, e.window_ / 2)) {
        credit = e.taken_;
        e.taken_ = 0;
      }
    }
    if (credit != 0) {
      try {
        handle_->notice(peer_, kCredit, pack(credit));
      } catch (...) {  // the Runtime is closing: the peer needs no more credit
      }
    }
    return item;
  }
}

bool PipeCore::poll(const Deadline& deadline, const std::stop_token* token) {
  constexpr const char* api = "Pipe::poll";
  check(api, recv_, "send-only");
  auto& e = *end_;
  auto ready = [&] { return e.has_news() || e.peer_lost_.load() || e.gone_.load() || e.closed_.load(); };
  return e.word_.wait(ready, deadline, token, api, no_help()) && e.has_news();
}

void PipeCore::close() noexcept {
  if (peer_ < 0 || !end_ || end_->closed_.exchange(true)) return;
  try {
    handle_->notice(peer_, kEof, {});
  } catch (...) {  // the Runtime is gone: so is the peer's end
  }
  end_->word_.notify_all();
}

}  // namespace troupe::detail
