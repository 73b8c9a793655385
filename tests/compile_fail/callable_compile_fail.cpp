// Compile-fail cases of troupe/wire/callable.hpp and troupe/wire/exception.hpp: each
// TROUPE_CF_CASE N >= 1 must fail to compile with the static_assert text noted above it;
// case 0 must compile (it proves that the failures come from the checks, not the harness).
#include <functional>
#include <memory>
#include <mutex>
#include <string>

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
#endif
  return static_cast<int>(w.size() == 0);
}
