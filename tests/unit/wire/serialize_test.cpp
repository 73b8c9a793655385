// Round trips of every supported type through troupe::wire, including nested combinations,
// empty containers, large vectors, user types with the troupe hook and with Boost.Serialization;
// every proper prefix of each encoding is rejected.
#include <gtest/gtest.h>

#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstring>
#include <memory>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "troupe/wire/boost.hpp"
#include "troupe/wire/serialize.hpp"
#include "wire_test_util.hpp"

namespace wire = troupe::wire;
using wire_test::expect_every_truncation_fails;

namespace user {

enum class Color : std::uint8_t { Red = 1, Green = 2, Blue = 3 };

struct Pod {  // trivially copyable: one memcpy
  int a;
  double b;
  char c[3];
  friend bool operator==(const Pod&, const Pod&) = default;
};

struct Hooked {  // troupe hook through the macro
  std::string name;
  std::vector<double> values;
  std::optional<int> id;
  TROUPE_FIELDS(name, values, id)
  friend bool operator==(const Hooked&, const Hooked&) = default;
};

struct MemberHook {  // troupe hook written out, with a base class and a C array
  std::map<std::string, int> counts;
  int grid[2][2] = {};
  template <class A>
  void troupe_fields(A& a) {
    a(counts, grid);
  }
  friend bool operator==(const MemberHook&, const MemberHook&) = default;
};

struct FreeHook {  // non-intrusive troupe hook found by ADL
  int x = 0;
  std::string s;
  friend bool operator==(const FreeHook&, const FreeHook&) = default;
};
template <class A>
void troupe_fields(A& a, FreeHook& v) {
  a(v.x, v.s);
}

struct TrivialButHooked {  // trivially copyable, but the hook wins: only `kept` is sent
  int kept = 0;
  int skipped = 0;
  TROUPE_FIELDS(kept)
};

struct BoostMember {  // Boost.Serialization member function
  double x = 0;
  std::string label;
  std::vector<int> ids;
  template <class Archive>
  void serialize(Archive& ar, const unsigned /*version*/) {
    ar& x& label& ids;
  }
  friend bool operator==(const BoostMember&, const BoostMember&) = default;
};

struct BoostFree {  // Boost.Serialization free function found by ADL
  std::map<std::string, double> m;
  friend bool operator==(const BoostFree&, const BoostFree&) = default;
};
template <class Archive>
void serialize(Archive& ar, BoostFree& v, const unsigned /*version*/) {
  ar& v.m;
}

struct Empty {
  TROUPE_FIELDS()
  friend bool operator==(const Empty&, const Empty&) = default;
};

struct Throws {  // copying throws, to make a valueless variant
  Throws() = default;
  Throws(const Throws&) { throw std::runtime_error("no copies"); }
  Throws& operator=(const Throws&) = default;
  TROUPE_FIELDS()
};

}  // namespace user

namespace {

template <class T>
T round_trip(const T& v) {
  const auto bytes = wire::serialize(v);
  return wire::deserialize<T>(bytes);
}

// Round trip + every truncation rejected + one trailing byte rejected.
template <class T>
void check(const T& v) {
  const auto bytes = wire::serialize(v);
  EXPECT_EQ(wire::deserialize<T>(bytes), v);
  expect_every_truncation_fails<T>(bytes);
  auto longer = bytes;
  longer.push_back(std::byte{0});
  EXPECT_THROW((void)wire::deserialize<T>(longer), wire::DecodeError);
}

}  // namespace

TEST(WireSerialize, Scalars) {
  check(42);
  check(-1LL);
  check(std::numeric_limits<std::uint64_t>::max());
  check(3.25);
  check(-0.0f);
  check('x');
  check(std::byte{0xab});
  check(user::Color::Blue);
  check(true);
  check(false);
  check(std::complex<double>(1, -2));
  check(std::monostate{});
  EXPECT_EQ(wire::serialize(7).size(), sizeof(int));
  EXPECT_EQ(wire::serialize(true).size(), 1u);
  EXPECT_TRUE(std::isnan(round_trip(std::numeric_limits<double>::quiet_NaN())));
}

