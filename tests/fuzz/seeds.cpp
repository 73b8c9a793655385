// Writes a target's seeds (troupe_fuzz::seeds()) as files, for a first corpus: from the
// replay binary (`fuzz_wire --write-seeds DIR`) or, in a libFuzzer build, when the
// environment names a directory (TROUPE_FUZZ_WRITE_SEEDS=DIR fuzz_wire; scripts/fuzz.sh
// does this for a target whose committed corpus is empty).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz_target.hpp"

namespace troupe_fuzz {

int write_seeds(const char* dir) {
  const std::filesystem::path root(dir);
  std::filesystem::create_directories(root);
  const auto all = seeds();
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto file = root / ("seed-" + std::to_string(i));
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(all[i].data()), static_cast<std::streamsize>(all[i].size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", file.c_str());
      return 1;
    }
  }
  std::printf("wrote %zu seeds to %s\n", all.size(), dir);
  return 0;
}

}  // namespace troupe_fuzz

#ifdef TROUPE_FUZZ_LIBFUZZER
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("TROUPE_FUZZ_WRITE_SEEDS")) std::exit(troupe_fuzz::write_seeds(dir));
  return 0;
}
#endif
