// main() of a fuzz target built without libFuzzer (the corpus replay that ctest runs in every
// build, compiler independent): each file under the directories given (or each file given)
// goes through LLVMFuzzerTestOneInput once, in name order. Arguments starting with '-' are
// ignored, so the command line is libFuzzer's replay form (`fuzz_batch -runs=0 DIR`).
// `--write-seeds DIR` writes troupe_fuzz::seeds() to DIR instead.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_target.hpp"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--write-seeds" && i + 1 < argc) return troupe_fuzz::write_seeds(argv[i + 1]);
    if (arg.starts_with("-")) continue;
    if (fs::is_directory(arg)) {
      for (const auto& e : fs::recursive_directory_iterator(arg)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else if (fs::is_regular_file(arg)) {
      files.emplace_back(arg);
    } else {
      std::fprintf(stderr, "%s: no such file or directory\n", arg.c_str());
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s [-flags ignored] CORPUS_DIR_OR_FILE... | --write-seeds DIR\n", argv[0]);
    return 2;
  }
  std::sort(files.begin(), files.end());
  std::size_t bytes = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bytes += data.size();
    LLVMFuzzerTestOneInput(data.data(), data.size());
  }
  std::printf("replayed %zu inputs (%zu bytes): no crash\n", files.size(), bytes);
  return 0;
}
