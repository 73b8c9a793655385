#pragma once
// Shared by the fuzz targets of tests/fuzz: the libFuzzer entry point, a check that aborts
// (so libFuzzer and the corpus replay both report it as a crash), and each target's seed
// inputs (seeds.cpp writes them).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define TROUPE_FUZZ_CHECK(cond)                                                          \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace troupe_fuzz {

/// Well-formed inputs that reach deep into the target, for a first corpus.
std::vector<std::vector<std::uint8_t>> seeds();

/// Writes seeds() to @p dir as seed-0, seed-1, ...; returns 0, or 1 if a file cannot be written.
int write_seeds(const char* dir);

}  // namespace troupe_fuzz
