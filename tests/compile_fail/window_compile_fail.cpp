// Compile-fail cases of the windows and the Dict: element types that cannot live in a window,
// atomics on a non-arithmetic element, an update function that is not sendable. Each
// TROUPE_CF_CASE N >= 1 must fail to compile with the text noted above it; case 0 must
// compile. Nothing here runs: the functions are only compiled.
#include <cstdint>
#include <string>

#include "troupe/across/dict.hpp"
#include "troupe/window/global_array.hpp"
#include "troupe/window/shared.hpp"

#ifndef TROUPE_CF_CASE
#define TROUPE_CF_CASE 0
#endif

namespace {
struct Pair {
  int a;
  double b;
};
}  // namespace

// Not called: only its instantiations matter.
void window_calls() {
#if TROUPE_CF_CASE == 0
  troupe::GlobalArray<std::int64_t> g(8);
  (void)g.fetch_add(0, 1);
  troupe::GlobalArray<Pair> p(8);
  (void)p.get(0);
  troupe::SharedArray<double> s(8);
  (void)s.fetch_add(0, 1.0);
  troupe::Dict<std::string, long> d(troupe::Scope::Ranks);
  (void)d.update("k", [](long n) { return n + 1; });
#elif TROUPE_CF_CASE == 1
  // expect: "troupe::GlobalArray<T>: T must be trivially copyable"
  troupe::GlobalArray<std::string> g(8);
#elif TROUPE_CF_CASE == 2
  // expect: "troupe::SharedArray<T> / SharedValue<T>: T must be trivially copyable"
  troupe::SharedArray<std::string> s(8);
#elif TROUPE_CF_CASE == 3
  // expect: "troupe::GlobalArray<T>::fetch_add needs an arithmetic T"
  troupe::GlobalArray<Pair> g(8);
  (void)g.fetch_add(0, Pair{1, 2.0});
#elif TROUPE_CF_CASE == 4
  // expect: "troupe::Dict::update: fn must be a sendable callable"
  long base = 1;
  troupe::Dict<std::string, long> d(troupe::Scope::Ranks);
  (void)d.update("k", [&base](long n) { return n + base; });
#endif
}
int main() { return 0; }
