// The capture-by-reference hole of remote callables (troupe/wire/callable.hpp): which closure
// shapes C++ rejects at compile time, which the run-time scan of a closure's bytes catches
// at encode time, and that the shapes still accepted round-trip.
// docs/remote-callables.md ("Closures that hold an address") has the measured table.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <latch>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <typeinfo>

#include "troupe/core/detail/text.hpp"
#include "troupe/core/error.hpp"
#include "troupe/wire/callable.hpp"

// The closures capture constants on purpose (what a capture of each kind puts in the closure
// is what these tests check); clang calls such a capture unneeded (-Wunused-lambda-capture).
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunused-lambda-capture"
#endif

namespace {

using troupe::wire::Reader;
using troupe::wire::SendableCallable;
using troupe::wire::Writer;

template <class R, class F, class... Args>
R call_remote(const F& fn, const Args&... args) {
  Writer w;
  troupe::wire::encode_call(w, fn, args...);
  const auto call = w.take();
  Reader in(call);
  Writer out;
  troupe::wire::decode_and_invoke(in, out);
  EXPECT_EQ(in.remaining(), 0U);
  return troupe::wire::deserialize<R>(out.take());
}

// what() of the ValueError that encoding fn raises ("" if none), and that nothing was written.
template <class F>
std::string encode_error(const F& fn) {
  Writer w;
  w.write(std::uint32_t{7});  // something before: an all-or-nothing encode keeps it
  try {
    troupe::wire::encode_call(w, fn, 1);
  } catch (const troupe::ValueError& e) {
    EXPECT_EQ(w.size(), sizeof(std::uint32_t)) << "a rejected call must write nothing";
    return e.what();
  }
  return "";
}

template <class F>
std::string name_of(const F&) {
  return troupe::detail::demangle(typeid(F).name());
}

int plus_one(int x) { return x + 1; }
int g_counter = 5;

struct Point {
  int x;
  double y;
};
enum class Mode { Fast, Exact };

struct Model {
  int base = 10;
  auto by_pointer() const {
    return [this](int v) { return base + v; };
  }
  auto by_copy() const {
    return [*this](int v) { return base + v; };
  }
};

// Default-constructible aggregates: the serializer would copy them bitwise, so they get the
// same checks as a closure's bytes.
struct FunctionHolder {
  int (*fn)(int) = nullptr;
  int operator()(int v) const { return fn(v); }
};
struct Offset {
  int k = 0;
  int operator()(int v) const { return v + k; }
};

// A trivially copyable functor that is not a literal type (a non-constexpr constructor):
// C++ cannot probe it at compile time, so its pointer is left to the run-time scan.
struct NonLiteralWithPointer {
  explicit NonLiteralWithPointer(const int* p) : p_(p) {}
  int operator()(int v) const { return *p_ + v; }
  const int* p_;
};

}  // namespace

// ---- compile time: what the type system tells -------------------------------------------

TEST(WireClosureCapture, ShapesThatHoldAnAddressAreNotSendable) {
  int x = 1;
  int* px = &x;
  const std::string_view sv = "ab";
  int data[2] = {1, 2};
  const std::optional<int> maybe = 3;
  auto by_ref = [&x](int v) { return x + v; };
  auto by_ref_default = [&](int v) { return x + v; };
  auto pointer = [p = &x](int v) { return *p + v; };
  auto pointer_var = [px](int v) { return *px + v; };
  auto view = [sv](int v) { return static_cast<int>(sv.size()) + v; };
  auto span = [s = std::span<int>(data)](int v) { return s[0] + v; };
  auto function_pointer = [f = &plus_one](int v) { return f(v); };
  auto optional = [maybe](int v) { return maybe.value_or(0) + v; };  // a false rejection: a union
  auto ref_and_value = [&x, y = 2.0](int v) { return x + y + v; };
  static_assert(!SendableCallable<decltype(by_ref)>);
  static_assert(!SendableCallable<decltype(by_ref_default)>);
  static_assert(!SendableCallable<decltype(Model{}.by_pointer())>);
  static_assert(!SendableCallable<decltype(pointer)>);
  static_assert(!SendableCallable<decltype(pointer_var)>);
  static_assert(!SendableCallable<decltype(view)>);
  static_assert(!SendableCallable<decltype(span)>);
  static_assert(!SendableCallable<decltype(function_pointer)>);
  static_assert(!SendableCallable<decltype(optional)>);
  static_assert(!SendableCallable<decltype(ref_and_value)>);
  static_assert(!SendableCallable<FunctionHolder>);  // e.g. the executor's map runner over &f
  SUCCEED();
}

