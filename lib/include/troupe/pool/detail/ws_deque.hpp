#pragma once
// Chase-Lev work-stealing deque (Le, Pop, Cohen, Zappa Nardelli, PPoPP'13), written
// with seq_cst operations instead of stand-alone fences so ThreadSanitizer can follow it.
// The owner pushes and pops at the bottom (LIFO, cache-warm); thieves take from the top.
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace troupe::detail {

template <class T>
class WsDeque {
  static_assert(std::is_pointer_v<T>);

 public:
  explicit WsDeque(std::int64_t capacity = 1024) {
    auto a = std::make_unique<Array>(capacity);
    array_.store(a.get(), std::memory_order_relaxed);
    arrays_.push_back(std::move(a));
  }
  WsDeque(const WsDeque&) = delete;
  WsDeque& operator=(const WsDeque&) = delete;

  /// Owner only.
  void push(T x) {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    const std::int64_t t = top_.load(std::memory_order_acquire);
    Array* a = array_.load(std::memory_order_relaxed);
    if (b - t > a->capacity - 1) a = grow(a, b, t);
    a->put(b, x);
    bottom_.store(b + 1, std::memory_order_seq_cst);
  }

  /// Owner only. nullptr when empty.
  T pop() {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    Array* a = array_.load(std::memory_order_relaxed);
    bottom_.store(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    T x = a->get(b);
    if (t == b) {
      // Last element: race the thieves for it.
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) x = nullptr;
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return x;
  }

  /// Any thread. nullptr when empty or when it lost a race.
  T steal() {
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    const std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return nullptr;
    Array* a = array_.load(std::memory_order_acquire);
    T x = a->get(t);
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) return nullptr;
    return x;
  }

  /// Any thread; a hint (seq_cst so that the pool's sleep protocol can rely on it).
  bool empty() const noexcept {
    return bottom_.load(std::memory_order_seq_cst) <= top_.load(std::memory_order_seq_cst);
  }
  std::int64_t size_hint() const noexcept {
    auto d = bottom_.load(std::memory_order_relaxed) - top_.load(std::memory_order_relaxed);
    return d > 0 ? d : 0;
  }

 private:
  struct Array {
    explicit Array(std::int64_t cap)
        : capacity(cap), mask(cap - 1), slots(new std::atomic<T>[static_cast<std::size_t>(cap)]) {}
    T get(std::int64_t i) const noexcept {
      return slots[static_cast<std::size_t>(i & mask)].load(std::memory_order_relaxed);
    }
    void put(std::int64_t i, T x) noexcept {
      slots[static_cast<std::size_t>(i & mask)].store(x, std::memory_order_relaxed);
    }
    std::int64_t capacity;
    std::int64_t mask;
    std::unique_ptr<std::atomic<T>[]> slots;
  };

  Array* grow(Array* old, std::int64_t b, std::int64_t t) {
    auto bigger = std::make_unique<Array>(old->capacity * 2);
    for (std::int64_t i = t; i < b; ++i) bigger->put(i, old->get(i));
    Array* raw = bigger.get();
    arrays_.push_back(std::move(bigger));  // old arrays live on: a thief may still read one
    array_.store(raw, std::memory_order_release);
    return raw;
  }

  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  alignas(64) std::atomic<Array*> array_{nullptr};
  std::vector<std::unique_ptr<Array>> arrays_;
};

}  // namespace troupe::detail
