// Remote callable identity: the id table (order independence, duplicates, digest), and
// encode_call -> decode_and_invoke round trips for every kind of sendable callable.
#include "troupe/wire/callable.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <functional>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using troupe::wire::CallableKey;
using troupe::wire::CallableTable;
using troupe::wire::Reader;
using troupe::wire::Writer;

std::vector<CallableKey> keys_named(const std::vector<std::string>& names) {
  std::vector<CallableKey> keys;
  for (const auto& n : names) {
    keys.push_back(CallableKey{troupe::wire::fnv1a64(n), n, nullptr});
  }
  return keys;
}

// Runs the encoded call the way a receiving rank does and returns the result bytes.
std::vector<std::byte> run(const std::vector<std::byte>& call) {
  Reader in(call);
  Writer out;
  troupe::wire::decode_and_invoke(in, out);
  EXPECT_EQ(in.remaining(), 0U) << "the invoker must consume exactly the call";
  return out.take();
}

template <class R, class F, class... Args>
R call_remote(const F& fn, const Args&... args) {
  Writer w;
  troupe::wire::encode_call(w, fn, args...);
  const auto result = run(w.take());
  return troupe::wire::deserialize<R>(result);
}

}  // namespace

// Functions sent by the tests; external linkage, so their names are unique in the binary.
int twice(int x) { return 2 * x; }
int add3(int a, int b, int c) { return a + b + c; }
int negate_int(int x) { return -x; }
std::string greet(const std::string& who) { return "hello " + who; }
int unregistered_function(int x) { return x + 1; }
int count_calls_counter = 0;
void count_calls(int by) { count_calls_counter += by; }

TROUPE_REGISTER_FUNCTION(negate_int);

struct Scale {
  std::string label;
  std::vector<double> factors;
  TROUPE_FIELDS(label, factors)
  std::string operator()(double x) const {
    double acc = x;
    for (const double f : factors) acc *= f;
    return label + "=" + std::to_string(static_cast<long long>(acc));
  }
};

struct MoveOnlyBox {
  std::vector<int> values;
  MoveOnlyBox() = default;
  MoveOnlyBox(MoveOnlyBox&&) = default;
  MoveOnlyBox& operator=(MoveOnlyBox&&) = default;
  MoveOnlyBox(const MoveOnlyBox&) = delete;
  MoveOnlyBox& operator=(const MoveOnlyBox&) = delete;
  TROUPE_FIELDS(values)
};

struct EmptyFunctor {
  int operator()(int a, int b) const { return a * b; }
};

struct PodFunctor {  // trivially copyable, not default-constructible
  int offset;
  explicit PodFunctor(int o) : offset(o) {}
  int operator()(int x) const { return x + offset; }
};

TEST(WireCallableTable, IdsDoNotDependOnRegistrationOrder) {
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) names.push_back("N6troupe7Invoker" + std::to_string(i * 7919) + "E");
  const CallableTable reference = troupe::wire::build_callable_table(keys_named(names));
  ASSERT_EQ(reference.keys.size(), names.size());
  EXPECT_TRUE(std::is_sorted(reference.keys.begin(), reference.keys.end()));

  std::mt19937 rng(12345);
  for (int round = 0; round < 20; ++round) {
    std::shuffle(names.begin(), names.end(), rng);
    const auto keys = keys_named(names);
    const CallableTable t = troupe::wire::build_callable_table(keys);
    EXPECT_EQ(t.keys, reference.keys);
    EXPECT_EQ(t.digest, reference.digest);
    for (const auto& k : keys) {
      ASSERT_TRUE(t.find(k.key).has_value());
      EXPECT_EQ(*t.find(k.key), *reference.find(k.key)) << k.name;
      EXPECT_EQ(keys[t.order[*t.find(k.key)]].name, k.name);
    }
  }
}

TEST(WireCallableTable, SameTypeRegisteredTwiceIsOneEntry) {
  const auto keys = keys_named({"A", "B", "A"});
  const CallableTable t = troupe::wire::build_callable_table(keys);
  EXPECT_EQ(t.keys.size(), 2U);
  EXPECT_EQ(t.digest, troupe::wire::build_callable_table(keys_named({"B", "A"})).digest);
}

TEST(WireCallableTable, HashCollisionIsAnErrorNamingBothTypes) {
  std::vector<CallableKey> keys{{42, "3Foo", nullptr}, {7, "3Baz", nullptr}, {42, "3Bar", nullptr}};
  try {
    (void)troupe::wire::build_callable_table(keys);
    FAIL() << "expected troupe::Error";
  } catch (const troupe::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("same 64-bit key"), std::string::npos) << what;
    EXPECT_NE(what.find("'Foo'"), std::string::npos) << what;
    EXPECT_NE(what.find("'Bar'"), std::string::npos) << what;
  }
}

