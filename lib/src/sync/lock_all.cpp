#include "troupe/sync/lock_all.hpp"

#include <algorithm>
#include <functional>
#include <string>

namespace troupe::detail {

namespace {
// One global order: increasing address (std::less gives a total order on pointers).
void sort_and_check(LockEntry* entries, std::size_t n, const char* api) {
  std::sort(entries, entries + n,
            [](const LockEntry& a, const LockEntry& b) { return std::less<void*>{}(a.object, b.object); });
  for (std::size_t i = 1; i < n; ++i) {
    if (entries[i].object == entries[i - 1].object) {
      throw ValueError(std::string(api) +
                       ": the same lock was passed more than once (locking it twice would deadlock)");
    }
  }
}
}  // namespace

void unlock_entries(LockEntry* entries, std::size_t n) noexcept {
  for (std::size_t i = n; i-- > 0;) entries[i].unlock(entries[i].object);
}

void lock_entries(LockEntry* entries, std::size_t n) {
  sort_and_check(entries, n, "lock_all");
  std::size_t taken = 0;
  try {
    for (; taken < n; ++taken) entries[taken].lock(entries[taken].object);
  } catch (...) {
    unlock_entries(entries, taken);
    throw;
  }
}

bool try_lock_entries_until(LockEntry* entries, std::size_t n, const Deadline& deadline) {
  sort_and_check(entries, n, "try_lock_all_for");
  std::size_t taken = 0;
  try {
    for (; taken < n; ++taken) {
      LockEntry& e = entries[taken];
      if (deadline.infinite()) {
        e.lock(e.object);
      } else if (!e.try_lock_until(e.object, deadline.time_point())) {
        unlock_entries(entries, taken);
        return false;
      }
    }
  } catch (...) {
    unlock_entries(entries, taken);
    throw;
  }
  return true;
}

}  // namespace troupe::detail