// ---- accepted shapes still travel ---------------------------------------------------------

TEST(WireClosureCapture, ValueCapturesStillRoundTrip) {
  const int k = 3;
  const double d = 0.5;
  const Point pt{4, 1.5};
  const std::array<int, 4> table{1, 10, 100, 1000};
  const int raw[3] = {7, 8, 9};
  const Mode mode = Mode::Exact;
  const std::chrono::milliseconds ms{250};
  const bool flag = true;
  const std::int64_t big = 1'000'000'000'000;  // 10^12: a count, not an address
  const int a = 3;
  const int b = 1000;  // [a, b] share one 8-byte word: 0x000003e800000003
  auto inner = [k](int v) { return k * v; };

  EXPECT_EQ(call_remote<int>([](int v) { return v + 1; }, 1), 2);
  EXPECT_EQ(call_remote<int>([k](int v) { return k * v; }, 2), 6);
  EXPECT_DOUBLE_EQ(call_remote<double>([d](int v) { return d * v; }, 4), 2.0);
  EXPECT_DOUBLE_EQ(call_remote<double>([pt](int v) { return pt.x * pt.y + v; }, 1), 7.0);
  EXPECT_EQ(call_remote<int>([table](int i) { return table[static_cast<std::size_t>(i)]; }, 3), 1000);
  EXPECT_EQ(call_remote<int>([raw](int i) { return raw[i]; }, 2), 9);
  EXPECT_EQ(call_remote<int>([mode](int v) { return mode == Mode::Exact ? v : 0; }, 5), 5);
  EXPECT_EQ(call_remote<long long>([ms](int v) { return ms.count() + v; }, 1), 251);
  EXPECT_EQ(call_remote<int>([flag](int v) { return flag ? v : -v; }, 8), 8);
  EXPECT_EQ(call_remote<std::int64_t>([big](int v) { return big + v; }, 1), 1'000'000'000'001);
  EXPECT_EQ(call_remote<int>([a, b](int v) { return a * b + v; }, 1), 3001);
  EXPECT_EQ(call_remote<int>([=](int v) { return k + a + v; }, 1), 7);
  EXPECT_EQ(call_remote<int>(Model{}.by_copy(), 1), 11);
  EXPECT_EQ(call_remote<int>([inner](int v) { return inner(v); }, 4), 12);
  EXPECT_EQ(call_remote<bool>([less = std::less<>{}, k](int v) { return less(v, k); }, 1), true);
  EXPECT_EQ(call_remote<int>([&](int v) { return g_counter + v; }, 1), 6);  // a global is not captured
  EXPECT_EQ(call_remote<int>(troupe::remote<&plus_one>, 1), 2);
  EXPECT_EQ(call_remote<int>(Offset{40}, 2), 42);
}

// ---- run time: an address kept where C++ cannot see it ------------------------------------

// Where a local variable lives: the thread's stack, except under AddressSanitizer, whose
// fake stacks (use-after-return detection) put locals in memory of their own.
#if defined(__SANITIZE_ADDRESS__)
constexpr const char* kLocalsLiveIn = "this process's memory";
#else
constexpr const char* kLocalsLiveIn = "the sending thread's stack";
#endif

TEST(WireClosureCapture, StackAddressAsIntegerIsAnErrorNamingTheCallable) {
  int local = 1;
  auto fn = [address = reinterpret_cast<std::uintptr_t>(&local)](int v) {
    return *reinterpret_cast<const int*>(address) + v;
  };
  static_assert(SendableCallable<decltype(fn)>, "an integer is all C++ sees");
  const std::string what = encode_error(fn);
  EXPECT_EQ(what.rfind("troupe::wire::encode_call: the callable '" + name_of(fn) + "' (8 bytes, sent as raw bytes)", 0),
            0U)
      << what;
  EXPECT_NE(what.find("holds at byte 0 the value " + troupe::detail::hex(reinterpret_cast<std::uintptr_t>(&local)) +
                      ", an address in " + kLocalsLiveIn),
            std::string::npos)
      << what;
  EXPECT_NE(what.find("capture the value itself, or pass the data as an argument"), std::string::npos) << what;
}

