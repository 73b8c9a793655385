// Dict with Scope::Threads: the owner-side state machine and the update protocol in one
// process (what ThreadSanitizer checks): concurrent read-modify-writes of the same keys sum
// exactly, blocking and batched forms agree, errors name the call.
#include "troupe/across/dict.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/error.hpp"

namespace {

constexpr int kThreads = 4;
constexpr int kKeys = 64;
constexpr int kRounds = 200;

std::string key_of(int k) {
  std::string s = "k";
  s += std::to_string(k);
  return s;
}

}  // namespace

TEST(DictThreads, ConcurrentUpdatesOfTheSameKeysSumExactly) {
  troupe::Dict<std::string, long> d(troupe::Scope::Threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        for (int k = 0; k < kKeys; ++k) {
          if ((r + t) % 2 == 0) {
            d.update(key_of(k), [](long n) { return n + 1; });
          } else {
            d.async_update(key_of(k), [](long n) { return n + 1; });
          }
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  d.flush();
  EXPECT_EQ(d.size(), static_cast<std::uint64_t>(kKeys));
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(d.at(key_of(k)), static_cast<long>(kThreads) * kRounds) << key_of(k);
}

TEST(DictThreads, InsertGetEraseFromManyThreads) {
  troupe::Dict<int, std::string> d(troupe::Scope::Threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const int k = t * 1000 + i;
        d.insert(k, std::to_string(k));
        ASSERT_TRUE(d.contains(k));
        ASSERT_EQ(d.get(k).value_or(""), std::to_string(k));
        if (i % 2 == 0) {
          ASSERT_TRUE(d.erase(k));
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(d.size(), static_cast<std::uint64_t>(kThreads) * 250);
  EXPECT_FALSE(d.get(0).has_value());
  EXPECT_EQ(d.at(1), "1");
  try {
    (void)d.at(0);
    ADD_FAILURE() << "at() of a missing key returned";
  } catch (const troupe::KeyError& e) {
    EXPECT_NE(std::string(e.what()).find("Dict::at"), std::string::npos) << e.what();
  }
}