TEST(WireSerialize, TriviallyCopyableStructIsOneMemcpy) {
  const user::Pod p{1, 2.5, {'a', '\0', 'c'}};
  check(p);
  EXPECT_EQ(wire::serialize(p).size(), sizeof(user::Pod));
  check(std::array<int, 4>{1, 2, 3, 4});
  EXPECT_EQ(wire::serialize(std::array<int, 4>{}).size(), 4 * sizeof(int));
  check(std::array<user::Pod, 2>{p, p});
  check(std::array<bool, 3>{true, false, true});  // bool elements are checked, not memcpy'd
  check(std::array<std::string, 2>{"a", "bc"});
  check(std::array<int, 0>{});
}

TEST(WireSerialize, Strings) {
  check(std::string{});
  check(std::string("hello"));
  const std::string with_nuls("a\0b\0\0c", 6);
  check(with_nuls);
  EXPECT_EQ(round_trip(with_nuls).size(), 6u);
  check(std::string(1000, 'z'));
  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  EXPECT_EQ(round_trip(big), big);
  check(std::u16string(u"h\u00e9llo"));
  check(std::u32string(U"\U0001F600"));
  EXPECT_EQ(wire::serialize(std::string("abc")).size(), 8u + 3u);
}

TEST(WireSerialize, Vectors) {
  check(std::vector<int>{});
  check(std::vector<int>{1, 2, 3});
  check(std::vector<std::string>{"", "a", std::string("\0x", 2)});
  check(std::vector<std::vector<int>>{{}, {1}, {2, 3}});
  check(std::vector<user::Pod>{{1, 2, {}}, {3, 4, {'x', 'y', 'z'}}});
  check(std::vector<std::optional<int>>{1, std::nullopt, 3});
  check(std::deque<std::string>{"x", "y"});
  check(std::list<int>{5, 6, 7});
  check(std::deque<int>{});
  EXPECT_EQ(wire::serialize(std::vector<double>(10)).size(), 8u + 80u);
}

TEST(WireSerialize, LargeVectorOfDoubles) {
  std::vector<double> v(1'000'000);
  std::iota(v.begin(), v.end(), 0.5);
  const auto bytes = wire::serialize(v);
  EXPECT_EQ(bytes.size(), 8 + v.size() * sizeof(double));
  EXPECT_EQ(wire::deserialize<std::vector<double>>(bytes), v);
}

TEST(WireSerialize, VectorOfBoolIsBitPacked) {
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 65u, 1000u}) {
    std::vector<bool> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = (i * 7 + 3) % 5 < 2;
    check(v);
    EXPECT_EQ(wire::serialize(v).size(), 8 + (n + 7) / 8) << n;
  }
}

TEST(WireSerialize, PairsAndTuples) {
  check(std::pair<int, std::string>{1, "one"});
  check(std::tuple<>{});
  EXPECT_EQ(wire::serialize(std::tuple<>{}).size(), 0u);
  check(std::tuple<int, std::string, double>{1, "two", 3.0});
  check(std::tuple<std::pair<int, int>, std::tuple<bool, std::vector<char>>>{{1, 2}, {true, {'a'}}});
}

TEST(WireSerialize, AssociativeContainers) {
  check(std::map<std::string, int>{});
  check(std::map<std::string, int>{{"a", 1}, {"b", 2}, {"", 0}});
  check(std::multimap<int, std::string>{{1, "x"}, {1, "y"}, {2, "z"}});
  check(std::unordered_map<int, std::string>{{1, "x"}, {2, "y"}, {3, ""}});
  check(std::unordered_multimap<int, int>{{1, 1}, {1, 2}});
  check(std::set<std::string>{"b", "a", "c"});
  check(std::multiset<int>{3, 1, 3});
  check(std::unordered_set<std::string>{"p", "q"});
  check(std::unordered_multiset<int>{4, 4, 5});
  check(std::map<int, std::map<int, std::vector<std::string>>>{{1, {{2, {"x", "y"}}}}, {3, {}}});
}

