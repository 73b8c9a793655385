// The callable registry: registrations collected during static initialization, frozen into
// a sorted, dense id table at first use. See troupe/wire/callable.hpp and
// docs/remote-callables.md.
#include "troupe/wire/callable.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <numeric>

#include "troupe/core/detail/hash.hpp"
#include "troupe/core/detail/text.hpp"
#include "troupe/wire/exception.hpp"

namespace troupe::wire {

std::uint64_t fnv1a64(std::string_view bytes) noexcept { return troupe::detail::fnv1a(bytes.data(), bytes.size()); }

std::optional<CallableId> CallableTable::find(std::uint64_t key) const noexcept {
  const auto it = std::lower_bound(keys.begin(), keys.end(), key);
  if (it == keys.end() || *it != key) {
    return std::nullopt;
  }
  return static_cast<CallableId>(it - keys.begin());
}

namespace {

// The digest hashes the count and each key's 8 bytes, least significant first (the same
// on every rank of one binary; explicit so that the value is documented, not incidental).
std::uint64_t table_digest(const std::vector<std::uint64_t>& keys) noexcept {
  std::string bytes;
  bytes.reserve(8 * (keys.size() + 1));
  auto put = [&bytes](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      bytes.push_back(static_cast<char>((v >> (8 * i)) & 0xffU));
    }
  };
  put(keys.size());
  for (const std::uint64_t k : keys) {
    put(k);
  }
  return fnv1a64(bytes);
}

}  // namespace

CallableTable build_callable_table(std::span<const CallableKey> entries) {
  // Sort input positions by (key, name): the result depends on the set of entries only.
  std::vector<std::size_t> idx(entries.size());
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::sort(idx.begin(), idx.end(), [&entries](std::size_t a, std::size_t b) {
    if (entries[a].key != entries[b].key) {
      return entries[a].key < entries[b].key;
    }
    return entries[a].name < entries[b].name;
  });

  CallableTable table;
  table.keys.reserve(idx.size());
  table.order.reserve(idx.size());
  for (std::size_t i = 0; i < idx.size(); ++i) {
    const CallableKey& e = entries[idx[i]];
    if (!table.keys.empty() && table.keys.back() == e.key) {
      const CallableKey& kept = entries[table.order.back()];
      if (kept.name != e.name) {
        throw troupe::Error("troupe callable table: two callable types have the same 64-bit key " +
                            troupe::detail::hex(e.key) + ": '" + demangle(kept.name.c_str()) + "' and '" +
                            demangle(e.name.c_str()) + "'; rename one of them (e.g. make the lambda a named functor)");
      }
      if (kept.type != nullptr && e.type != nullptr && *kept.type != *e.type) {
        throw troupe::Error("troupe callable table: two distinct callable types share the mangled name '" +
                            demangle(e.name.c_str()) +
                            "' (types with internal linkage, e.g. lambdas or classes in anonymous "
                            "namespaces or static functions of different source files, named alike); "
                            "rename one of them or move it out of the anonymous namespace");
      }
      continue;  // the same type registered twice (e.g. by two shared libraries): one entry
    }
    if (table.keys.size() == std::size_t{0xffffffffU}) {
      throw troupe::Error("troupe callable table: more than 2^32 - 1 entries");
    }
    table.keys.push_back(e.key);
    table.order.push_back(idx[i]);
  }
  table.digest = table_digest(table.keys);
  return table;
}

namespace {

enum class EntryKind : std::uint8_t { Invoker, Function };

struct Entry {
  std::uint64_t key = 0;
  std::string name;  // mangled
  const std::type_info* type = nullptr;
  EntryKind kind = EntryKind::Invoker;
  detail::InvokeFn invoke = nullptr;
  detail::ErasedFn fn = nullptr;
  const std::type_info* fn_type = nullptr;
};

class Registry {
 public:
  std::uint64_t add(Entry e) noexcept {
    const std::uint64_t key = e.key;
    try {
      std::lock_guard lock(mutex_);
      (final_.load(std::memory_order_relaxed) ? late_ : pending_).push_back(std::move(e));
    } catch (...) {
      // Out of memory during static initialization: the entry is missing, which
      // id_for_key() reports when the callable is used.
    }
    return key;
  }

