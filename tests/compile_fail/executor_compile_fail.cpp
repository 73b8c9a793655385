// Compile-fail cases of troupe::Executor's task submission: the first error must be the
// library's static_assert, not a missing `type` deep in std::invoke_result. Each
// TROUPE_CF_CASE N >= 1 must fail to compile with the text noted above it; case 0 must
// compile. Nothing here runs: the functions are only compiled.
#include <string>
#include <vector>

#include "troupe/executor/executor.hpp"

#ifndef TROUPE_CF_CASE
#define TROUPE_CF_CASE 0
#endif

namespace {
int twice(int x) { return 2 * x; }
}  // namespace

// Not called: only its instantiations matter.
void submit_calls(troupe::Executor& ex) {
#if TROUPE_CF_CASE == 0
  int k = 3;
  (void)ex.submit(troupe::remote<&twice>, 1);
  (void)ex.submit_to(0, [k](int x) { return k * x; }, 2);
  (void)ex.apply([](const std::string& s) { return s.size(); }, std::string("x"));
#elif TROUPE_CF_CASE == 1
  // expect: "troupe::wire::encode_call: the callable cannot be called with these argument types"
  (void)ex.submit(troupe::remote<&twice>, std::string("not an int"));
#elif TROUPE_CF_CASE == 2
  // expect: "troupe::wire::encode_call: the callable cannot be called with these argument types"
  (void)ex.submit_to(0, [](int x) { return x; }, std::string("not an int"));
#elif TROUPE_CF_CASE == 3
  // expect: "troupe::wire::encode_call: the callable cannot be called with these argument types"
  (void)ex.apply([](const std::string& s) { return s.size(); }, 42);
#elif TROUPE_CF_CASE == 4
  // expect: "troupe::wire::encode_call: the callable cannot be called with these argument types"
  (void)ex.submit([](int a, int b) { return a + b; }, 1);
#elif TROUPE_CF_CASE == 5
  // expect: "troupe::wire::encode_call: this callable holds an address"
  int x = 1;
  (void)ex.submit([&x](int v) { return x + v; }, 1);
#elif TROUPE_CF_CASE == 6
  // expect: "troupe::Executor::map: the function cannot be called with the range's element type"
  std::vector<std::string> words{"a"};
  (void)ex.map([](int x) { return x; }, words);
#endif
}

int main() { return 0; }
