// Producer/consumer with a bounded buffer, using std::mutex + std::condition_variable
// directly — troupe does not wrap them (docs/sync.md) — with every wait bounded by a
// troupe::Deadline, the troupe way: a stuck peer becomes a TimeoutError with context, not
// a hang.
//
// Two producers push 1..N each into a buffer of 4 slots; three consumers sum what they pop.
// The sum is checked at the end.
#include <troupe/core/deadline.hpp>
#include <troupe/core/error.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

/// A bounded FIFO whose put/get take a timeout, like Python's queue.Queue(maxsize).
class BoundedBuffer {
 public:
  explicit BoundedBuffer(std::size_t capacity) : capacity_(capacity) {}

  /// Blocks while full, at most `timeout`; throws troupe::TimeoutError after that.
  void put(long item, std::chrono::milliseconds timeout) {
    // One deadline for the whole call, however many spurious wake-ups happen.
    const auto deadline = troupe::Deadline::after(timeout, "BoundedBuffer::put");
    std::unique_lock lock(mutex_);
    if (!not_full_.wait_until(lock, deadline.time_point(), [&] { return items_.size() < capacity_; })) {
      throw troupe::TimeoutError("BoundedBuffer::put: still full after the timeout");
    }
    items_.push_back(item);
    lock.unlock();
    not_empty_.notify_one();
  }

  /// Blocks while empty, at most `timeout`. Returns false once the buffer is closed and
  /// drained; throws troupe::TimeoutError when nothing arrives in time.
  bool get(long& item, std::chrono::milliseconds timeout) {
    const auto deadline = troupe::Deadline::after(timeout, "BoundedBuffer::get");
    std::unique_lock lock(mutex_);
    if (!not_empty_.wait_until(lock, deadline.time_point(), [&] { return !items_.empty() || closed_; })) {
      throw troupe::TimeoutError("BoundedBuffer::get: nothing arrived before the timeout");
    }
    if (items_.empty()) return false;  // closed and drained
    item = items_.front();
    items_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    return true;
  }

  /// No more puts: wakes every consumer so that it can drain and stop.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    not_empty_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_full_;  // std::condition_variable as is: no wrapper needed
  std::condition_variable not_empty_;
  std::deque<long> items_;
  std::size_t capacity_;
  bool closed_ = false;
};

int main() {
  constexpr long kPerProducer = 2000;
  constexpr int kProducers = 2;
  constexpr int kConsumers = 3;
  BoundedBuffer buffer(4);

  std::vector<long> sums(kConsumers, 0);
  std::vector<long> counts(kConsumers, 0);
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      long item = 0;
      while (buffer.get(item, 5000ms)) {
        sums[static_cast<std::size_t>(c)] += item;
        ++counts[static_cast<std::size_t>(c)];
      }
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      for (long i = 1; i <= kPerProducer; ++i) buffer.put(i, 5000ms);
    });
  }
  for (auto& t : producers) t.join();
  buffer.close();
  for (auto& t : consumers) t.join();

  long total = 0;
  for (int c = 0; c < kConsumers; ++c) {
    std::printf("consumer %d took %ld items\n", c, counts[static_cast<std::size_t>(c)]);
    total += sums[static_cast<std::size_t>(c)];
  }
  const long expected = kProducers * kPerProducer * (kPerProducer + 1) / 2;
  std::printf("sum of consumed items = %ld (expected %ld)\n", total, expected);

  // A bounded wait on an empty, open buffer ends with a TimeoutError instead of a hang.
  BoundedBuffer idle(1);
  bool timed_out = false;
  try {
    long item = 0;
    (void)idle.get(item, 20ms);
  } catch (const troupe::TimeoutError& e) {
    std::printf("TimeoutError: %s\n", e.what());
    timed_out = true;
  }

  const bool ok = total == expected && timed_out;
  std::puts(ok ? "producer_consumer: OK" : "producer_consumer: FAILED");
  return ok ? 0 : 1;
}