TEST(WireSerialize, OptionalAndVariant) {
  check(std::optional<int>{});
  check(std::optional<int>{5});
  check(std::optional<std::string>{"s"});
  check(std::optional<std::optional<int>>{std::optional<int>{}});
  using V = std::variant<int, std::string, std::vector<double>, std::monostate, bool>;
  check(V{7});
  check(V{std::string("seven")});
  check(V{std::vector<double>{7.0, 8.0}});
  check(V{std::monostate{}});
  check(V{false});
  EXPECT_EQ(round_trip(V{std::string("x")}).index(), 1u);
  using Same = std::variant<int, int>;  // alternatives told apart by index
  EXPECT_EQ(round_trip(Same{std::in_place_index<1>, 3}).index(), 1u);
}

TEST(WireSerialize, Chrono) {
  using namespace std::chrono_literals;
  check(1500ms);
  check(std::chrono::duration<double>(2.5));
  check(std::chrono::nanoseconds::max());
  const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  check(now);
}

TEST(WireSerialize, DeeplyNested) {
  using T = std::map<std::string,
                     std::vector<std::optional<std::variant<int, std::string, std::pair<double, std::set<int>>>>>>;
  T v;
  v["a"] = {1, std::nullopt, std::string("x"), std::pair<double, std::set<int>>{1.5, {1, 2}}};
  v["b"] = {};
  v[""] = {std::nullopt};
  check(v);
}

TEST(WireSerialize, TroupeHookTypes) {
  check(user::Hooked{"h", {1.0, 2.0}, 3});
  check(user::Hooked{});
  user::MemberHook m;
  m.counts = {{"x", 1}};
  m.grid[1][0] = 5;
  check(m);
  check(user::FreeHook{4, "four"});
  check(std::vector<user::Hooked>{{"a", {}, {}}, {"b", {1}, 2}});
  check(std::map<std::string, user::FreeHook>{{"k", {1, "v"}}});
  check(user::Empty{});
  check(std::vector<user::Empty>(5));

  const user::TrivialButHooked t{1, 2};
  EXPECT_EQ(wire::serialize(t).size(), sizeof(int));
  const auto back = round_trip(t);
  EXPECT_EQ(back.kept, 1);
  EXPECT_EQ(back.skipped, 0);
}

TEST(WireSerialize, BoostUserTypes) {
  check(user::BoostMember{1.5, "label", {1, 2, 3}});
  check(user::BoostMember{});
  check(user::BoostFree{{{"pi", 3.14}, {"e", 2.72}}});
  check(std::vector<user::BoostMember>{{1, "a", {}}, {2, "b", {7}}});
  check(std::map<std::string, user::BoostFree>{{"x", {{{"y", 1.0}}}}});
  check(std::optional<user::BoostMember>{user::BoostMember{3, "c", {4}}});
}

TEST(WireSerialize, WriterAndReader) {
  wire::Writer w;
  w.write(1);
  w.write(std::string("two"));
  w.write(std::vector<double>{3.0});
  const auto bytes = w.take();
  EXPECT_EQ(w.size(), 0u);
  wire::Reader r(bytes);
  EXPECT_EQ(r.read<int>(), 1);
  EXPECT_EQ(r.read<std::string>(), "two");
  EXPECT_EQ(r.offset(), sizeof(int) + 8 + 3);
  EXPECT_EQ(r.read<std::vector<double>>(), std::vector<double>{3.0});
  EXPECT_EQ(r.remaining(), 0u);
  EXPECT_THROW((void)r.read<int>(), wire::DecodeError);

  const std::vector<std::byte> raw{std::byte{1}, std::byte{2}, std::byte{3}};
  wire::Reader v(raw);
  const auto view = v.read_view(2);
  EXPECT_EQ(view.data(), raw.data());  // zero copy
  EXPECT_EQ(view.size(), 2u);
  EXPECT_THROW((void)v.read_view(2), wire::DecodeError);
  EXPECT_EQ(v.offset(), 2u);  // a failed read does not move the cursor
  std::byte b{};
  v.read_bytes(&b, 1);
  EXPECT_EQ(b, std::byte{3});
}

