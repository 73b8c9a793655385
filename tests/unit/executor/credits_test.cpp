// detail::CreditTable: the executor's dispatch choice in O(log P) makes exactly the choices
// of the linear scan it replaced (the reference below), over random credit traffic.
#include "troupe/executor/detail/credits.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace {

// The O(P) scan of ExecutorCore::Impl::pick before the table (the reference policy).
struct Scan {
  std::vector<long long> credits;
  std::vector<bool> broken;
  std::size_t rr = 0;
  explicit Scan(int size) : credits(static_cast<std::size_t>(size), 0), broken(static_cast<std::size_t>(size)) {}
  int pick(bool nested, int rank) {
    const int size = static_cast<int>(credits.size());
    long long best = 0;
    int choice = -1;
    for (int k = 0; k < size; ++k) {
      const int r = static_cast<int>((rr + static_cast<std::size_t>(k)) % static_cast<std::size_t>(size));
      const long long free = credits[static_cast<std::size_t>(r)];
      if (broken[static_cast<std::size_t>(r)] || free <= 0) continue;
      if (free > best || (free == best && nested && r == rank)) {
        best = free;
        choice = r;
      }
    }
    if (choice >= 0) rr = static_cast<std::size_t>(choice) + 1;
    return choice;
  }
};

void run_against_scan(int size, std::uint32_t seed, int steps) {
  troupe::detail::CreditTable table(size);
  Scan scan(size);
  std::mt19937 gen(seed);
  auto any_rank = [&] { return static_cast<int>(gen() % static_cast<std::uint32_t>(size)); };
  const int self = any_rank();
  const long long window = 1 + static_cast<long long>(gen() % 8);
  for (int r = 0; r < size; ++r) {  // the census
    table.add(r, window);
    scan.credits[static_cast<std::size_t>(r)] += window;
  }
  std::vector<int> in_flight;  // ranks holding a credit of ours
  for (int step = 0; step < steps; ++step) {
    const auto what = gen() % 100;
    if (what < 45) {  // a submit: the choice, then the credit taken
      const bool nested = gen() % 3 == 0;
      const int got = table.pick(nested, self);
      const int want = scan.pick(nested, self);
      ASSERT_EQ(got, want) << "size " << size << " seed " << seed << " step " << step;
      int target = got;
      if (target < 0 && nested) target = self;  // over the limit, as ExecutorCore::submit
      if (target >= 0) {
        table.add(target, -1);
        --scan.credits[static_cast<std::size_t>(target)];
        in_flight.push_back(target);
      }
    } else if (what < 88) {  // a result: the credit comes back
      if (in_flight.empty()) continue;
      const auto i = gen() % in_flight.size();
      const int r = in_flight[i];
      in_flight[i] = in_flight.back();
      in_flight.pop_back();
      table.add(r, +1);
      ++scan.credits[static_cast<std::size_t>(r)];
    } else if (what < 96) {  // a pinned submit (submit_to): over the limit if need be
      const int r = any_rank();
      table.add(r, -1);
      --scan.credits[static_cast<std::size_t>(r)];
      in_flight.push_back(r);
    } else if (what < 98) {  // a rank broken (break_rank)
      const int r = any_rank();
      table.set_broken(r);
      scan.broken[static_cast<std::size_t>(r)] = true;
    } else {  // a rank lost (lose_rank): broken, its credits 0
      const int r = any_rank();
      if (r == self) continue;
      table.set_broken(r);
      table.set(r, 0);
      scan.broken[static_cast<std::size_t>(r)] = true;
      scan.credits[static_cast<std::size_t>(r)] = 0;
    }
    for (int r = 0; r < size; ++r) {
      ASSERT_EQ(table.credits(r), scan.credits[static_cast<std::size_t>(r)]);
      ASSERT_EQ(table.broken(r), scan.broken[static_cast<std::size_t>(r)]);
    }
  }
}

}  // namespace

TEST(CreditTable, MakesTheChoicesOfTheLinearScan) {
  for (int size : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 64, 100}) {
    for (std::uint32_t seed = 1; seed <= 20; ++seed) {
      run_against_scan(size, seed * 7919u + static_cast<std::uint32_t>(size), 3000);
      if (HasFatalFailure()) return;
    }
  }
}

TEST(CreditTable, LargeTablesToo) {
  for (int size : {1000, 1024, 4097}) run_against_scan(size, 42u + static_cast<std::uint32_t>(size), 20000);
}

TEST(CreditTable, PolicyByExample) {
  troupe::detail::CreditTable t(4);
  EXPECT_EQ(t.pick(false, 0), -1) << "no credits yet (before the census)";
  for (int r = 0; r < 4; ++r) t.add(r, 2);
  // Equal credits: round robin from the cursor.
  EXPECT_EQ(t.pick(false, 0), 0);
  EXPECT_EQ(t.pick(false, 0), 1);
  EXPECT_EQ(t.pick(false, 0), 2);
  // A nested task: ties at the maximum go to this rank.
  EXPECT_EQ(t.pick(true, 1), 1);
  // The most free credits first.
  t.add(3, -1);
  t.add(0, -1);
  t.add(1, -1);
  EXPECT_EQ(t.pick(false, 0), 2);
  EXPECT_EQ(t.pick(true, 0), 2) << "this rank is not tied at the maximum";
  // Broken ranks are skipped; a lost rank's credits are 0.
  t.set_broken(2);
  EXPECT_EQ(t.pick(false, 0), 3);
  t.set_broken(3);
  t.set(3, 0);
  EXPECT_EQ(t.credits(3), 0);
  EXPECT_EQ(t.pick(false, 0), 0);
  // Over the limit (a pinned submit) and back.
  t.add(0, -5);
  t.add(1, -5);
  EXPECT_EQ(t.pick(false, 0), -1);
  t.add(1, 6);
  EXPECT_EQ(t.pick(false, 0), 1);
  EXPECT_THROW(troupe::detail::CreditTable(0), troupe::ValueError);
}
