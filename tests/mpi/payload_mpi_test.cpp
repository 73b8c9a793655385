// Large payloads through the distributed executor at 1, 2 and 4 ranks (docs/wire.md, "Large
// payloads"): results and arguments whose vectors and strings travel as bulk messages arrive
// intact, several at once and mixed with small tasks, beside a task that throws, nested in
// containers (an unordered map whose order differs between ranks, a type that copies its
// parts while being decoded). Sizes stay in the tens of MiB: the CI runs this under ASan.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "troupe/executor/detail/testing.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/messaging/messenger.hpp"
#include "troupe/runtime/runtime.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::Executor;
using troupe::Future;
using troupe_test::quiet;

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

// A vector whose every element depends on its index and a seed (checked element by element).
std::vector<double> pattern(std::size_t n, std::uint64_t seed) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<double>(i * 3 + seed);
  return v;
}
bool is_pattern(const std::vector<double>& v, std::size_t n, std::uint64_t seed) {
  if (v.size() != n) return false;
  for (std::size_t i = 0; i < n; ++i) {
    if (v[i] != static_cast<double>(i * 3 + seed)) return false;
  }
  return true;
}
std::string text(std::size_t n, char seed) {
  std::string s(n, ' ');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + static_cast<std::size_t>(seed)) % 26);
  return s;
}

// The other ranks in turn (this rank alone at 1 rank).
int peer(const Executor& ex, int i) { return ex.size() == 1 ? 0 : 1 + i % (ex.size() - 1); }

// A type that has no move constructor (a declared copy constructor suppresses it): a map of
// it copies each value into place while decoding, so its blocks cannot be received in place.
struct Copier {
  std::deque<int> tags;
  std::vector<double> data;
  Copier() = default;
  Copier(std::deque<int> t, std::vector<double> d) : tags(std::move(t)), data(std::move(d)) {}
  Copier(const Copier&) = default;
  Copier& operator=(const Copier&) = default;
  ~Copier() = default;
  TROUPE_FIELDS(tags, data)
};

// Remote calls of the helpers (a lambda needs no registration, a function name would).
constexpr auto make_pattern = [](std::size_t n, std::uint64_t seed) { return pattern(n, seed); };
constexpr auto make_text = [](std::size_t n, char seed) { return text(n, seed); };

}  // namespace

TEST(Payload, LargeVectorAndStringResultsArriveIntact) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    const std::size_t n = 32 * kMiB / sizeof(double);
    for (int i = 0; i < std::max(1, ex.size() - 1); ++i) {
      const auto v = ex.submit_to(peer(ex, i), make_pattern, n, std::uint64_t(i)).result(120s);
      EXPECT_TRUE(is_pattern(v, n, static_cast<std::uint64_t>(i))) << "from rank " << peer(ex, i);
      const auto s = ex.submit_to(peer(ex, i), make_text, 24 * kMiB + 5, char(i)).result(120s);
      EXPECT_EQ(s, text(24 * kMiB + 5, char(i)));
    }
    // Just below and at the block size: inline and block paths meet.
    for (const std::size_t bytes : {troupe::wire::kBlockMin - 8, troupe::wire::kBlockMin}) {
      const auto v = ex.submit_to(peer(ex, 0), make_pattern, bytes / sizeof(double), std::uint64_t{7}).result(60s);
      EXPECT_TRUE(is_pattern(v, bytes / sizeof(double), 7));
    }
  }
  ex.shutdown();
}

TEST(Payload, LargeArgumentsArriveIntactAndComeBack) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    const std::size_t n = 32 * kMiB / sizeof(double);
    auto v = pattern(n, 11);
    // The argument is checked where it arrives, then sent back as the result.
    auto echo = ex.submit_to(
        peer(ex, 0),
        [](std::vector<double> x, std::string s) {
          if (!is_pattern(x, x.size(), 11) || s != text(s.size(), 3)) throw std::runtime_error("argument damaged");
          return std::make_pair(std::move(x), std::move(s));
        },
        v, text(8 * kMiB, 3));
    const auto [back, s] = echo.result(120s);
    EXPECT_TRUE(is_pattern(back, n, 11));
    EXPECT_EQ(s.size(), 8 * kMiB);
    // The caller's own copy is untouched (arguments are sent, not stolen).
    EXPECT_TRUE(is_pattern(v, n, 11));
  }
  ex.shutdown();
}