TEST(WireClosureCapture, HeapStaticAndCodeAddressesAsIntegersAreErrors) {
  const auto heap = std::make_unique<int>(1);
  const std::uintptr_t addresses[] = {
      reinterpret_cast<std::uintptr_t>(heap.get()),
      reinterpret_cast<std::uintptr_t>(&g_counter),
      reinterpret_cast<std::uintptr_t>(&plus_one),
  };
  for (const std::uintptr_t address : addresses) {
    const int k = 4;  // the address is the second word: the whole state is scanned
    auto fn = [k, address](int v) { return k + v + static_cast<int>(address & 1U); };
    const std::string what = encode_error(fn);
    // Built with append: g++ 12 at -O3 warns falsely (-Wrestrict) on "'" + std::string.
    std::string expected = name_of(fn);
    expected.insert(0, 1, '\'');
    expected.append("' (16 bytes, sent as raw bytes) holds at byte 8 the value ")
        .append(troupe::detail::hex(address))
        .append(", an address in this process's memory");
    EXPECT_NE(what.find(expected), std::string::npos) << what;
  }
}

// Padding is not state: a closure capturing {int, double} whose padding holds the upper half
// of a live heap address (as an old stack slot may) encodes, and round-trips.
TEST(WireClosureCapture, GarbageInPaddingIsNotTakenForAnAddress) {
#if defined(__has_builtin)
#if !__has_builtin(__builtin_clear_padding)
  GTEST_SKIP() << "this compiler cannot clear padding (clang 14): the scan sees it, docs/remote-callables.md";
#endif
#endif
  struct Padded {
    int count;  // 4 bytes of padding follow
    double scale;
  };
  static_assert(sizeof(Padded) == 16);
  const auto heap = std::make_unique<long>(1);
  const auto address = reinterpret_cast<std::uintptr_t>(heap.get());
  const Padded p{static_cast<int>(address & 0xffffffffU), 2.0};
  auto fn = [p](int v) { return static_cast<double>(p.count & 1) + p.scale * v; };
  static_assert(sizeof(fn) == 16);
  // The closure's first word is count and the padding: make it the heap address.
  const auto upper = static_cast<std::uint32_t>(address >> 32);
  std::memcpy(reinterpret_cast<unsigned char*>(&fn) + 4, &upper, sizeof upper);
  std::uintptr_t word = 0;
  std::memcpy(&word, &fn, sizeof word);
  ASSERT_EQ(word, address) << "the closure's first word must now read as the heap address";
  EXPECT_EQ(encode_error(fn), "");
  EXPECT_EQ(call_remote<double>(fn, 3), static_cast<double>(address & 1U) + 6.0);
}

TEST(WireClosureCapture, AnotherThreadsStackIsCaughtToo) {
  // The executor may encode on its progress thread: the submitting thread's stack is then
  // "this process's memory", not the encoding thread's own stack.
  std::uintptr_t address = 0;
  std::latch taken(1);
  std::latch done(1);
  std::jthread owner([&] {
    int on_that_stack = 1;
    address = reinterpret_cast<std::uintptr_t>(&on_that_stack);
    taken.count_down();
    done.wait();  // keeps the frame (and the page) alive until the check ran
  });
  taken.wait();
  auto fn = [address](int v) { return v + static_cast<int>(address & 1U); };
  const std::string what = encode_error(fn);
  done.count_down();
  EXPECT_NE(what.find("an address in this process's memory"), std::string::npos) << what;
}

TEST(WireClosureCapture, NonLiteralFunctorWithAPointerIsCaughtAtRunTime) {
  const int x = 1;
  static_assert(SendableCallable<NonLiteralWithPointer>, "C++ cannot probe a non-literal type");
  const std::string what = encode_error(NonLiteralWithPointer(&x));
  std::string quoted = name_of(NonLiteralWithPointer(&x));
  quoted.insert(0, 1, '\'');
  quoted.push_back('\'');
  EXPECT_NE(what.find(quoted), std::string::npos) << what;
  EXPECT_NE(what.find(kLocalsLiveIn), std::string::npos) << what;
}

TEST(WireClosureCapture, NumbersThatAreNotAddressesPass) {
  // Below 64 KiB, above the 47-bit user half, or unmapped: never an address of this process.
  for (const std::uint64_t value : {std::uint64_t{0}, std::uint64_t{65535}, std::uint64_t{1} << 40,
                                    std::uint64_t{0xffff'ffff'ffff'ffff}, std::uint64_t{1} << 47}) {
    auto fn = [value](int v) { return static_cast<std::uint64_t>(v) + value; };
    EXPECT_EQ(encode_error(fn), "") << value;
  }
  EXPECT_DOUBLE_EQ(call_remote<double>([d = -2.5e-300](int v) { return d * v; }, 2), -5e-300);
}
