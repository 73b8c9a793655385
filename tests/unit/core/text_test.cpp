// The helpers written once in core (troupe/core/detail/text.hpp, hash.hpp).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <typeinfo>

#include "troupe/core/detail/hash.hpp"
#include "troupe/core/detail/text.hpp"

TEST(CoreText, Hex) {
  EXPECT_EQ(troupe::detail::hex(0), "0x0000000000000000");
  EXPECT_EQ(troupe::detail::hex(0xabcdef0123456789ULL), "0xabcdef0123456789");
}

TEST(CoreText, Demangle) {
  EXPECT_EQ(troupe::detail::demangle(typeid(std::out_of_range).name()), "std::out_of_range");
  EXPECT_EQ(troupe::detail::demangle("not a mangled name"), "not a mangled name");
  EXPECT_EQ(troupe::detail::demangle(nullptr), "(unknown type)");
}

TEST(CoreHash, Fnv1aKnownValuesAndContinuation) {
  EXPECT_EQ(troupe::detail::fnv1a("", 0), 0xcbf29ce484222325ULL);
  EXPECT_EQ(troupe::detail::fnv1a("a", 1), 0xaf63dc4c8601ec8cULL);
  // Hashing in two pieces equals hashing at once (same_binary hashes a file in blocks).
  EXPECT_EQ(troupe::detail::fnv1a("cd", 2, troupe::detail::fnv1a("ab", 2)), troupe::detail::fnv1a("abcd", 4));
}
