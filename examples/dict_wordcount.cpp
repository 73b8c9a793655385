// troupe::Dict — a word count over every rank into one distributed dictionary (Python's
// `Manager().dict()`, or a `collections.Counter` shared by every process):
//
//   counts = manager.dict()
//   for w in my_share_of(text): counts[w] = counts.get(w, 0) + 1   # racy in Python!
//
// Here the increment runs at the word's owner rank, atomically: every rank counts the words of
// its share of a generated text with async_update(word, n -> n + 1), which batches the updates
// per owner; flush() (collective) returns once all of them are applied everywhere; gather(0)
// brings every entry to rank 0, which checks them against a serial count.
//   mpirun -n 4 ./dict_wordcount
#include <troupe/across/dict.hpp>
#include <troupe/runtime/runtime.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::size_t kWords = 40'000;
constexpr std::uint64_t kVocabulary = 600;

// The i-th word of the text: a pseudo-random pick from a vocabulary of made-up words, skewed
// toward short ones (as in real text), the same on every rank.
std::string word_at(std::size_t i) {
  std::uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 32;
  std::uint64_t id = (x % kVocabulary) * (x % 7 + 1) / 7;  // smaller ids are more frequent
  std::string w;
  do {
    w.push_back(static_cast<char>('a' + id % 26));
    id /= 26;
  } while (id > 0);
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::Runtime rt(argc, argv, ro);

  troupe::Dict<std::string, long> counts(troupe::Scope::Ranks);  // collective
  // This rank's share of the text: a contiguous block of words.
  const std::size_t begin = kWords * static_cast<std::size_t>(rt.rank()) / static_cast<std::size_t>(rt.size());
  const std::size_t end = kWords * static_cast<std::size_t>(rt.rank() + 1) / static_cast<std::size_t>(rt.size());
  for (std::size_t i = begin; i < end; ++i) counts.async_update(word_at(i), [](long n) { return n + 1; });
  counts.flush(60s);  // collective: every rank's updates are applied at their owners

  const std::uint64_t distinct = counts.size(60s);  // collective
  std::map<std::string, long> all = counts.gather(0, 60s);
  if (rt.rank() == 0) {
    std::map<std::string, long> serial;
    for (std::size_t i = 0; i < kWords; ++i) ++serial[word_at(i)];
    long total = 0;
    for (const auto& [w, n] : all) total += n;
    std::printf("dict_wordcount: %zu words on %d rank(s), %llu distinct; 'a' x %ld, 'b' x %ld\n", kWords, rt.size(),
                static_cast<unsigned long long>(distinct), all.count("a") ? all.at("a") : 0L,
                all.count("b") ? all.at("b") : 0L);
    example::check(total == static_cast<long>(kWords), "the counts add up to the number of words");
    example::check(distinct == serial.size(), "size() is the number of distinct words");
    example::check(all == serial, "every count equals the serial count");
  }
  // A blocking read from every rank of one key.
  const long a = counts.get("a", 30s).value_or(0);
  long want = 0;
  for (std::size_t i = 0; i < kWords; ++i) want += word_at(i) == "a" ? 1 : 0;
  example::check(a == want, "get(\"a\") on every rank equals the serial count");
  std::printf("rank %d: %s\n", rt.rank(), example::failures == 0 ? "ok" : "FAILED");
  return example::failures == 0 ? 0 : 1;
}
