// troupe_wordcount — word frequencies of real text files with Executor::map_reduce.
//
// Python equivalent (SCOOP):
//
//   def count(path):
//       return Counter(re.findall(r"[a-z]+", open(path, errors="replace").read().lower()))
//   totals = futures.mapReduce(count, operator.add, paths)
//   print(totals.most_common(20))
//
// The root lists the files: the paths given on the command line (directories are walked
// recursively), or by default every file under /usr/share/common-licenses (Debian's
// license texts; /usr/share/doc/*/copyright where that is missing). map_reduce sends each
// task a chunk of paths; the executing rank reads its files and counts lowercase words
// into a std::map<std::string, long>; partial counts are merged (an associative reduce)
// by map_reduce's tree as they arrive. Reading on the executing rank needs the files on
// every node (a shared file system, or one node); with --ship the root reads the files and
// sends their contents instead.
//
// With --dict every rank also counts its share of the files (file i on rank i % N) into one
// troupe::Dict<std::string, long> (Python's Manager().dict()): async_update(word, n -> n + k)
// runs at the word's owner rank, flush() completes every update, gather(0) brings the counts
// to the root, which prints them beside the map_reduce counts and checks that both agree.
//
// A word is a maximal run of ASCII letters, lowercased ("GNU's" counts "gnu" and "s");
// other bytes separate words. Files that look binary (a NUL byte) are counted as skipped.
//
//   mpirun -n 2 build/apps/wordcount/troupe_wordcount [PATH...] [--top N] [--ship] [--verify] [--dict]
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "troupe/across/dict.hpp"
#include "troupe/core/error.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/wire/serialize.hpp"

namespace fs = std::filesystem;

namespace {

// The result of a file, and of any number of merged files.
struct Counts {
  std::map<std::string, long> words;  // lowercase word -> occurrences
  long files = 0;
  long skipped = 0;  // binary files
  long bytes = 0;
  std::map<int, long> files_by_rank;  // where the files were counted (not part of the result)
  TROUPE_FIELDS(words, files, skipped, bytes, files_by_rank)

  bool same_counts(const Counts& o) const {
    return words == o.words && files == o.files && skipped == o.skipped && bytes == o.bytes;
  }
};

Counts count_text(const std::string& text) {
  Counts c;
  c.bytes = static_cast<long>(text.size());
  if (text.find('\0') != std::string::npos) {
    c.skipped = 1;
    return c;
  }
  c.files = 1;
  std::string word;
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 128 && std::isalpha(u)) {
      word.push_back(static_cast<char>(std::tolower(u)));
    } else if (!word.empty()) {
      ++c.words[word];
      word.clear();
    }
  }
  if (!word.empty()) ++c.words[word];
  return c;
}

std::string read_file(const std::string& path) {
  // C stdio: g++ 12 -O3 flags istreambuf_iterator with a false -Wnull-dereference.
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  std::string text;
  char buf[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw std::runtime_error("cannot read " + path);
  return text;
}

// Runs on whichever rank gets the task: reads the file there.
Counts count_file(const std::string& path) {
  Counts c = count_text(read_file(path));
  c.files_by_rank[troupe::Runtime::current()->rank()] = 1;
  return c;
}

// The reduce: merge the smaller map into the larger (associative and commutative).
Counts merge(Counts a, Counts b) {
  if (a.words.size() < b.words.size()) std::swap(a, b);
  for (auto& [word, n] : b.words) a.words[word] += n;
  a.files += b.files;
  a.skipped += b.skipped;
  a.bytes += b.bytes;
  for (auto [rank, n] : b.files_by_rank) a.files_by_rank[rank] += n;
  return a;
}

struct Args {
  std::vector<std::string> paths;
  std::size_t top = 20;
  bool ship = false;
  bool verify = false;
  bool dict = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--top") {
      if (i + 1 >= argc) throw troupe::ValueError("troupe_wordcount: --top needs a value");
      const char* text = argv[++i];
      char* end = nullptr;
      errno = 0;
      const long n = std::strtol(text, &end, 10);
      if (errno != 0 || end == text || *end != '\0' || n < 0) {
        throw troupe::ValueError(std::string("troupe_wordcount: --top needs an integer >= 0, got '") + text + "'");
      }
      a.top = static_cast<std::size_t>(n);
    } else if (arg == "--ship") {
      a.ship = true;
    } else if (arg == "--verify") {
      a.verify = true;
    } else if (arg == "--dict") {
      a.dict = true;
    } else if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: troupe_wordcount [PATH...] [--top N] [--ship] [--verify] [--dict]\n"
          "  PATH     files or directories (walked recursively); default /usr/share/common-licenses\n"
          "  --ship   the root reads the files and sends their contents (no shared file system needed)\n"
          "  --verify recount serially on the root and compare\n"
          "  --dict   also count through a troupe::Dict (every rank reads its share of the files)\n"
          "           and check that both counts agree\n");
      std::exit(0);
    } else if (!arg.empty() && arg[0] == '-') {
      throw troupe::ValueError("troupe_wordcount: unknown argument '" + arg + "' (try --help)");
    } else {
      a.paths.push_back(arg);
    }
  }
  return a;
}