  void finalize() {
    if (final_.load(std::memory_order_acquire)) {
      if (error_) {
        std::rethrow_exception(error_);
      }
      return;
    }
    std::lock_guard lock(mutex_);
    if (!final_.load(std::memory_order_relaxed)) {
      try {
        build();
      } catch (...) {
        error_ = std::current_exception();
        table_.clear();
        by_address_.clear();
      }
      final_.store(true, std::memory_order_release);
    }
    if (error_) {
      std::rethrow_exception(error_);
    }
  }

  const std::vector<Entry>& table() {
    finalize();
    return table_;
  }

  std::uint64_t digest() {
    finalize();
    return digest_;
  }

  CallableId id_for_key(std::uint64_t key, const std::type_info& type) {
    finalize();
    const auto it = std::lower_bound(keys_.begin(), keys_.end(), key);
    if (it != keys_.end() && *it == key) {
      return static_cast<CallableId>(it - keys_.begin());
    }
    throw troupe::InvalidStateError(
        "troupe::wire::callable_id: '" + demangle(type.name()) +
        "' was registered after the callable table was built (by a shared library loaded with "
        "dlopen after the executor started, or a call encoded during static initialization); "
        "load such libraries before the executor starts");
  }

  CallableId function_id(detail::ErasedFn fn, const std::type_info& fn_type) {
    finalize();
    const auto address = reinterpret_cast<std::uintptr_t>(fn);
    auto it = std::lower_bound(by_address_.begin(), by_address_.end(), address,
                               [](const auto& p, std::uintptr_t a) { return p.first < a; });
    // Several entries may share an address (identical code folding); any of them is the
    // same code, but the pointer type must match.
    for (; it != by_address_.end() && it->first == address; ++it) {
      if (*table_[it->second].fn_type == fn_type) {
        return it->second;
      }
    }
    throw troupe::ValueError(
        "troupe::wire::encode_call: the function pointer (of type '" + demangle(fn_type.name()) +
        "') names a function that is not registered for remote calls; send it as troupe::remote<&f> "
        "or register it with TROUPE_REGISTER_FUNCTION(f) at namespace scope");
  }

  detail::ErasedFn function_for_id(CallableId id, const std::type_info& fn_type) {
    const auto& t = table();
    if (id >= t.size()) {
      throw UnknownCallable("troupe::wire::invoke: unknown function id " + std::to_string(id) +
                            " (the callable table has " + std::to_string(t.size()) +
                            " entries); the message is corrupt or the ranks run different builds");
    }
    const Entry& e = t[id];
    if (e.kind != EntryKind::Function || *e.fn_type != fn_type) {
      throw UnknownCallable("troupe::wire::invoke: id " + std::to_string(id) + " names '" + demangle(e.name.c_str()) +
                            "', not a function of type '" + demangle(fn_type.name()) + "'; the message is corrupt");
    }
    return e.fn;
  }

 private:
  void build() {
    std::vector<CallableKey> keys;
    keys.reserve(pending_.size());
    for (const Entry& e : pending_) {
      keys.push_back(CallableKey{e.key, e.name, e.type});
    }
    CallableTable t = build_callable_table(keys);
    table_.reserve(t.order.size());
    for (const std::size_t i : t.order) {
      table_.push_back(pending_[i]);
    }
    keys_ = std::move(t.keys);
    digest_ = t.digest;
    for (std::size_t id = 0; id < table_.size(); ++id) {
      if (table_[id].kind == EntryKind::Function) {
        by_address_.emplace_back(reinterpret_cast<std::uintptr_t>(table_[id].fn), static_cast<CallableId>(id));
      }
    }
    std::sort(by_address_.begin(), by_address_.end());
    pending_.clear();
    pending_.shrink_to_fit();
  }

