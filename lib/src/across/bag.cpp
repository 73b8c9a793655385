// troupe::Bag's machinery: a deque of encoded items per rank, stealing by notices, and
// rank 0's termination waves. docs/bag.md states the protocol and why it is correct.
#include "troupe/across/bag.hpp"

#include <deque>
#include <mutex>
#include <random>
#include <string>

#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"

namespace troupe::detail {

namespace {

// Every message of the bag is a notice (no reply slot): stealing and the termination waves.
enum Op : std::uint32_t {
  kSteal = 1,      // thief -> victim: ()
  kGive = 2,       // victim -> thief: (bool answer_to_steal, items)
  kNone = 3,       // victim -> thief: nothing to spare
  kProbe = 4,      // rank 0 -> all: (wave)
  kReport = 5,     // all -> rank 0: (wave, sent, received, pushed, processed, dirty)
  kTerminate = 6,  // rank 0 -> all: (global pushed, global processed)
};

// Steal ahead (a sweep when a consumer takes the last local item) or only when idle.
constexpr bool kStealAhead = true;

struct Msg {
  int dest;
  std::uint32_t op;
  std::vector<std::byte> args;
};

}  // namespace

class BagHost final : public Hosted {
 public:
  BagHost(int rank, int size, int consumers)
      : rank_(rank),
        size_(size),
        consumers_(consumers),
        hungry_(static_cast<std::size_t>(size), false),
        rng_(0x9E3779B97F4A7C15ull ^ static_cast<std::uint64_t>(rank)) {}

  // The hub and the id, known once Hub::add returned: messages made before (answers to
  // records that arrived before this rank built the bag) go out now. Rank 0 starts wave 1.
  void attach(Hub* hub, std::uint64_t id) {
    std::vector<Msg> out;
    {
      std::lock_guard lock(mu_);
      hub_ = hub;
      id_ = id;
      out.swap(early_);
      if (rank_ == 0) start_wave(out);
    }
    send(out);
  }

  void on_call(int src, std::uint64_t /*call*/, std::uint32_t op, wire::Reader& args) override {
    std::vector<Msg> out;
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      switch (op) {
        case kSteal:
          if (!terminated_.load() && shareable()) {
            give(src, true, out);
          } else {
            if (!terminated_.load()) hungry_[static_cast<std::size_t>(src)] = true;
            out.push_back(Msg{src, kNone, {}});
          }
          break;
        case kGive: {
          const bool answer = args.read<bool>();
          auto items = args.read<std::vector<std::vector<std::byte>>>();
          received_ += items.size();
          for (auto& it : items) items_.push_back(std::move(it));
          avail_.store(items_.size(), std::memory_order_release);
          if (answer) stealing_ = false;
          after_change(out);
          if (!terminated_.load()) share_with_hungry(out);
          wake = true;
          break;
        }
        case kNone:
          if (!stealing_) break;
          if (items_.empty() && !terminated_.load() && --sweep_left_ > 0) {
            victim_ = next_other(victim_);
            ++steal_requests_;
            out.push_back(Msg{victim_, kSteal, {}});
          } else {
            stealing_ = false;
          }
          break;
        case kProbe:
          parked_probe_ = args.read<std::uint64_t>();
          after_change(out);
          break;
        case kReport: {
          const auto wave = args.read<std::uint64_t>();
          const auto sent = args.read<std::uint64_t>();
          const auto recv = args.read<std::uint64_t>();
          const auto pushed = args.read<std::uint64_t>();
          const auto processed = args.read<std::uint64_t>();
          const bool dirty = args.read<bool>();
          if (rank_ != 0 || wave != wave_ || decided_) break;
          sum_sent_ += sent;
          sum_recv_ += recv;
          sum_pushed_ += pushed;
          sum_processed_ += processed;
          any_dirty_ = any_dirty_ || dirty;
          if (++reports_ < size_) break;
          if (!any_dirty_ && sum_sent_ == sum_recv_) {
            // Every rank stayed idle from its previous answer to this one, and nothing was
            // in flight: terminated (docs/bag.md, "Why it is correct").
            decided_ = true;
            for (int r = 0; r < size_; ++r) out.push_back(Msg{r, kTerminate, pack(sum_pushed_, sum_processed_)});
          } else {
            start_wave(out);
          }
          break;
        }
        case kTerminate:
          global_pushed_ = args.read<std::uint64_t>();
          global_processed_ = args.read<std::uint64_t>();
          terminated_.store(true, std::memory_order_release);
          stealing_ = false;
          wake = true;
          break;
        default:
          throw wire::DecodeError("Bag: unknown operation " + std::to_string(op));
      }
    }
    send(out);
    if (wake) word_.notify_all();
  }