TEST(WireCallableTable, DistinctTypesWithTheSameNameAreAnError) {
  // What two lambdas in anonymous namespaces of different files look like: one mangled
  // name, two types.
  std::vector<CallableKey> keys{{42, "N12_GLOBAL__N_13FooE", &typeid(int)},
                                {42, "N12_GLOBAL__N_13FooE", &typeid(long)}};
  try {
    (void)troupe::wire::build_callable_table(keys);
    FAIL() << "expected troupe::Error";
  } catch (const troupe::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("share the mangled name '(anonymous namespace)::Foo'"), std::string::npos) << what;
  }
  keys[1].type = &typeid(int);  // the same type seen twice is fine
  EXPECT_EQ(troupe::wire::build_callable_table(keys).keys.size(), 1U);
}

TEST(WireCallableTable, DigestChangesWhenAKeyIsAdded) {
  const auto base = troupe::wire::build_callable_table(keys_named({"A", "B", "C"}));
  const auto more = troupe::wire::build_callable_table(keys_named({"A", "B", "C", "D"}));
  const auto other = troupe::wire::build_callable_table(keys_named({"A", "B", "E"}));
  const auto none = troupe::wire::build_callable_table(std::vector<CallableKey>{});
  EXPECT_NE(base.digest, more.digest);
  EXPECT_NE(base.digest, other.digest);
  EXPECT_NE(none.digest, 0U);
  EXPECT_TRUE(none.keys.empty());
}

TEST(WireCallableTable, Fnv1aKnownValues) {
  EXPECT_EQ(troupe::wire::fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(troupe::wire::fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
}

TEST(WireCallableRegistry, TableIsFinalizedOnceAndIdsAreDense) {
  troupe::wire::finalize_callable_table();
  troupe::wire::finalize_callable_table();  // idempotent
  const std::size_t n = troupe::wire::callable_table_size();
  EXPECT_GT(n, 5U);
  const auto id = troupe::wire::callable_id<decltype(troupe::remote<&twice>), int>();
  EXPECT_LT(id, n);
  EXPECT_EQ(id, (troupe::wire::callable_id<decltype(troupe::remote<&twice>), const int&>()));
  EXPECT_NE(id, (troupe::wire::callable_id<decltype(troupe::remote<&twice>), long>()));
  EXPECT_NE(troupe::wire::callable_name(id).find("twice"), std::string::npos) << troupe::wire::callable_name(id);
  EXPECT_EQ(troupe::wire::callable_table_digest(), troupe::wire::callable_table_digest());
}

TEST(WireCallableRegistry, FinalizeIsThreadSafe) {
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> digests(8);
  for (std::size_t i = 0; i < digests.size(); ++i) {
    threads.emplace_back([&digests, i] { digests[i] = troupe::wire::callable_table_digest(); });
  }
  for (auto& t : threads) t.join();
  for (const auto d : digests) EXPECT_EQ(d, digests[0]);
}

TEST(WireCallableInvoke, FreeFunctionViaRemoteTemplate) {
  EXPECT_EQ(call_remote<int>(troupe::remote<&twice>, 21), 42);
  EXPECT_EQ(call_remote<int>(TROUPE_REMOTE(add3), 1, 2, 3), 6);
  EXPECT_EQ(call_remote<std::string>(troupe::remote<&greet>, std::string("rank 1")), "hello rank 1");
}

TEST(WireCallableInvoke, RuntimeFunctionPointerWhenRegistered) {
  int (*fn)(int) = &negate_int;  // registered with TROUPE_REGISTER_FUNCTION
  EXPECT_EQ(call_remote<int>(fn, 5), -5);
  EXPECT_EQ(call_remote<int>(negate_int, 6), -6);  // a function name decays to the pointer
  fn = &twice;  // registered because troupe::remote<&twice> is sent somewhere in the binary
  EXPECT_EQ(call_remote<int>(fn, 5), 10);
}

TEST(WireCallableInvoke, UnregisteredOrNullFunctionPointerIsRejectedBeforeWriting) {
  Writer w;
  int (*fn)(int) = &unregistered_function;
  try {
    troupe::wire::encode_call(w, fn, 1);
    FAIL() << "expected troupe::ValueError";
  } catch (const troupe::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("TROUPE_REGISTER_FUNCTION"), std::string::npos) << e.what();
  }
  fn = nullptr;
  EXPECT_THROW(troupe::wire::encode_call(w, fn, 1), troupe::ValueError);
  EXPECT_EQ(w.size(), 0U);
}

TEST(WireCallableInvoke, CaptureLessLambda) {
  EXPECT_EQ(call_remote<int>([](int a, int b) { return a - b; }, 10, 3), 7);
  EXPECT_EQ(call_remote<int>(EmptyFunctor{}, 6, 7), 42);
}

TEST(WireCallableInvoke, LambdaWithTriviallyCopyableCaptures) {
  int k = 3;
  double scale = 0.5;
  const std::array<int, 4> table{1, 10, 100, 1000};
  auto fn = [k, scale, table](int i) { return static_cast<double>(table[static_cast<std::size_t>(i)] * k) * scale; };
  static_assert(std::is_trivially_copyable_v<decltype(fn)>);
  EXPECT_DOUBLE_EQ(call_remote<double>(fn, 2), 150.0);
  EXPECT_EQ(call_remote<int>(PodFunctor(40), 2), 42);
}

TEST(WireCallableInvoke, SerializableFunctorWithStringAndVector) {
  const Scale s{"area", {2.0, 3.0}};
  EXPECT_EQ(call_remote<std::string>(s, 7.0), "area=42");
}

TEST(WireCallableInvoke, VoidResultWritesNothing) {
  count_calls_counter = 0;
  Writer w;
  troupe::wire::encode_call(w, troupe::remote<&count_calls>, 5);
  const auto call = w.take();
  EXPECT_TRUE(run(call).empty());
  EXPECT_TRUE(run(call).empty());
  EXPECT_EQ(count_calls_counter, 10);
  static_assert(std::is_void_v<troupe::wire::call_result_t<decltype(troupe::remote<&count_calls>), int>>);
}

TEST(WireCallableInvoke, MoveOnlyArgumentAndResult) {
  auto fn = [](MoveOnlyBox b) {
    b.values.push_back(static_cast<int>(b.values.size()));
    return b;
  };
  MoveOnlyBox box;
  box.values = {7, 8};
  Writer w;
  troupe::wire::encode_call(w, fn, box);
  const auto result = run(w.take());
  const auto back = troupe::wire::deserialize<MoveOnlyBox>(result);
  EXPECT_EQ(back.values, (std::vector<int>{7, 8, 2}));
}

TEST(WireCallableInvoke, ArgumentsByNonConstReference) {
  auto fn = [](std::vector<int>& v, int x) {
    v.push_back(x);
    return v;
  };
  EXPECT_EQ(call_remote<std::vector<int>>(fn, std::vector<int>{1}, 2), (std::vector<int>{1, 2}));
}

TEST(WireCallableInvoke, ExceptionsFromTheUserFunctionPropagate) {
  Writer w;
  troupe::wire::encode_call(
      w, [](int x) -> int { throw std::out_of_range("index " + std::to_string(x)); }, 9);
  EXPECT_THROW(run(w.take()), std::out_of_range);
}

TEST(WireCallableInvoke, UnknownIdIsAnErrorNamingIdAndTableSize) {
  const std::size_t n = troupe::wire::callable_table_size();
  for (const std::uint32_t id : {static_cast<std::uint32_t>(n), 0xffffffffU}) {
    Writer w;
    w.write(id);
    const auto bytes = w.take();
    Reader in(bytes);
    Writer out;
    try {
      troupe::wire::decode_and_invoke(in, out);
      FAIL() << "expected UnknownCallable";
    } catch (const troupe::wire::UnknownCallable& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("unknown callable id " + std::to_string(id)), std::string::npos) << what;
      EXPECT_NE(what.find("has " + std::to_string(n) + " entries"), std::string::npos) << what;
    }
  }
}

