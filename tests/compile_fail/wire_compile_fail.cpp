// Types that troupe::wire must refuse at compile time. Built once per case with
// -DTROUPE_CF_CASE=<n> by tests/compile_fail/CMakeLists.txt; case 0 must compile.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/wire/serialize.hpp"

namespace wire = troupe::wire;

struct HoldsUniquePtr {  // not trivially copyable, no hook: nothing to go by
  std::unique_ptr<int> p;
};

struct HookedPointer {  // a hook is no loophole: each field is checked
  int* p = nullptr;
  TROUPE_FIELDS(p)
};

struct BoostOnly {  // Boost.Serialization type, but troupe/wire/boost.hpp is not included
  int x = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned) {
    ar & x;
  }
};

int square(int x) { return x * x; }

int main() {
  int value = 1;
  (void)value;
#if TROUPE_CF_CASE == 0
  auto bytes = wire::serialize(std::vector<std::string>{"fine"});
  return static_cast<int>(wire::deserialize<std::vector<std::string>>(bytes).size()) - 1;
#elif TROUPE_CF_CASE == 1
  (void)wire::serialize(&value);
#elif TROUPE_CF_CASE == 2
  (void)wire::serialize(HoldsUniquePtr{});
#elif TROUPE_CF_CASE == 3
  (void)wire::serialize(std::ref(value));
#elif TROUPE_CF_CASE == 4
  (void)wire::serialize<int&>(value);
#elif TROUPE_CF_CASE == 5
  (void)wire::serialize(std::vector<const char*>{"a"});
#elif TROUPE_CF_CASE == 6
  (void)wire::serialize(std::string_view("text"));
#elif TROUPE_CF_CASE == 7
  (void)wire::serialize(&square);
#elif TROUPE_CF_CASE == 8
  (void)wire::serialize(std::make_shared<int>(1));
#elif TROUPE_CF_CASE == 9
  (void)wire::deserialize<int*>(std::span<const std::byte>{});
#elif TROUPE_CF_CASE == 10
  (void)wire::serialize(HookedPointer{});
#elif TROUPE_CF_CASE == 11
  (void)wire::serialize(BoostOnly{});
#elif TROUPE_CF_CASE == 12
  (void)wire::serialize(std::vector<std::atomic<int>>(2));
#else
#error "unknown TROUPE_CF_CASE"
#endif
  return 0;
}
