// Same-binary check: every rank must run the same executable (ELF build id, else a hash of
// /proc/self/exe) and the same callable table. One MPI_Allreduce on the success path.
#include "troupe/runtime/detail/same_binary.hpp"

#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "troupe/core/detail/hash.hpp"
#include "troupe/core/detail/text.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/runtime.hpp"

namespace troupe {

namespace {

// Final avalanche (splitmix64) so that near-equal inputs give unrelated digests.
std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

struct BuildId {
  std::uint64_t digest = 0;
  bool found = false;
};

// dl_iterate_phdr visits the main program first (empty dlpi_name); its PT_NOTE segments
// hold NT_GNU_BUILD_ID when the linker wrote one (Debian's g++ always does).
int find_build_id(struct dl_phdr_info* info, std::size_t, void* data) {
  auto* out = static_cast<BuildId*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
    std::size_t left = ph.p_memsz;
    while (left >= sizeof(ElfW(Nhdr))) {
      ElfW(Nhdr) nh;
      std::memcpy(&nh, p, sizeof nh);
      const std::size_t name_sz = (nh.n_namesz + 3u) & ~std::size_t{3};
      const std::size_t desc_sz = (nh.n_descsz + 3u) & ~std::size_t{3};
      const std::size_t total = sizeof nh + name_sz + desc_sz;
      if (total > left) break;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(p + sizeof nh, "GNU", 4) == 0 &&
          nh.n_descsz > 0) {
        out->digest = mix(detail::fnv1a(p + sizeof nh + name_sz, nh.n_descsz));
        out->found = true;
        return 1;
      }
      p += total;
      left -= total;
    }
  }
  return 1;  // only the main program matters
}

std::uint64_t hash_file(const char* path) noexcept {
  std::FILE* f = std::fopen(path, "rb");
  if (f == nullptr) return 0;
  std::vector<unsigned char> buf(1 << 20);
  std::uint64_t h = detail::kFnv1aOffset;
  std::uint64_t total = 0;
  // FNV over 8-byte words (8x fewer multiplies than per byte); tail bytes one by one.
  for (;;) {
    std::size_t n = std::fread(buf.data(), 1, buf.size(), f);
    if (n == 0) break;
    total += n;
    std::size_t words = n / 8;
    for (std::size_t i = 0; i < words; ++i) {
      std::uint64_t w;
      std::memcpy(&w, buf.data() + i * 8, 8);
      h ^= w;
      h *= detail::kFnv1aPrime;
    }
    h = detail::fnv1a(buf.data() + words * 8, n - words * 8, h);
  }
  std::fclose(f);
  return mix(h ^ total);
}

std::atomic<std::uint64_t> g_digest_override{0};

std::string exe_path() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "?";
  return std::string(buf, static_cast<std::size_t>(n));
}

// "0x... on ranks 0-2,5; 0x... on rank 3"
std::string describe(const std::vector<std::uint64_t>& all, std::size_t index) {
  std::map<std::uint64_t, std::vector<int>> by_digest;
  const std::size_t n = all.size() / 2;
  for (std::size_t r = 0; r < n; ++r) by_digest[all[2 * r + index]].push_back(static_cast<int>(r));
  std::string out;
  for (const auto& [digest, ranks] : by_digest) {
    if (!out.empty()) out += "; ";
    out += detail::hex(digest) + (ranks.size() == 1 ? " on rank " : " on ranks ") + format_cpu_list(ranks);
  }
  return out;
}

}  // namespace

std::uint64_t executable_digest() noexcept {
  static const std::uint64_t digest = [] {
    BuildId id;
    dl_iterate_phdr(find_build_id, &id);
    if (id.found) return id.digest;
    return hash_file("/proc/self/exe");
  }();
  return digest;
}

namespace detail {

void set_executable_digest_override(std::uint64_t digest) noexcept { g_digest_override.store(digest); }

std::uint64_t executable_digest_for_check() noexcept {
  auto o = g_digest_override.load();
  return o != 0 ? o : executable_digest();
}

void check_same_binary(MPI_Comm comm, std::uint64_t executable, std::uint64_t callables) {
  // min(x) and min(~x) = ~max(x) in one MPI_MIN: equal min and max means all equal.
  std::array<std::uint64_t, 4> v{executable, ~executable, callables, ~callables};
  TROUPE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v.data(), 4, MPI_UINT64_T, MPI_MIN, comm));
  const bool exe_same = v[0] == ~v[1];
  const bool table_same = v[2] == ~v[3];
  if (exe_same && table_same) return;

  // Failure path only: learn who has what, so the message can name the ranks.
  int size = 1;
  TROUPE_MPI_CHECK(MPI_Comm_size(comm, &size));
  std::array<std::uint64_t, 2> mine{executable, callables};
  std::vector<std::uint64_t> all(2 * static_cast<std::size_t>(size));
  TROUPE_MPI_CHECK(MPI_Allgather(mine.data(), 2, MPI_UINT64_T, all.data(), 2, MPI_UINT64_T, comm));
  std::string msg;
  if (!exe_same) {
    msg = "ranks run different executables: executable digest " + describe(all, 0) +
          ". Every rank must run the same build of the program (this rank runs " + exe_path() +
          "); check the path given to mpirun/srun and that every node sees the same file";
  }
  if (!table_same) {
    if (!msg.empty()) msg += ". Also: ";
    msg += "ranks have different callable tables: callable table digest " + describe(all, 1) +
           ". Every rank must register the same callables (same binary, same shared libraries)";
  }
  throw Error(rank_tag() + " troupe::Runtime: " + msg);
}

}  // namespace detail
}  // namespace troupe