TEST(Payload, SeveralInFlightMixedWithSmallTasks) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    const std::size_t n = 8 * kMiB / sizeof(double);
    std::vector<Future<std::vector<double>>> big;
    std::vector<Future<double>> sums;
    std::vector<Future<int>> small;
    for (int i = 0; i < 6; ++i) {
      big.push_back(ex.submit_to(peer(ex, i), make_pattern, n, std::uint64_t(100 + i)));
      for (int k = 0; k < 20; ++k) small.push_back(ex.submit([](int x) { return x * 2; }, i * 20 + k));
      sums.push_back(ex.submit([](const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0); },
                               pattern(n, std::uint64_t(200 + i))));
    }
    for (int i = 0; i < 6; ++i) {
      EXPECT_TRUE(is_pattern(big[static_cast<std::size_t>(i)].result(120s), n, static_cast<std::uint64_t>(100 + i)));
      const auto ref = pattern(n, std::uint64_t(200 + i));
      EXPECT_EQ(sums[static_cast<std::size_t>(i)].result(120s), std::accumulate(ref.begin(), ref.end(), 0.0));
    }
    for (int i = 0; i < static_cast<int>(small.size()); ++i)
      EXPECT_EQ(small[static_cast<std::size_t>(i)].result(60s), i * 2);
  }
  ex.shutdown();
}

TEST(Payload, ATaskThatThrowsBesideLargePayloads) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    const std::size_t n = 16 * kMiB / sizeof(double);
    auto bad = ex.submit_to(
        peer(ex, 0),
        [](const std::vector<double>& x) -> std::vector<double> {
          throw std::invalid_argument(std::string("bad input of ").append(std::to_string(x.size())));
        },
        pattern(n, 1));
    auto good = ex.submit_to(peer(ex, 0), make_pattern, n, std::uint64_t{2});
    try {
      (void)bad.result(120s);
      ADD_FAILURE() << "the task's exception did not arrive";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("bad input of ").append(std::to_string(n))), std::string::npos)
          << e.what();
    }
    EXPECT_TRUE(is_pattern(good.result(120s), n, 2));
    EXPECT_EQ(ex.stats().bad_records, 0u);
  }
  ex.shutdown();
}

TEST(Payload, NestedContainersOfLargeVectors) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    const std::size_t n = 4 * kMiB / sizeof(double);
    // A vector of vectors, large and small mixed, and a map of strings to them.
    const auto nested = ex.submit_to(
                              peer(ex, 0),
                              [](std::size_t m) {
                                std::vector<std::vector<double>> out;
                                for (std::size_t i = 0; i < 5; ++i) out.push_back(pattern(i % 2 == 0 ? m : 3, i));
                                return out;
                              },
                              n)
                            .result(120s);
    ASSERT_EQ(nested.size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) EXPECT_TRUE(is_pattern(nested[i], i % 2 == 0 ? n : 3, i)) << i;

    const auto named = ex.submit_to(
                             peer(ex, 0),
                             [](std::size_t m) {
                               std::map<std::string, std::pair<std::string, std::vector<double>>> out;
                               for (std::uint64_t i = 0; i < 3; ++i) {
                                 out[std::string("k").append(std::to_string(i))] = {
                                     text(2 * kMiB, static_cast<char>(i)), pattern(m, i)};
                               }
                               return out;
                             },
                             n)
                           .result(120s);
    ASSERT_EQ(named.size(), 3u);
    for (std::uint64_t i = 0; i < 3; ++i) {
      const auto& [s, v] = named.at(std::string("k").append(std::to_string(i)));
      EXPECT_EQ(s, text(2 * kMiB, static_cast<char>(i)));
      EXPECT_TRUE(is_pattern(v, n, i));
    }

    // An unordered map: its order on the receiving rank need not be the sender's.
    const auto hashed = ex.submit_to(
                              peer(ex, 0),
                              [](std::size_t m) {
                                std::unordered_map<int, std::vector<double>> out;
                                for (int i = 0; i < 16; ++i)
                                  out[i * 7919] = pattern(m / 8, static_cast<std::uint64_t>(i));
                                return out;
                              },
                              n * 2)
                            .result(120s);
    ASSERT_EQ(hashed.size(), 16u);
    for (int i = 0; i < 16; ++i) EXPECT_TRUE(is_pattern(hashed.at(i * 7919), n / 4, static_cast<std::uint64_t>(i)));

    // Decoding copies these (a vector of them grows): the fallback must still be exact.
    const auto copied =
        ex.submit_to(
              peer(ex, 0),
              [](std::size_t m) {
                std::map<int, Copier> out;
                for (int i = 0; i < 6; ++i) {
                  out.emplace(i, Copier({i, i + 1}, pattern(m / 2, 50 + static_cast<std::uint64_t>(i))));
                }
                return out;
              },
              n)
            .result(120s);
    ASSERT_EQ(copied.size(), 6u);
    for (int i = 0; i < 6; ++i) {
      EXPECT_EQ(copied.at(i).tags, (std::deque<int>{i, i + 1}));
      EXPECT_TRUE(is_pattern(copied.at(i).data, n / 2, 50 + static_cast<std::uint64_t>(i)));
    }
    // A nested argument too.
    std::vector<std::vector<double>> arg{pattern(n, 1), pattern(5, 2), pattern(n, 3)};
    const double total = ex.submit_to(
                               peer(ex, 0),
                               [](const std::vector<std::vector<double>>& a) {
                                 double t = 0;
                                 for (const auto& x : a) t += std::accumulate(x.begin(), x.end(), 0.0);
                                 return t;
                               },
                               arg)
                             .result(120s);
    double expect = 0;
    for (const auto& x : arg) expect += std::accumulate(x.begin(), x.end(), 0.0);
    EXPECT_EQ(total, expect);
    EXPECT_EQ(ex.stats().bad_records, 0u);
  }
  ex.shutdown();
}

