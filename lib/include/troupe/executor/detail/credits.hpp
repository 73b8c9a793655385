#pragma once
/// @file
/// @brief detail::CreditTable — the executor's dispatch choice among P ranks in O(log P).

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "troupe/core/error.hpp"

namespace troupe::detail {

/// @brief The free credits of each rank (its prefetch window minus the tasks sent to it and
/// not answered yet), which ranks may no longer be used, and the executor's choice of the
/// next rank, in O(log P) per operation.
///
/// The policy (docs/scaling.md, "Dispatch"): the usable rank with the most free credits (the
/// least loaded relative to its window); among ranks tied at that maximum, @p self for a task
/// submitted by a task (locality), else the first one at or after the round-robin cursor
/// (cyclically), and the cursor moves past the choice. A rank is usable when it is not broken
/// and has at least one free credit; with none usable, no choice (-1).
///
/// Mechanism: a max tournament tree (an implicit segment tree) over the ranks, whose leaves
/// hold each rank's free credits (0 for a broken rank or one without a free credit): the
/// maximum is the root; the first rank at or after the cursor holding it is found by one
/// walk up and one walk down (2 log2 P steps); a credit change updates one leaf-to-root path
/// (log2 P steps, stopping early where the maximum did not change). No allocation after
/// construction. The linear scan it replaces cost P steps per choice.
///
/// Thread safety: none; the executor holds its dispatch mutex around every call.
class CreditTable {
 public:
  /// @brief An empty table (no ranks).
  CreditTable() = default;
  /// @brief @p size ranks with no credit, none broken.
  /// @throws ValueError when @p size < 1.
  explicit CreditTable(int size) : size_(size) {
    if (size < 1) throw ValueError("CreditTable: size must be >= 1, got " + std::to_string(size));
    while (leaves_ < static_cast<std::size_t>(size)) leaves_ *= 2;
    credits_.assign(static_cast<std::size_t>(size), 0);
    broken_.assign(static_cast<std::size_t>(size), 0);
    tree_.assign(2 * leaves_, 0);
  }

  /// @brief The number of ranks.
  int size() const noexcept { return size_; }
  /// @brief The free credits of rank @p r (negative when it runs over its window).
  long long credits(int r) const noexcept { return credits_[index(r)]; }
  /// @brief True once set_broken(@p r) was called.
  bool broken(int r) const noexcept { return broken_[index(r)] != 0; }

  /// @brief Adds @p delta (may be negative) to rank @p r's free credits. O(log P).
  void add(int r, long long delta) noexcept {
    credits_[index(r)] += delta;
    update(r);
  }
  /// @brief Sets rank @p r's free credits to @p value. O(log P).
  void set(int r, long long value) noexcept {
    credits_[index(r)] = value;
    update(r);
  }
  /// @brief Rank @p r is never chosen again (its credits are still counted). O(log P).
  void set_broken(int r) noexcept {
    broken_[index(r)] = 1;
    update(r);
  }

  /// @brief The next rank to send a task to, or -1 when no rank is usable. Moves the
  /// round-robin cursor past the choice. O(log P).
  /// @param nested true for a task submitted by a task: ties at the maximum go to @p self.
  /// @param self this rank.
  int pick(bool nested, int self) noexcept {
    const long long best = tree_[1];
    if (best <= 0) return -1;
    int choice = -1;
    if (nested && self >= 0 && self < size_ && key(self) == best) {
      choice = self;
    } else {
      choice = first_at_least(static_cast<std::size_t>(cursor_ % static_cast<std::size_t>(size_)), best);
      if (choice < 0) choice = first_at_least(0, best);
    }
    cursor_ = static_cast<std::size_t>(choice) + 1;
    return choice;
  }

 private:
  static std::size_t index(int r) noexcept { return static_cast<std::size_t>(r); }
  long long key(int r) const noexcept {
    const std::size_t i = index(r);
    return broken_[i] != 0 || credits_[i] <= 0 ? 0 : credits_[i];
  }
  void update(int r) noexcept {
    std::size_t i = leaves_ + index(r);
    tree_[i] = key(r);
    for (i /= 2; i >= 1; i /= 2) {
      const long long m = std::max(tree_[2 * i], tree_[2 * i + 1]);
      if (tree_[i] == m) break;  // the maxima above are unchanged too
      tree_[i] = m;
    }
  }
  // The first rank at or after @p from whose key is at least @p target (> 0), or -1.
  int first_at_least(std::size_t from, long long target) const noexcept {
    std::size_t i = leaves_ + from;
    if (tree_[i] < target) {
      // Up until a right sibling holds the target, then down to its leftmost such leaf.
      for (;;) {
        if (i == 1) return -1;
        if (i % 2 == 0 && tree_[i + 1] >= target) {
          ++i;
          break;
        }
        i /= 2;
      }
      while (i < leaves_) i = tree_[2 * i] >= target ? 2 * i : 2 * i + 1;
    }
    return static_cast<int>(i - leaves_);  // padding leaves hold 0 < target: never chosen
  }

  int size_ = 0;
  std::size_t leaves_ = 1;
  std::size_t cursor_ = 0;          // the round-robin cursor
  std::vector<long long> credits_;  // per rank
  std::vector<unsigned char> broken_;
  std::vector<long long> tree_;  // [1] the root; leaves at [leaves_, leaves_ + size_)
};

}  // namespace troupe::detail
