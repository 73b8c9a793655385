// The process's one timer service for coroutines (troupe/coro/sleep.hpp): a thread with a
// min-heap of deadlines, sleeping through the one wait loop until the earliest.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "troupe/core/detail/wait.hpp"
#include "troupe/coro/sleep.hpp"

namespace troupe::detail {
namespace {

class TimerService {
 public:
  TimerService() {
    std::thread([this] { loop(); }).detach();
  }

  void schedule(Clock::time_point when, std::shared_ptr<TimerEntry> entry) {
    bool earlier = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      heap_.push_back(Item{when, seq_++, std::move(entry)});
      std::push_heap(heap_.begin(), heap_.end(), Later{});
      earlier = heap_.front().when == when && when < sleeping_until_;
      if (earlier) sleeping_until_ = when;
    }
    if (earlier) {
      wake_.store(true, std::memory_order_release);
      word_.notify_one();
    }
  }

  std::size_t size() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return heap_.size();
  }

 private:
  struct Item {
    Clock::time_point when;
    std::uint64_t seq;  // FIFO among equal deadlines
    std::shared_ptr<TimerEntry> entry;
  };
  struct Later {
    bool operator()(const Item& a, const Item& b) const noexcept {
      return a.when != b.when ? a.when > b.when : a.seq > b.seq;
    }
  };

  void loop() {
    std::vector<std::shared_ptr<TimerEntry>> due;
    WaitParams params;
    params.spin = std::chrono::nanoseconds(0);
    params.help = false;
    params.poll_while_asleep = false;
    for (;;) {
      Clock::time_point next;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        wake_.store(false, std::memory_order_relaxed);
        const auto now = Clock::now();
        while (!heap_.empty() && heap_.front().when <= now) {
          std::pop_heap(heap_.begin(), heap_.end(), Later{});
          due.push_back(std::move(heap_.back().entry));
          heap_.pop_back();
        }
        next = heap_.empty() ? Clock::time_point::max() : heap_.front().when;
        sleeping_until_ = next;
      }
      for (auto& e : due) e->on_timer();
      due.clear();
      if (next == Clock::time_point::max()) {
        word_.wait([this] { return wake_.load(std::memory_order_acquire); }, Deadline{}, nullptr, "troupe::sleep timer",
                   params);
      } else {
        word_.wait([this] { return wake_.load(std::memory_order_acquire); }, Deadline::at(next), nullptr,
                   "troupe::sleep timer", params);
      }
    }
  }

  std::mutex mutex_;
  std::vector<Item> heap_;
  std::uint64_t seq_ = 0;
  Clock::time_point sleeping_until_ = Clock::time_point::min();  // the loop is awake
  std::atomic<bool> wake_{false};
  WaitWord word_;
};

TimerService& service() {
  // Never destroyed: its thread runs until the process ends, and tasks may still sleep
  // while static objects are destroyed.
  static TimerService* s = new TimerService();
  return *s;
}

}  // namespace

void schedule_timer(Clock::time_point when, std::shared_ptr<TimerEntry> entry) {
  service().schedule(when, std::move(entry));
}

std::size_t pending_timers() noexcept { return service().size(); }

}  // namespace troupe::detail
