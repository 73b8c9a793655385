// The progress bar of maps (MapOptions::progress, troupe/pool/detail/progress.hpp): what it
// writes, forced or off, and that a map feeds it every item. No timing is asserted: only the
// final line, which names the items done of the total.
#include "troupe/pool/detail/progress.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "../../support/test_views.hpp"
#include "troupe/pool/thread_pool.hpp"

namespace {

std::string read_all(std::FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[512];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
  return s;
}

std::string last_line(const std::string& s) {
  const auto cr = s.find_last_of('\r');
  return cr == std::string::npos ? s : s.substr(cr + 1);
}

}  // namespace

TEST(ProgressBar, EndsWithOneLineNamingTheItemsDoneOfTheTotal) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    troupe::detail::ProgressBar bar("Executor::map", std::size_t{10}, f);
    bar.add(3);
    bar.add(7);
    bar.finish();
    bar.finish();  // once
  }
  const std::string s = read_all(f);
  std::fclose(f);
  EXPECT_EQ(s.back(), '\n') << s;
  EXPECT_EQ(last_line(s).rfind("Executor::map: 10/10 items (100%) in ", 0), 0u) << s;
  EXPECT_NE(s.find(" items/s"), std::string::npos) << s;
  EXPECT_EQ(s.find('\n'), s.size() - 1) << "one final line: " << s;
}

TEST(ProgressBar, AnUnknownTotalCountsItemsAndAnEarlyEndSaysSo) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  { troupe::detail::ProgressBar("ThreadPool::map", std::nullopt, f).add(5); }
  {
    troupe::detail::ProgressBar bar("ThreadPool::map", std::size_t{8}, f);
    bar.add(2);
  }  // destroyed before the end: the final line is written anyway
  const std::string s = read_all(f);
  std::fclose(f);
  EXPECT_NE(s.find("ThreadPool::map: 5 items in "), std::string::npos) << s;
  EXPECT_NE(s.find("ThreadPool::map: 2/8 items (25%) in "), std::string::npos) << s;
  EXPECT_NE(s.find("(stopped early)\n"), std::string::npos) << s;
}

TEST(ProgressBar, ManyThreadsAddConcurrently) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    troupe::detail::ProgressBar bar("map", std::size_t{80000}, f);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&bar] {
        for (int i = 0; i < 10000; ++i) bar.add(1);
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(bar.done(), 80000u);
  }
  const std::string s = read_all(f);
  std::fclose(f);
  EXPECT_EQ(last_line(s).rfind("map: 80000/80000 items (100%) in ", 0), 0u) << s;
}

TEST(ProgressBar, OffAndTerminalOnANonTerminalMakeNone) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(troupe::detail::ProgressBar::open(troupe::Progress::off, "map", 1, true, f), nullptr);
  EXPECT_EQ(troupe::detail::ProgressBar::open(troupe::Progress::terminal, "map", 1, true, f), nullptr);
  EXPECT_NE(troupe::detail::ProgressBar::open(troupe::Progress::always, "map", 1, true, f), nullptr);
  std::fclose(f);
}

TEST(ProgressBar, AThreadPoolMapFeedsEveryItem) {
  troupe::ThreadPool pool(2);
  for (const bool unordered : {false, true}) {
    testing::internal::CaptureStderr();
    const troupe::MapOptions o{.chunksize = 7, .progress = troupe::Progress::always};
    auto sq = [](int x) { return x * x; };
    const std::vector<int> v = unordered ? pool.map_unordered(sq, troupe_test::iota(0, 100), o).to_vector()
                                         : pool.map(sq, troupe_test::iota(0, 100), o).to_vector();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(v.size(), 100u);
    const std::string api = unordered ? "ThreadPool::map_unordered" : "ThreadPool::map";
    EXPECT_EQ(last_line(err).rfind(api + ": 100/100 items (100%) in ", 0), 0u) << err;
  }
  testing::internal::CaptureStderr();
  (void)pool.map([](int x) { return x; }, troupe_test::iota(0, 100)).to_vector();  // TROUPE_PROGRESS unset: off
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}
