#pragma once
/// @file
/// @brief Internal byte helpers of the wire layer: fixed little-endian integers, compile-time
/// type names for error messages, and the out-of-line (cold) DecodeError throwers.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace troupe::wire::detail {

/// Writes the low sizeof(U) bytes of @p v to @p p, least significant first (any host order).
template <class U>
inline void store_le(std::byte* p, U v) noexcept {
  static_assert(std::is_unsigned_v<U>);
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    p[i] = static_cast<std::byte>(static_cast<std::uint64_t>(v) >> (8 * i));
  }
}

/// Reads a little-endian U from @p p (compilers fold the loop into one load on little-endian hosts).
template <class U>
inline U load_le(const std::byte* p) noexcept {
  static_assert(std::is_unsigned_v<U>);
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  }
  return static_cast<U>(v);
}

/// The spelling of T as the compiler prints it ("std::vector<int>"), for error messages only.
template <class T>
constexpr std::string_view type_name() noexcept {
#if defined(__clang__) || defined(__GNUC__)
  constexpr std::string_view f = __PRETTY_FUNCTION__;
  constexpr std::size_t key = f.find("T = ");
  if constexpr (key == std::string_view::npos) {
    return "<type>";
  } else {
    constexpr std::size_t start = key + 4;
    constexpr std::size_t semi = f.find(';', start);
    constexpr std::size_t end = semi != std::string_view::npos ? semi : f.size() - 1;  // clang: "...]"
    return f.substr(start, end - start);
  }
#else
  return "<type>";
#endif
}

// Cold paths live in lib/src/wire/serialize.cpp so that the inline decoders stay small.
[[noreturn]] void throw_truncated(std::string_view what, std::size_t needed, std::size_t offset, std::size_t remaining);
[[noreturn]] void throw_bad_count(std::string_view what, std::uint64_t count, std::size_t min_element_size,
                                  std::size_t offset, std::size_t remaining);
[[noreturn]] void throw_bad_value(std::string_view what, std::uint64_t value, std::size_t offset,
                                  std::string_view expected);
[[noreturn]] void throw_duplicate_key(std::string_view what, std::uint64_t index, std::size_t offset);
[[noreturn]] void throw_trailing(std::string_view what, std::size_t consumed, std::size_t total);
[[noreturn]] void throw_too_many_empty(std::string_view what, std::uint64_t count, std::size_t offset);
[[noreturn]] void throw_valueless_variant(std::string_view what);
[[noreturn]] void throw_bad_block(std::string_view what, std::size_t bytes, std::size_t index, std::uint64_t announced,
                                  std::size_t count);
[[noreturn]] void throw_boost_failure(std::string_view what, std::size_t offset, const char* reason);

}  // namespace troupe::wire::detail
