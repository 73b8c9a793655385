#pragma once
// The input iterator of troupe's result stream (MapResult): each step asks the
// owner for a pointer to its next result (nullptr at the end). Exceptions thrown by the
// owner surface from begin() / operator++, i.e. when the element is reached.
#include <cstddef>
#include <iterator>

namespace troupe::detail {

template <class Owner, class R>
class PullIterator {
 public:
  using value_type = R;
  using difference_type = std::ptrdiff_t;
  PullIterator() = default;
  explicit PullIterator(Owner* owner) : owner_(owner) { ++*this; }
  R& operator*() const { return *cur_; }
  R* operator->() const { return cur_; }
  PullIterator& operator++() {
    cur_ = owner_->advance();
    return *this;
  }
  void operator++(int) { ++*this; }
  friend bool operator==(const PullIterator& it, std::default_sentinel_t) { return it.cur_ == nullptr; }

 private:
  Owner* owner_ = nullptr;
  R* cur_ = nullptr;
};

}  // namespace troupe::detail