  std::mutex mutex_;
  std::atomic<bool> final_{false};
  std::exception_ptr error_;
  std::vector<Entry> pending_;  // registered before the table was built
  std::vector<Entry> late_;     // registered after: no id
  // Immutable once final_ is set (release), so readers need no lock.
  std::vector<Entry> table_;
  std::vector<std::uint64_t> keys_;
  std::vector<std::pair<std::uintptr_t, CallableId>> by_address_;  // function address -> id
  std::uint64_t digest_ = 0;
};

Registry& registry() noexcept {
  // Constructed on first use (registrations run in unspecified order during static
  // initialization) and never destroyed (executors may still run during static destruction).
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

void finalize_callable_table() { registry().finalize(); }

std::uint64_t callable_table_digest() { return registry().digest(); }

std::size_t callable_table_size() { return registry().table().size(); }

std::string callable_name(CallableId id) {
  const auto& t = registry().table();
  if (id >= t.size()) {
    throw UnknownCallable("troupe::wire::callable_name: unknown callable id " + std::to_string(id) +
                          " (the callable table has " + std::to_string(t.size()) + " entries)");
  }
  return demangle(t[id].name.c_str());
}

void invoke(CallableId id, Reader& in, Writer& out) {
  const auto& t = registry().table();
  if (id >= t.size() || t[id].kind != EntryKind::Invoker) {
    throw UnknownCallable(
        "troupe::wire::invoke: unknown callable id " + std::to_string(id) + " (the callable table has " +
        std::to_string(t.size()) + " entries" +
        (id < t.size() ? std::string(", and this one is a function, not an invoker") : std::string()) +
        "); the message is corrupt or the ranks run different builds");
  }
  t[id].invoke(in, out);
}

void decode_and_invoke(Reader& in, Writer& out) {
  const auto id = in.read<CallableId>();
  invoke(id, in, out);
}

namespace detail {

std::uint64_t register_invoker(const std::type_info& invoker_type, InvokeFn fn) noexcept {
  return registry().add(Entry{fnv1a64(invoker_type.name()), invoker_type.name(), &invoker_type, EntryKind::Invoker, fn,
                              nullptr, nullptr});
}

std::uint64_t register_function(const std::type_info& entry_type, const std::type_info& fn_type, ErasedFn fn) noexcept {
  return registry().add(
      Entry{fnv1a64(entry_type.name()), entry_type.name(), &entry_type, EntryKind::Function, nullptr, fn, &fn_type});
}

CallableId id_for_key(std::uint64_t key, const std::type_info& type) { return registry().id_for_key(key, type); }

namespace {

// [lo, hi) of the calling thread's stack, asked once per thread (pthread_getattr_np reads
// /proc/self/maps for the main thread); {0, 0} if unknown.
struct StackRange {
  std::uintptr_t lo = 0;
  std::uintptr_t hi = 0;
};

StackRange query_stack() noexcept {
  StackRange r;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return r;
  void* base = nullptr;
  std::size_t size = 0;
  if (pthread_attr_getstack(&attr, &base, &size) == 0) {
    r.lo = reinterpret_cast<std::uintptr_t>(base);
    r.hi = r.lo + size;
  }
  pthread_attr_destroy(&attr);
  return r;
}

// Is the page of @p address mapped in this process (any protection)? mincore() fails with
// ENOMEM for an unmapped page: one system call, no signal, nothing read.
bool mapped(std::uintptr_t address) noexcept {
  static const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  unsigned char resident = 0;
  // NOLINTNEXTLINE(performance-no-int-to-ptr): the value is only ever a question to the kernel
  void* start = reinterpret_cast<void*>(address & ~(page - 1));
  return mincore(start, 1, &resident) == 0;
}

// Above the 47-bit user half of x86-64 (and AArch64 with 48-bit addresses) nothing of this
// process is mapped: most doubles and negative numbers stop there.
constexpr std::uintptr_t kUserTop = std::uintptr_t{1} << 47;

// Under AddressSanitizer its shadow memory is reserved at [0x7fff8000, 0x10007fff8000) on
// x86-64 Linux (the default mapping of compiler-rt's asan_mapping.h): mincore() calls it
// mapped, so plain numbers such as two packed ints (0x0000000a00000001) looked like
// addresses. No object of the program lives there.
#if defined(__SANITIZE_ADDRESS__)
#define TROUPE_ASAN_SHADOW 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TROUPE_ASAN_SHADOW 1
#endif
#endif
#ifdef TROUPE_ASAN_SHADOW
constexpr std::uintptr_t kShadowLo = 0x7fff8000, kShadowHi = 0x10007fff8000;
#else
constexpr std::uintptr_t kShadowLo = 0, kShadowHi = 0;
#endif
constexpr bool in_shadow(std::uintptr_t a) noexcept { return a >= kShadowLo && a < kShadowHi; }

// The lowest mapped address outside the sanitizer's shadow, read once from /proc/self/maps
// (its lines are sorted): the executable's first segment (0x55.. for a PIE binary, 0x400000
// for one that is not), which Linux maps below the heap and below every mmap (those grow
// down from under the stack). Counts and indices below it skip the system call. 64 KiB
// (vm.mmap_min_addr's default) if the file cannot be read.
std::uintptr_t lowest_mapping() noexcept {
  std::uintptr_t lowest = 0x10000;
  if (std::FILE* maps = std::fopen("/proc/self/maps", "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, maps) != nullptr) {
      const auto start = static_cast<std::uintptr_t>(std::strtoull(line, nullptr, 16));
      if (in_shadow(start)) continue;
      if (start > lowest) lowest = start;
      break;
    }
    std::fclose(maps);
  }
  return lowest;
}

}  // namespace

void check_state_bytes(const void* bytes, std::size_t size, const std::type_info& type) {
  if constexpr (sizeof(std::uintptr_t) != 8) {
    return;  // the bounds above are those of 64-bit Linux
  }
  thread_local const StackRange stack = query_stack();
  static const std::uintptr_t lowest = lowest_mapping();
  const auto* p = static_cast<const unsigned char*>(bytes);
  // A closure's pointers and references are aligned members, so aligned words suffice.
  for (std::size_t offset = 0; offset + sizeof(std::uintptr_t) <= size; offset += alignof(std::uintptr_t)) {
    std::uintptr_t word = 0;
    std::memcpy(&word, p + offset, sizeof(word));
    const char* where = nullptr;
    if (word >= stack.lo && word < stack.hi) {
      where = "the sending thread's stack";
    } else if (word >= lowest && word < kUserTop && !in_shadow(word) && mapped(word)) {
      where = "this process's memory (heap, static data, code or another thread's stack)";
    }
    if (where != nullptr) {
      throw troupe::ValueError("troupe::wire::encode_call: the callable '" + demangle(type.name()) + "' (" +
                               std::to_string(size) + " bytes, sent as raw bytes) holds at byte " +
                               std::to_string(offset) + " the value " + troupe::detail::hex(word) + ", an address in " +
                               where +
                               ": it would point at garbage on another rank (a pointer or reference kept as an "
                               "integer, or in a functor C++ cannot look into); capture the value itself, or "
                               "pass the data as an argument (see docs/remote-callables.md)");
    }
  }
}

CallableId function_id(ErasedFn fn, const std::type_info& fn_type) { return registry().function_id(fn, fn_type); }

ErasedFn function_for_id(CallableId id, const std::type_info& fn_type) {
  return registry().function_for_id(id, fn_type);
}

}  // namespace detail
}  // namespace troupe::wire