TEST(WireSerialize, ValuelessVariantCannotBeSent) {
  std::variant<int, user::Throws> v;
  try {
    v = user::Throws{};  // copy constructor throws mid-emplace: v becomes valueless
  } catch (const std::runtime_error&) {
  }
  if (v.valueless_by_exception()) {
    EXPECT_THROW((void)wire::serialize(v), troupe::ValueError);
  }
}

TEST(WireSerialize, SerializableConcept) {
  static_assert(wire::Serializable<int>);
  static_assert(wire::Serializable<std::vector<std::map<std::string, std::optional<user::Pod>>>>);
  static_assert(wire::Serializable<user::Hooked>);
  static_assert(wire::Serializable<user::BoostMember>);
  static_assert(wire::Serializable<const std::string>);
  static_assert(!wire::Serializable<void>);
  static_assert(!wire::Serializable<int*>);
  static_assert(!wire::Serializable<const char*>);
  static_assert(!wire::Serializable<int&>);
  static_assert(!wire::Serializable<void (*)()>);
  static_assert(!wire::Serializable<int user::Pod::*>);
  static_assert(!wire::Serializable<std::string_view>);
  static_assert(!wire::Serializable<std::span<int>>);
  static_assert(!wire::Serializable<std::reference_wrapper<int>>);
  static_assert(!wire::Serializable<std::unique_ptr<int>>);
  static_assert(!wire::Serializable<std::shared_ptr<int>>);
  static_assert(!wire::Serializable<std::function<void()>>);
  static_assert(!wire::Serializable<std::vector<int*>>);
  static_assert(!wire::Serializable<std::map<int, std::unique_ptr<int>>>);
  static_assert(!wire::Serializable<std::tuple<int, std::string_view>>);
  static_assert(!wire::Serializable<std::optional<std::reference_wrapper<int>>>);
  static_assert(!wire::Serializable<std::array<int*, 2>>);
  static_assert(!wire::Serializable<std::atomic<int>>);
  struct HoldsAtomic {
    std::atomic<int> x;
  };
  static_assert(!wire::Serializable<HoldsAtomic>);
  SUCCEED();
}

// The trivially copyable path must be a memcpy: a 1M-element vector<double> serializes within a
// small factor of "allocate 8 MB and memcpy into it" (best of several runs, so that a busy
// machine does not make it flaky). Sanitizer builds skip the comparison.
TEST(WirePerformance, VectorOfDoublesAtMemcpySpeed) {
  std::vector<double> v(1'000'000);
  std::iota(v.begin(), v.end(), 1.0);
  volatile unsigned sink = 0;
  const auto best_of = [](auto&& body) {
    double best = 1e9;
    for (int i = 0; i < 9; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      body();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const std::size_t n = 8 + v.size() * sizeof(double);
  const double t_memcpy = best_of([&] {
    std::unique_ptr<std::byte[]> out(new std::byte[n]);
    std::memcpy(out.get() + 8, v.data(), v.size() * sizeof(double));
    sink = sink + std::to_integer<unsigned>(out[n / 2]);
  });
  const double t_save = best_of([&] {
    const auto bytes = wire::serialize(v);
    sink = sink + std::to_integer<unsigned>(bytes[n / 2]);
  });
  const auto bytes = wire::serialize(v);
  const double t_load = best_of([&] {
    const auto back = wire::deserialize<std::vector<double>>(bytes);
    sink = sink + static_cast<unsigned>(back[back.size() / 2]);
  });
  std::printf("1M doubles: alloc+memcpy %.2f ms, serialize %.2f ms, deserialize %.2f ms\n", t_memcpy * 1e3,
              t_save * 1e3, t_load * 1e3);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "timings are meaningless under sanitizers";
#else
  EXPECT_LT(t_save, 3 * t_memcpy + 1e-3);
  EXPECT_LT(t_load, 4 * t_memcpy + 2e-3);
#endif
}
