#pragma once
// FNV-1a, the one non-cryptographic hash of troupe: executable digests (runtime) and
// callable keys (wire) must agree on every rank, so it is written once.
#include <cstddef>
#include <cstdint>

namespace troupe::detail {

/// FNV-1a 64-bit offset basis: the hash of no bytes.
inline constexpr std::uint64_t kFnv1aOffset = 0xcbf29ce484222325ULL;
/// FNV-1a 64-bit prime.
inline constexpr std::uint64_t kFnv1aPrime = 0x100000001b3ULL;

/// FNV-1a of @p n bytes at @p data, continuing from @p h (kFnv1aOffset to start).
/// Thread-safe, never throws.
inline std::uint64_t fnv1a(const void* data, std::size_t n, std::uint64_t h = kFnv1aOffset) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kFnv1aPrime;
  }
  return h;
}

}  // namespace troupe::detail
