#pragma once
// Shared by the examples: a check that prints what failed and is counted, so that an
// example exits non-zero (`return failures == 0 ? 0 : 1;`) when what it shows is wrong.
#include <cstdio>

namespace example {
inline int failures = 0;
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("  CHECK FAILED: %s\n", what);
    ++failures;
  }
}
}  // namespace example
