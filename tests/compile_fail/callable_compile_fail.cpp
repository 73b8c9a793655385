// Compile-fail cases of troupe/wire/callable.hpp and troupe/wire/exception.hpp: each
// TROUPE_CF_CASE N >= 1 must fail to compile with the static_assert text noted above it;
// case 0 must compile (it proves that the failures come from the checks, not the harness).
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "troupe/wire/callable.hpp"
#include "troupe/wire/exception.hpp"

#ifndef TROUPE_CF_CASE
#define TROUPE_CF_CASE 0
#endif

namespace {
int twice(int x) { return 2 * x; }
struct Widget {
  int get() const { return 1; }
};
struct NoMessageCtor : std::exception {};
// A member function that sends a lambda capturing `this` (case 13) or a copy of *this (case 0).
struct Model {
  int base = 1;
#if TROUPE_CF_CASE == 13
  void send_this(troupe::wire::Writer& w) const {
    troupe::wire::encode_call(w, [this](int x) { return base + x; }, 1);
  }
#endif
  void send_copy(troupe::wire::Writer& w) const {
    troupe::wire::encode_call(w, [*this](int x) { return base + x; }, 1);
  }
};
}  // namespace

int main() {
  troupe::wire::Writer w;
#if TROUPE_CF_CASE == 0
  // Sendable: remote<&f>, a trivially copyable capture, a serializable argument.
  int k = 3;
  troupe::wire::encode_call(w, troupe::remote<&twice>, 1);
  troupe::wire::encode_call(w, [k](int x) { return k * x; }, 2);
  troupe::wire::encode_call(w, [](const std::string& s) { return s.size(); }, std::string("x"));
  troupe::register_exception<std::runtime_error>();
  // Captures by value that hold no address: [=], several values, a copy of *this.
  double scale = 0.5;
  troupe::wire::encode_call(w, [=](int x) { return scale * k * x; }, 3);
  Model{}.send_copy(w);
#elif TROUPE_CF_CASE == 1
  // expect: "troupe::wire::encode_call: this callable cannot be sent to another rank"
  auto p = std::make_unique<int>(1);
  troupe::wire::encode_call(w, [p = std::move(p)](int x) { return *p + x; }, 1);
#elif TROUPE_CF_CASE == 2
  // expect: "troupe::wire::encode_call: this callable cannot be sent to another rank"
  troupe::wire::encode_call(w, [m = std::mutex{}](int x) { return x; }, 1);
#elif TROUPE_CF_CASE == 3
  // expect: "troupe::wire::encode_call: this callable cannot be sent to another rank"
  const std::string name = "x";
  troupe::wire::encode_call(w, [name](int x) { return name.size() + static_cast<std::size_t>(x); }, 1);
#elif TROUPE_CF_CASE == 4
  // expect: "troupe::wire::encode_call: this callable cannot be sent to another rank"
  const std::function<int(int)> fn = twice;
  troupe::wire::encode_call(w, fn, 1);
#elif TROUPE_CF_CASE == 5
  // expect: "troupe::wire::encode_call: a pointer to member cannot be sent"
  troupe::wire::encode_call(w, &Widget::get, Widget{});
#elif TROUPE_CF_CASE == 6
  // expect: "troupe::wire::encode_call: every argument type must be wire-Serializable"
  int value = 0;
  troupe::wire::encode_call(w, [](int* p) { return *p; }, &value);
#elif TROUPE_CF_CASE == 7
  // expect: "troupe::wire::encode_call: the callable's result type must be wire-Serializable"
  troupe::wire::encode_call(w, [](int x) { return std::make_unique<int>(x); }, 1);
#elif TROUPE_CF_CASE == 8
  // expect: "troupe::wire::encode_call: the callable cannot be called with these argument types"
  troupe::wire::encode_call(w, troupe::remote<&twice>, std::string("not an int"));
#elif TROUPE_CF_CASE == 9
  // expect: "troupe::remote<Fn>: Fn must be a pointer to a free or static member function"
  troupe::wire::encode_call(w, troupe::remote<42>, 1);
#elif TROUPE_CF_CASE == 10
  // expect: "troupe::register_exception<E>: E must be constructible from a std::string"
  troupe::register_exception<NoMessageCtor>();
#elif TROUPE_CF_CASE == 11
  // expect: "troupe::wire::encode_call: this callable holds an address"
  int x = 1;
  troupe::wire::encode_call(w, [&x](int v) { return x + v; }, 1);
#elif TROUPE_CF_CASE == 12
  // expect: "troupe::wire::encode_call: this callable holds an address"
  int x = 1;
  troupe::wire::encode_call(w, [&](int v) { return x + v; }, 1);
#elif TROUPE_CF_CASE == 13
  // expect: "troupe::wire::encode_call: this callable holds an address"
  Model{}.send_this(w);
#elif TROUPE_CF_CASE == 14
  // expect: "troupe::wire::encode_call: this callable holds an address"
  int x = 1;
  troupe::wire::encode_call(w, [p = &x](int v) { return *p + v; }, 1);
#elif TROUPE_CF_CASE == 15
  // expect: "troupe::wire::encode_call: this callable holds an address"
  const std::string_view name = "abc";
  troupe::wire::encode_call(w, [name](int v) { return name.size() + static_cast<std::size_t>(v); }, 1);
#elif TROUPE_CF_CASE == 16
  // expect: "troupe::wire::encode_call: this callable holds an address"
  troupe::wire::encode_call(w, [fn = &twice](int v) { return fn(v); }, 1);
#elif TROUPE_CF_CASE == 17
  // expect: "troupe::wire::encode_call: this callable holds an address"
  int data[2] = {1, 2};
  troupe::wire::encode_call(w, [s = std::span<int>(data)](int v) { return s[0] + v; }, 1);
#elif TROUPE_CF_CASE == 18
  // expect: "troupe::wire::encode_call: this callable holds an address"
  // (a false rejection: a union, here inside std::optional, looks like a pointer to C++)
  const std::optional<int> maybe = 1;
  troupe::wire::encode_call(w, [maybe](int v) { return maybe.value_or(0) + v; }, 1);
#endif
  return static_cast<int>(w.size() == 0);
}
