// Lazy ranges for tests that compile with every supported compiler: troupe_test::iota(a, b),
// troupe_test::iota(a) (unbounded) and troupe_test::filter(range, pred) (an unsized range).
//
// With g++ (and clang 16 or later, assumed; untested) they ARE std::views::iota /
// std::views::filter, so the tests exercise the standard views. clang 14 cannot compile libstdc++ 12's views at
// all (every view derives from std::ranges::view_interface, whose constrained members clang
// checks too early: "no matching function for call to '__begin'", llvm/llvm-project#52696;
// docs/portability.md), so there they are small hand-written ranges with the same
// properties: iota is a sized random-access range, filter is an unsized forward range.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <ranges>
#include <type_traits>
#include <utility>

#if defined(__clang__) && __clang_major__ < 16 && defined(__GLIBCXX__)
#define TROUPE_TEST_STD_VIEWS 0
#else
#define TROUPE_TEST_STD_VIEWS 1
#endif

namespace troupe_test {

#if TROUPE_TEST_STD_VIEWS

template <class T>
auto iota(T first, T last) {
  return std::views::iota(first, last);
}
template <class T>
auto iota(T first) {
  return std::views::iota(first);
}
template <class R, class Pred>
auto filter(R&& range, Pred pred) {
  return std::forward<R>(range) | std::views::filter(std::move(pred));
}

#else

template <class T>
class IotaIterator {
 public:
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using iterator_concept = std::random_access_iterator_tag;
  using iterator_category = std::random_access_iterator_tag;
  using reference = T;
  using pointer = void;
  IotaIterator() = default;
  explicit IotaIterator(T v) : v_(v) {}
  T operator*() const { return v_; }
  T operator[](difference_type n) const { return static_cast<T>(v_ + n); }
  IotaIterator& operator++() {
    ++v_;
    return *this;
  }
  IotaIterator operator++(int) {
    IotaIterator t = *this;
    ++v_;
    return t;
  }
  IotaIterator& operator--() {
    --v_;
    return *this;
  }
  IotaIterator operator--(int) {
    IotaIterator t = *this;
    --v_;
    return t;
  }
  IotaIterator& operator+=(difference_type n) {
    v_ = static_cast<T>(v_ + n);
    return *this;
  }
  IotaIterator& operator-=(difference_type n) {
    v_ = static_cast<T>(v_ - n);
    return *this;
  }
  friend IotaIterator operator+(IotaIterator i, difference_type n) { return i += n; }
  friend IotaIterator operator+(difference_type n, IotaIterator i) { return i += n; }
  friend IotaIterator operator-(IotaIterator i, difference_type n) { return i -= n; }
  friend difference_type operator-(IotaIterator a, IotaIterator b) { return static_cast<difference_type>(a.v_ - b.v_); }
  friend bool operator==(IotaIterator a, IotaIterator b) { return a.v_ == b.v_; }
  friend auto operator<=>(IotaIterator a, IotaIterator b) { return a.v_ <=> b.v_; }

 private:
  T v_{};
};

/// [first, last): sized, random access.
template <class T>
class IotaRange {
 public:
  IotaRange(T first, T last) : first_(first), last_(last) {}
  IotaIterator<T> begin() const { return IotaIterator<T>(first_); }
  IotaIterator<T> end() const { return IotaIterator<T>(last_); }
  std::size_t size() const { return static_cast<std::size_t>(last_ - first_); }

 private:
  T first_;
  T last_;
};

/// [first, infinity): random access, no end.
template <class T>
class UnboundedIota {
 public:
  explicit UnboundedIota(T first) : first_(first) {}
  IotaIterator<T> begin() const { return IotaIterator<T>(first_); }
  std::unreachable_sentinel_t end() const { return {}; }

 private:
  T first_;
};

/// The elements of a range for which pred is true: forward, unsized. Holds the range (an
/// rvalue is moved in; an lvalue is referred to).
template <class R, class Pred>
class FilterRange {
  using Base = std::remove_reference_t<R>;
  using Held = std::conditional_t<std::is_lvalue_reference_v<R>, Base*, std::shared_ptr<Base> >;
  using It = std::ranges::iterator_t<Base>;
  using End = std::ranges::sentinel_t<Base>;

 public:
  struct Sentinel {};
  class Iterator {
   public:
    using value_type = std::ranges::range_value_t<Base>;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::forward_iterator_tag;
    Iterator() = default;
    Iterator(It it, End end, const Pred* pred) : it_(std::move(it)), end_(std::move(end)), pred_(pred) { skip(); }
    decltype(auto) operator*() const { return *it_; }
    Iterator& operator++() {
      ++it_;
      skip();
      return *this;
    }
    Iterator operator++(int) {
      Iterator t = *this;
      ++*this;
      return t;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) { return a.it_ == b.it_; }
    friend bool operator==(const Iterator& a, Sentinel) { return a.it_ == a.end_; }

   private:
    void skip() {
      while (it_ != end_ && !(*pred_)(*it_)) ++it_;
    }
    It it_{};
    End end_{};
    const Pred* pred_ = nullptr;
  };

  FilterRange(Held held, Pred pred) : held_(std::move(held)), pred_(std::make_shared<Pred>(std::move(pred))) {}
  Iterator begin() const { return Iterator(std::ranges::begin(*held_), std::ranges::end(*held_), pred_.get()); }
  Sentinel end() const { return {}; }

 private:
  Held held_;
  std::shared_ptr<Pred> pred_;
};

template <class T>
IotaRange<T> iota(T first, T last) {
  return IotaRange<T>(first, last);
}
template <class T>
UnboundedIota<T> iota(T first) {
  return UnboundedIota<T>(first);
}
template <class R, class Pred>
auto filter(R&& range, Pred pred) {
  if constexpr (std::is_lvalue_reference_v<R>) {
    return FilterRange<R, Pred>(&range, std::move(pred));
  } else {
    return FilterRange<R, Pred>(std::make_shared<std::remove_cvref_t<R> >(std::move(range)), std::move(pred));
  }
}

#endif

}  // namespace troupe_test