  void on_cancel(int, std::uint64_t) override {}  // the bag makes no calls

  void on_lost(int rank) override {
    {
      std::lock_guard lock(mu_);
      if (broken_.load() != 0) return;
      reason_ = "rank " + std::to_string(rank) + " was lost: the items it held are gone";
      broken_.store(2, std::memory_order_release);
    }
    word_.notify_all();
  }

  void on_close() override {
    {
      std::lock_guard lock(mu_);
      if (broken_.load() == 0) {
        reason_ = "the bag or its troupe::Runtime was destroyed";
        broken_.store(1, std::memory_order_release);
      }
    }
    word_.notify_all();
  }

  void push(std::vector<std::byte> item, const char* api) {
    std::vector<Msg> out;
    {
      std::lock_guard lock(mu_);
      check_broken(api);
      if (terminated_.load() && ended_ >= consumers_) {
        throw InvalidStateError(std::string(api) + ": the computation of this bag has ended on rank " +
                                std::to_string(rank_) +
                                " (every consumer's pop returned nullopt); build a new Bag for more work");
      }
      items_.push_back(std::move(item));
      ++pushed_;
      avail_.store(items_.size(), std::memory_order_release);
      after_change(out);
      if (!terminated_.load()) share_with_hungry(out);
    }
    send(out);
    word_.notify_one();
  }

  std::optional<std::vector<std::byte>> pop(const Deadline& deadline, const std::stop_token* token, const char* api) {
    std::vector<Msg> out;
    std::optional<std::vector<std::byte>> got;
    {
      std::lock_guard lock(mu_);
      check_broken(api);
      if (terminated_.load() && items_.empty()) {
        ++ended_;
        return std::nullopt;
      }
      if (waiting_ >= consumers_) {
        throw InvalidStateError(std::string(api) + ": more than " + std::to_string(consumers_) +
                                " consumer(s) wait at once on rank " + std::to_string(rank_) +
                                "; build the Bag with Scope::RanksAndThreads and consumers_per_rank = the number of "
                                "threads that pop on each rank");
      }
      ++waiting_;  // the item this consumer had (if any) is done
      got = take_or_idle(out);
    }
    send(out);
    if (got) return got;
    WaitParams params;
    params.help = true;  // items are not granted to a waiter: any consumer takes any item
    for (;;) {
      auto ready = [this] {
        return avail_.load(std::memory_order_acquire) != 0 || terminated_.load(std::memory_order_acquire) ||
               broken_.load(std::memory_order_acquire) != 0;
      };
      const WaitStatus st = word_.wait_status(ready, deadline, token, params);
      out.clear();
      {
        std::lock_guard lock(mu_);
        if (!items_.empty()) {
          got = take_or_idle(out);
        } else if (terminated_.load()) {
          ++ended_;
          return std::nullopt;
        } else if (broken_.load() != 0) {
          --waiting_;
          after_change(out);
          check_broken(api);
        } else if (st == WaitStatus::kTimeout || st == WaitStatus::kCancelled) {
          --waiting_;  // not idle any more: the bag cannot terminate until it pops again
          after_change(out);
        } else {
          got = take_or_idle(out);  // another consumer took the item: steal again if need be
        }
      }
      send(out);
      if (got) return got;
      if (st == WaitStatus::kCancelled) throw_wait_cancelled(api);
      if (st == WaitStatus::kTimeout) {
        throw TimeoutError(std::string(api) + ": timed out on rank " + std::to_string(rank_) +
                           ": no item came and the computation has not terminated (some rank is still busy, or "
                           "fewer than consumers_per_rank threads pop on some rank)");
      }
    }
  }

