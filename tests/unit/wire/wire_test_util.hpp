#pragma once
// Helpers shared by the wire tests.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "troupe/wire/serialize.hpp"

namespace wire_test {

inline std::vector<std::byte> le64(std::uint64_t v) {
  std::vector<std::byte> out(8);
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::byte>(v >> (8 * i));
  return out;
}

inline std::vector<std::byte> cat(std::vector<std::byte> a, const std::vector<std::byte>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Every proper prefix of a valid encoding must be rejected. Each prefix gets its own exact-size
// allocation so that AddressSanitizer sees any read past its end.
template <class T>
void expect_every_truncation_fails(const std::vector<std::byte>& bytes) {
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW((void)troupe::wire::deserialize<T>(prefix), troupe::wire::DecodeError)
        << "prefix of " << n << " of " << bytes.size() << " bytes was accepted";
  }
}

// Throws the DecodeError of decoding `bytes` as T and returns its message ("" if none).
template <class T>
std::string decode_error(const std::vector<std::byte>& bytes) {
  try {
    (void)troupe::wire::deserialize<T>(bytes);
  } catch (const troupe::wire::DecodeError& e) {
    return e.what();
  }
  return "";
}

}  // namespace wire_test