// The regular files under @p roots, each once (symlinks to the same file are one file), sorted.
std::vector<std::string> list_files(const std::vector<std::string>& roots) {
  std::set<std::string> seen;
  std::vector<std::string> files;
  auto add = [&](const fs::path& p) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) return;
    const fs::path canon = fs::canonical(p, ec);
    if (ec || !seen.insert(canon.string()).second) return;
    files.push_back(p.string());
  };
  for (const auto& root : roots) {
    std::error_code ec;
    if (fs::is_directory(root, ec)) {
      for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        add(it->path());
      }
    } else if (fs::exists(root, ec)) {
      add(root);
    } else {
      throw troupe::ValueError("troupe_wordcount: no such file or directory: " + root);
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> default_files() {
  std::error_code ec;
  if (fs::is_directory("/usr/share/common-licenses", ec)) {
    auto files = list_files({"/usr/share/common-licenses"});
    if (!files.empty()) return files;
  }
  std::vector<std::string> copyrights;  // /usr/share/doc/*/copyright
  if (fs::is_directory("/usr/share/doc", ec)) {
    for (const auto& pkg :
         fs::directory_iterator("/usr/share/doc", fs::directory_options::skip_permission_denied, ec)) {
      const fs::path c = pkg.path() / "copyright";
      if (fs::is_regular_file(c, ec)) copyrights.push_back(c.string());
    }
  }
  return list_files(copyrights);
}

// The Dict's keys for the totals: never words (a word is letters only).
constexpr const char* kFilesKey = "#files";
constexpr const char* kSkippedKey = "#skipped";
constexpr const char* kBytesKey = "#bytes";

// --dict: every rank counts files i % N == rank into one distributed dictionary; the root gets
// every count (empty Counts elsewhere). Collective.
Counts count_with_dict(troupe::Runtime& rt, const std::vector<std::string>& files, double* seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto timeout = std::chrono::minutes(10);
  troupe::Dict<std::string, long> dict(troupe::Scope::Ranks);  // collective
  for (std::size_t i = static_cast<std::size_t>(rt.rank()); i < files.size();
       i += static_cast<std::size_t>(rt.size())) {
    const Counts c = count_text(read_file(files[i]));
    // One update per distinct word of the file, run at the word's owner (batched per owner).
    // [n = n]: clang 14 cannot capture a structured binding by name (C++20 allows it; clang 16).
    for (const auto& [w, n] : c.words) dict.async_update(w, [n = n](long v) { return v + n; });
    const long files_here = c.files, skipped_here = c.skipped, bytes_here = c.bytes;
    dict.async_update(kFilesKey, [files_here](long v) { return v + files_here; });
    dict.async_update(kSkippedKey, [skipped_here](long v) { return v + skipped_here; });
    dict.async_update(kBytesKey, [bytes_here](long v) { return v + bytes_here; });
  }
  dict.flush(timeout);  // collective: every update applied at its owner
  std::map<std::string, long> all = dict.gather(0, timeout);
  Counts total;
  for (auto& [key, n] : all) {
    if (key == kFilesKey) {
      total.files = n;
    } else if (key == kSkippedKey) {
      total.skipped = n;
    } else if (key == kBytesKey) {
      total.bytes = n;
    } else {
      total.words.emplace(key, n);
    }
  }
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return total;
}

int run(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  const Args a = parse(argc, argv);
  // --dict first (every rank lists the same files and counts its share), then map_reduce.
  Counts by_dict;
  double dict_seconds = 0;
  if (a.dict) {
    const std::vector<std::string> files = a.paths.empty() ? default_files() : list_files(a.paths);
    if (files.empty()) throw troupe::ValueError("troupe_wordcount: no files to count");
    by_dict = count_with_dict(rt, files, &dict_seconds);
  }
  troupe::Executor ex(rt);  // collective
  bool ok = true;

  if (ex.is_root()) {
    const std::vector<std::string> files = a.paths.empty() ? default_files() : list_files(a.paths);
    if (files.empty()) throw troupe::ValueError("troupe_wordcount: no files to count");

    const auto t0 = std::chrono::steady_clock::now();
    Counts total;
    if (a.ship) {
      // The root reads every file and the tasks receive the contents.
      std::vector<std::string> texts;
      texts.reserve(files.size());
      for (const auto& f : files) texts.push_back(read_file(f));
      total = ex.map_reduce(
          [](const std::string& text) {
            Counts c = count_text(text);
            c.files_by_rank[troupe::Runtime::current()->rank()] = 1;
            return c;
          },
          [](Counts x, Counts y) { return merge(std::move(x), std::move(y)); }, texts, {.initial = Counts{}});
    } else {
      // The tasks receive paths and read the files where they run.
      total = ex.map_reduce(troupe::remote<&count_file>, troupe::remote<&merge>, files, {.initial = Counts{}});
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    long words = 0;
    for (const auto& [w, n] : total.words) words += n;
    std::vector<std::pair<std::string, long>> ranked(total.words.begin(), total.words.end());
    const std::size_t top = std::min(a.top, ranked.size());
    std::partial_sort(
        ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(top), ranked.end(),
        [](const auto& x, const auto& y) { return x.second != y.second ? x.second > y.second : x.first < y.first; });

    std::printf("troupe_wordcount: %zu file(s) on %d rank(s) x %zu thread(s)%s\n", files.size(), ex.size(),
                rt.threads(), a.ship ? " (contents shipped from the root)" : "");
    std::printf("%4s  %-20s %10s\n", "#", "word", "count");
    for (std::size_t i = 0; i < top; ++i) {
      std::printf("%4zu  %-20s %10ld\n", i + 1, ranked[i].first.c_str(), ranked[i].second);
    }
    std::printf("files  = %ld counted, %ld skipped as binary\n", total.files, total.skipped);
    std::printf("bytes  = %ld\n", total.bytes);
    std::printf("words  = %ld (%zu distinct)\n", words, total.words.size());
    std::printf("ranks  =");
    const char* sep = " ";
    for (auto [rank, n] : total.files_by_rank) {
      std::printf("%s%ld file(s) on rank %d", sep, n, rank);
      sep = ", ";
    }
    std::printf("\n");
    std::printf("time   = %.3f s (map_reduce)\n", seconds);

    if (a.dict) {
      long dict_words = 0;
      for (const auto& [w, n] : by_dict.words) dict_words += n;
      const bool same = by_dict.same_counts(total);
      std::printf("dict   = %ld words (%zu distinct) in %.3f s through troupe::Dict: %s\n", dict_words,
                  by_dict.words.size(), dict_seconds, same ? "same counts as map_reduce" : "DIFFERENT counts");
      if (!same) {
        std::printf("troupe_wordcount: FAILED: the Dict's counts differ from map_reduce's\n");
        ok = false;
      }
    }
    if (a.verify) {
      Counts serial;
      for (const auto& f : files) serial = merge(std::move(serial), count_text(read_file(f)));
      const bool same = serial.same_counts(total);
      ok = ok && same;
      std::printf("verify = %s (serial recount on the root)\n", same ? "same counts" : "DIFFERENT counts");
      if (!same) std::printf("troupe_wordcount: FAILED: the distributed counts differ from the serial ones\n");
    }
    std::fflush(stdout);
  }

  ex.shutdown();  // collective: the serving ranks wait here for the root
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    troupe::log(std::string("troupe_wordcount: ") + e.what());
    return 2;
  }
}