  bool terminated() const noexcept { return terminated_.load(std::memory_order_acquire); }

  BagStats stats() {
    std::lock_guard lock(mu_);
    BagStats s;
    s.pushed = pushed_;
    s.processed = processed_;
    s.received = received_;
    s.given = given_;
    s.steal_requests = steal_requests_;
    s.waves = wave_;
    s.terminated = terminated_.load();
    s.global_pushed = global_pushed_;
    s.global_processed = global_processed_;
    return s;
  }

 private:
  // Idle: no item here and every consumer of this rank waits in pop().
  bool idle() const { return items_.empty() && waiting_ == consumers_; }

  // After every change of items_ or waiting_ (under mu_): a busy rank is dirty until its
  // next answer to a probe; an idle one answers the probe it holds.
  void after_change(std::vector<Msg>& out) {
    if (!idle()) {
      dirty_ = true;
      return;
    }
    if (parked_probe_ && !terminated_.load()) {
      out.push_back(
          Msg{0, kReport, pack(*parked_probe_, given_, received_, pushed_, processed_, static_cast<bool>(dirty_))});
      dirty_ = false;
      parked_probe_.reset();
    }
  }

  // Takes the newest item for a consumer already counted in waiting_, or, with none here,
  // lets the rank go idle and starts a steal sweep.
  std::optional<std::vector<std::byte>> take_or_idle(std::vector<Msg>& out) {
    if (!items_.empty()) {
      std::vector<std::byte> item = std::move(items_.back());
      items_.pop_back();
      avail_.store(items_.size(), std::memory_order_release);
      --waiting_;
      ++processed_;
      after_change(out);
      // Steal ahead: the last item here is being processed; ask for more now, so that the
      // answer's latency overlaps its processing.
      if (items_.empty() && kStealAhead) start_sweep(out);
      return item;
    }
    after_change(out);
    start_sweep(out);
    return std::nullopt;
  }

  void start_sweep(std::vector<Msg>& out) {
    if (terminated_.load() || stealing_ || size_ <= 1) return;
    stealing_ = true;
    sweep_left_ = size_ - 1;
    victim_ = static_cast<int>(rng_() % static_cast<std::uint64_t>(size_ - 1));
    if (victim_ >= rank_) ++victim_;
    ++steal_requests_;
    out.push_back(Msg{victim_, kSteal, {}});
  }

  int next_other(int r) const {
    r = (r + 1) % size_;
    if (r == rank_) r = (r + 1) % size_;
    return r;
  }

  // A thief gets work when this rank has two or more items, or one while every consumer
  // here is busy (nobody here would take it soon).
  bool shareable() const { return items_.size() >= 2 || (items_.size() == 1 && waiting_ == 0); }