TEST(WireCallableInvoke, FunctionEntryIdIsNotAnInvoker) {
  // The state of a function pointer call is a function id; used as an invoker id it must
  // be refused, and an invoker id used as a function id too.
  int (*fn)(int) = &negate_int;
  Writer w;
  troupe::wire::encode_call(w, fn, 1);
  auto bytes = w.take();
  Reader peek(bytes);
  const auto invoker = peek.read<std::uint32_t>();
  const auto function = peek.read<std::uint32_t>();
  {
    Writer bad;
    bad.write(function);
    const auto b = bad.take();
    Reader in(b);
    Writer out;
    EXPECT_THROW(troupe::wire::decode_and_invoke(in, out), troupe::wire::UnknownCallable);
  }
  {
    Writer bad;
    bad.write(invoker);
    bad.write(invoker);  // not a function id
    bad.write(1);
    const auto b = bad.take();
    Reader in(b);
    Writer out;
    EXPECT_THROW(troupe::wire::decode_and_invoke(in, out), troupe::wire::UnknownCallable);
  }
}

TEST(WireCallableInvoke, TruncatedCallIsADecodeError) {
  Writer w;
  troupe::wire::encode_call(w, Scale{"x", {1.0, 2.0, 3.0}}, 1.5);
  const auto full = w.take();
  ASSERT_EQ(run(full).empty(), false);
  for (std::size_t n = 0; n < full.size(); ++n) {
    const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    Reader in(cut);
    Writer out;
    EXPECT_THROW(troupe::wire::decode_and_invoke(in, out), troupe::wire::DecodeError) << "cut at " << n;
  }
}

TEST(WireCallableInvoke, SendableCallableConcept) {
  static_assert(troupe::wire::SendableCallable<decltype(troupe::remote<&twice>)>);
  static_assert(troupe::wire::SendableCallable<int (*)(int)>);
  static_assert(troupe::wire::SendableCallable<Scale>);
  static_assert(troupe::wire::SendableCallable<PodFunctor>);
  auto holds_string = [s = std::string("x")] { return s; };
  static_assert(!troupe::wire::SendableCallable<decltype(holds_string)>);
  static_assert(!troupe::wire::SendableCallable<std::function<int(int)>>);
  static_assert(!troupe::wire::SendableCallable<int>);
  SUCCEED();
}
