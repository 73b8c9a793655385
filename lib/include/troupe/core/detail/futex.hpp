#pragma once
// Futex-style waiting on a 32-bit atomic with an optional deadline. std::atomic::wait
// has no timed form; every blocking call in troupe needs one.
#include <atomic>
#include <cstdint>

#include "troupe/core/deadline.hpp"

namespace troupe::detail {

/// Blocks while `word == expected`, until woken, a spurious wake-up, or `deadline`.
/// Returns false only when the deadline has passed.
bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, const Deadline& deadline) noexcept;
/// Wakes up to `count` threads blocked in futex_wait on `word` (INT32_MAX: all).
void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept;
/// As futex_wait, for a word in memory mapped by several processes (a node-shared window):
/// the non-PRIVATE futex operation, whose key is the page and offset, not the address space.
/// A word is waited on and woken with the same flavour: a shared wake does not reach a
/// private wait, nor the reverse.
bool futex_wait_shared(std::atomic<std::uint32_t>& word, std::uint32_t expected, const Deadline& deadline) noexcept;
/// As futex_wake, for a word waited on with futex_wait_shared.
void futex_wake_shared(std::atomic<std::uint32_t>& word, int count) noexcept;
/// A CPU relax hint for spin loops.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace troupe::detail