namespace {

bool saw_fault(Executor& ex) {
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (troupe::detail::ExecutorTesting::messenger(ex).stats().bad_records == 0) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

// The root sends rank 1 a bad record of blocks (by @p send) while a task placed there is
// pending: that task ends with BrokenExecutor naming @p cause, the blocks that were
// announced are still received (shutdown ends on every rank), and nothing crashes.
template <class Send>
void inject_and_expect_broken(Send send, const std::string& cause) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    auto pending = ex.submit_to(
        1, [](int) { return saw_fault(troupe::this_executor()) ? 1 : 0; }, 0);
    send(troupe::detail::ExecutorTesting::messenger(ex));
    try {
      (void)pending.result(60s);
      ADD_FAILURE() << "the task on the rank that found the fault completed normally";
    } catch (const troupe::BrokenExecutor& e) {
      EXPECT_NE(std::string(e.what()).find(cause), std::string::npos) << e.what();
    }
  }
  ex.shutdown();
  EXPECT_EQ(ex.stats().bad_records, ex.rank() == 1 ? 1u : 0u);
}

}  // namespace

TEST(Payload, AResultWithBlocksThatIsNoValueBreaksTheOwner) {
  if (troupe_test::world_size() < 2) GTEST_SKIP() << "needs a second rank to receive the record";
  const auto data = std::make_shared<const std::vector<double>>(pattern(2 * kMiB / sizeof(double), 1));
  inject_and_expect_broken(
      [&](troupe::messaging::Messenger& m) {
        const std::vector<troupe::wire::Writer::Block> blocks{
            {reinterpret_cast<const std::byte*>(data->data()), data->size() * sizeof(double)}};
        // A result record {id, outcome 1 (failed)} cannot come with blocks.
        m.send_blocks(1, troupe::messaging::Kind::kResult, blocks, data, [](troupe::wire::Writer& w) {
          troupe::wire::save(w, std::uint64_t{123456});
          troupe::wire::save(w, std::uint8_t{1});
        });
      },
      "result with blocks must be a value");
}

TEST(Payload, AMalformedBlocksHeadBreaksTheOwner) {
  if (troupe_test::world_size() < 2) GTEST_SKIP() << "needs a second rank to receive the record";
  inject_and_expect_broken(
      [](troupe::messaging::Messenger& m) {
        m.send_raw(1, static_cast<std::uint16_t>(troupe::messaging::Kind::kBlocks), std::vector<std::byte>(3));
      },
      "bad blocks record");
}