  // Gives half of the items (the oldest: the largest subtrees of a depth-first search).
  void give(int thief, bool answer, std::vector<Msg>& out) {
    const std::size_t k = items_.size() >= 2 ? items_.size() / 2 : 1;
    std::vector<std::vector<std::byte>> batch;
    batch.reserve(k);
    for (std::size_t i = 0; i < k; ++i) {
      batch.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    given_ += k;  // counted before the notice leaves: in flight until the thief counts it
    avail_.store(items_.size(), std::memory_order_release);
    hungry_[static_cast<std::size_t>(thief)] = false;
    out.push_back(Msg{thief, kGive, pack(answer, batch)});
    after_change(out);
  }

  // Thieves that found this rank empty get work as soon as there is some to spare.
  void share_with_hungry(std::vector<Msg>& out) {
    for (int i = 1; i < size_ && shareable(); ++i) {
      const int r = (rank_ + i) % size_;
      if (hungry_[static_cast<std::size_t>(r)]) give(r, false, out);
    }
  }

  void start_wave(std::vector<Msg>& out) {
    ++wave_;
    reports_ = 0;
    sum_sent_ = sum_recv_ = sum_pushed_ = sum_processed_ = 0;
    any_dirty_ = false;
    for (int r = 0; r < size_; ++r) out.push_back(Msg{r, kProbe, pack(wave_)});
  }

  void check_broken(const char* api) const {
    const int b = broken_.load(std::memory_order_acquire);
    if (b == 1) throw InvalidStateError(std::string(api) + ": " + reason_);
    if (b == 2) throw BrokenExecutor(std::string(api) + ": " + reason_);
  }

  void send(std::vector<Msg>& out) {
    if (out.empty()) return;
    Hub* hub = nullptr;
    std::uint64_t id = 0;
    {
      std::lock_guard lock(mu_);
      if (hub_ == nullptr) {  // before attach: Hub::add is handing over early records
        for (auto& m : out) early_.push_back(std::move(m));
        out.clear();
        return;
      }
      hub = hub_;
      id = id_;
    }
    for (auto& m : out) {
      try {
        hub->notice(m.dest, id, m.op, std::move(m.args));
      } catch (const InvalidStateError&) {  // the Runtime is closing: pops end with its error
      }
    }
    out.clear();
  }

  const int rank_;
  const int size_;
  const int consumers_;
  Hub* hub_ = nullptr;
  std::uint64_t id_ = 0;
  std::vector<Msg> early_;

  std::mutex mu_;
  WaitWord word_;
  std::deque<std::vector<std::byte>> items_;
  std::atomic<std::size_t> avail_{0};
  std::atomic<bool> terminated_{false};
  std::atomic<int> broken_{0};  // 1: closed, 2: a rank was lost
  std::string reason_;
  int waiting_ = 0;
  int ended_ = 0;
  bool dirty_ = true;  // consumers start busy: the first wave never decides
  std::optional<std::uint64_t> parked_probe_;
  std::uint64_t given_ = 0, received_ = 0, pushed_ = 0, processed_ = 0, steal_requests_ = 0;
  std::uint64_t global_pushed_ = 0, global_processed_ = 0;

  bool stealing_ = false;
  int sweep_left_ = 0;
  int victim_ = 0;
  std::vector<bool> hungry_;
  std::mt19937_64 rng_;

  // Rank 0: the current wave.
  std::uint64_t wave_ = 0;
  int reports_ = 0;
  std::uint64_t sum_sent_ = 0, sum_recv_ = 0, sum_pushed_ = 0, sum_processed_ = 0;
  bool any_dirty_ = false;
  bool decided_ = false;
};

BagCore::BagCore(Scope scope, int consumers_per_rank, const char* api) : scope_(scope), consumers_(consumers_per_rank) {
  if (consumers_per_rank < 1) {
    throw ValueError(std::string(api) + ": consumers_per_rank must be >= 1, got " + std::to_string(consumers_per_rank));
  }
  if (scope == Scope::Ranks && consumers_per_rank != 1) {
    throw ValueError(std::string(api) +
                     "(Scope::Ranks): one consumer per rank; for several threads per rank use "
                     "Scope::RanksAndThreads, got consumers_per_rank = " +
                     std::to_string(consumers_per_rank));
  }
  auto hub = Hub::of(scope, Deadline::after(settings().startup_timeout, api), api);
  host_ = std::make_shared<BagHost>(hub->rank(), hub->size(), consumers_per_rank);
  handle_ = std::make_unique<Handle>(scope, host_, 0, api);
  host_->attach(&handle_->hub(), handle_->id());
}

BagCore::~BagCore() = default;

void BagCore::push(std::vector<std::byte> item, const char* api) { host_->push(std::move(item), api); }

std::optional<std::vector<std::byte>> BagCore::pop(const Deadline& deadline, const std::stop_token* token,
                                                   const char* api) {
  return host_->pop(deadline, token, api);
}

int BagCore::rank() const noexcept { return handle_->hub().rank(); }
int BagCore::size() const noexcept { return handle_->hub().size(); }
bool BagCore::terminated() const noexcept { return host_->terminated(); }
BagStats BagCore::stats() const { return host_->stats(); }

}  // namespace troupe::detail
