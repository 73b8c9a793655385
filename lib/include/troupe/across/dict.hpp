#pragma once
/// @file
/// @brief troupe::Dict<K, V> — a hash map spread over every rank (Python's
/// `multiprocessing.Manager().dict()`, without the manager process): each key lives on its
/// owner rank, every operation runs there (owner-computes), and asynchronous updates travel in
/// per-destination batches completed by a collective flush().

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/core/scope.hpp"
#include "troupe/wire/callable.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe {

namespace detail {
class Handle;
class DictHost;
}  // namespace detail

/// @brief Options of a Dict.
struct DictOptions {
  /// @brief A rank's buffer of asynchronous operations for one destination rank is sent as one
  /// message once it holds this many bytes (and at flush()). At least 1.
  std::size_t batch_bytes = 64 * 1024;
};

namespace detail {

/// @brief The type-erased machinery of Dict: keys and values are their wire encodings.
/// docs/dict.md describes the protocol.
class DictCore {
 public:
  /// @brief Applies an update to the value held here (nullptr: missing) and returns the new
  /// value's encoding. Runs under the shard's mutex.
  using LocalUpdate = std::function<std::vector<std::byte>(const std::vector<std::byte>* old)>;
  /// @brief for_each's callback: a key's encoding and its value's encoding (rewritable).
  using Visit = std::function<void(std::string_view key, std::vector<std::byte>& value)>;

  DictCore(Scope scope, const DictOptions& options, const char* api);
  ~DictCore();
  DictCore(const DictCore&) = delete;
  DictCore& operator=(const DictCore&) = delete;

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  Scope scope() const noexcept { return scope_; }
  /// @brief The owner of the key encoded as @p key: fnv1a64(key) % size().
  int owner(std::string_view key) const noexcept;

  void insert(std::string key, std::vector<std::byte> value, const Deadline& deadline, const std::stop_token* token,
              const char* api);
  std::optional<std::vector<std::byte>> get(std::string key, const Deadline& deadline, const std::stop_token* token,
                                            const char* api);
  bool contains(std::string key, const Deadline& deadline, const std::stop_token* token, const char* api);
  bool erase(std::string key, const Deadline& deadline, const std::stop_token* token, const char* api);
  /// @brief update at the owner (not this rank): @p call is `[callable id][state]`, the owner
  /// appends the current value (or @p initial) and invokes it. Rethrows what the callable threw.
  std::vector<std::byte> update_remote(std::string key, std::vector<std::byte> call, std::vector<std::byte> initial,
                                       const Deadline& deadline, const std::stop_token* token, const char* api);
  /// @brief update of a key owned by this rank, run here under the shard's mutex.
  std::vector<std::byte> update_here(const std::string& key, const LocalUpdate& fn, const char* api);

  void async_insert(std::string key, std::vector<std::byte> value, const char* api);
  void async_erase(std::string key, const char* api);
  /// @brief A key owned elsewhere: appended to that owner's buffer (as update_remote's args).
  void async_update_remote(std::string key, std::vector<std::byte> call, std::vector<std::byte> initial,
                           const char* api);

  void flush(const Deadline& deadline, const std::stop_token* token, const char* api);
  std::uint64_t global_size(const Deadline& deadline, const char* api);
  std::size_t local_size(const char* api) const;
  void for_each(const Visit& fn, const char* api);
  /// @brief Every entry on @p root (empty elsewhere): encoded pairs.
  std::vector<std::pair<std::vector<std::byte>, std::vector<std::byte>>> gather(int root, const Deadline& deadline,
                                                                                const char* api);

 private:
  struct Out;
  struct Mpi;
  void check_live(const char* api) const;
  void check_collective(const char* api) const;
  void send_buffer(int dest);
  std::vector<std::byte> call_owner(int owner, std::uint32_t op, std::vector<std::byte> args, const Deadline& deadline,
                                    const std::stop_token* token, const char* api, std::uint8_t* status = nullptr);
  void append_async(int dest, std::uint8_t kind, const std::string& key, const std::vector<std::byte>* a,
                    const std::vector<std::byte>* b);
  void abandon(const char* api, const std::string& why);

  Scope scope_;
  std::size_t batch_bytes_;
  int rank_ = 0;
  int size_ = 1;
  std::shared_ptr<DictHost> host_;
  std::unique_ptr<Handle> handle_;
  std::unique_ptr<Out[]> out_;  // one buffer of async ops per destination rank
  std::unique_ptr<Mpi> mpi_;    // the private communicator (none for Scope::Threads)
  std::string broken_;          // set when a collective call gave up: its MPI requests stay pending
};

}  // namespace detail

/// @brief A hash map of @p K to @p V whose entries are spread over every rank of the
/// Runtime (Scope::Ranks, Scope::RanksAndThreads: the same for a Dict) or held by this
/// process alone (Scope::Threads). Python's `multiprocessing.Manager().dict()`, with
/// YGM-style batched asynchronous updates.
///
/// @tparam K the key type: anything troupe's wire sends (wire/serialize.hpp). Two keys are the
/// same key when their wire encodings are equal (true for integers, strings, tuples and
/// structs of them; `-0.0` and `0.0` are two keys). For gather(), K must be ordered (`<`).
/// @tparam V the value type: anything the wire sends, default-constructible (a missing key
/// in update() starts from `V{}`).
///
/// **Mechanism** (docs/dict.md): the owner of a key is `fnv1a64(encoding of key) % ranks`, the
/// same on every rank. Each rank holds its keys in a growable hash table guarded by a mutex.
/// A blocking operation is one call to the owner through troupe's hub (none when this rank
/// owns the key); update(k, fn) sends `fn` (a sendable callable: see wire/callable.hpp) and
/// runs it at the owner under its mutex, so a read-modify-write is atomic. async_insert,
/// async_update and async_erase append to a buffer per destination rank, sent as one message
/// when it reaches DictOptions::batch_bytes and at flush(); operations on keys this rank owns
/// apply at once. Before a blocking call to an owner, this rank's buffer for that owner is
/// sent, so one thread's operations on one key apply in the order it made them.
///
/// @code
/// troupe::Dict<std::string, long> counts(troupe::Scope::Ranks);     // collective
/// for (const auto& w : my_words) counts.async_update(w, [](long n) { return n + 1; });
/// counts.flush(std::chrono::seconds(30));                            // collective
/// long the = counts.get("the").value_or(0);
/// std::map<std::string, long> all = counts.gather(0);                // every entry on rank 0
/// @endcode
///
/// @note Construction (cross-rank scopes) is collective, in the same order as the other
/// cross-rank objects. flush(), size(), gather() and the destructor are collective: one thread
/// per rank calls them, every rank in the same order; below MPI_THREAD_MULTIPLE only the thread
/// that built the Runtime's first cross-rank object may. Every other member is thread-safe.
/// After a collective call of a Dict timed out (or was cancelled) on a rank, that rank's
/// collective calls of it throw InvalidStateError (its MPI requests may never complete); the
/// per-key operations still work. Not copyable or movable.
template <class K, class V>
class Dict {
  static_assert(wire::Serializable<K>, "troupe::Dict<K, V>: K must be wire-Serializable (see wire/serialize.hpp)");
  static_assert(wire::Serializable<V>, "troupe::Dict<K, V>: V must be wire-Serializable (see wire/serialize.hpp)");
  static_assert(std::is_default_constructible_v<K> && std::is_default_constructible_v<V>,
                "troupe::Dict<K, V>: K and V must be default-constructible");

 public:
  using key_type = K;
  using mapped_type = V;

  /// @brief A dict over @p scope. Collective for the cross-rank scopes.
  /// @throws ValueError when options.batch_bytes is 0; InvalidStateError when a cross-rank
  /// scope is asked for without a live Runtime; TimeoutError when not every rank builds it
  /// within the start-up timeout (TROUPE_STARTUP_TIMEOUT_MS).
  explicit Dict(Scope scope = Scope::Ranks, DictOptions options = {})
      : core_(scope, options, "Dict"), initial_(wire::serialize(V{})) {}

  /// @brief Flushes what this rank buffered (collective: see flush()) within the start-up
  /// timeout, logging when that fails; then unregisters. Flush first to see its errors.
  ~Dict() = default;
  Dict(const Dict&) = delete;
  Dict& operator=(const Dict&) = delete;

  /// @brief `d[k] = v`: inserts @p k or assigns its value. One call to the owner (none when
  /// this rank owns @p k). Blocks until it is done.
  /// The owner answers every call at once (nothing is queued), so @p deadline and @p token
  /// only bound the wait for an owner that is not making progress: once they pass, the call
  /// is cancelled at the owner and an answer that still comes is taken (the insert happened).
  /// @throws BrokenExecutor when the owner rank was lost; InvalidStateError when the Runtime
  /// is gone; TimeoutError when the owner answers neither the call nor its cancel within the
  /// start-up timeout after @p deadline (or @p token) passed.
  void insert(const K& k, const V& v, const Deadline& deadline = {}, CancellationToken token = {}) {
    core_.insert(key(k), wire::serialize(v), deadline, &token, "Dict::insert");
  }
  /// @brief insert() waiting at most @p timeout. @throws ValueError for a negative timeout.
  template <class Rep, class Period>
  void insert(const K& k, const V& v, std::chrono::duration<Rep, Period> timeout) {
    insert(k, v, Deadline::after(timeout, "Dict::insert"));
  }

  /// @brief `d.get(k)`: the value of @p k, or std::nullopt. @throws as insert().
  std::optional<V> get(const K& k, const Deadline& deadline = {}, CancellationToken token = {}) {
    auto bytes = core_.get(key(k), deadline, &token, "Dict::get");
    if (!bytes) return std::nullopt;
    return wire::deserialize<V>(*bytes);
  }
  template <class Rep, class Period>
  std::optional<V> get(const K& k, std::chrono::duration<Rep, Period> timeout) {
    return get(k, Deadline::after(timeout, "Dict::get"));
  }

  /// @brief `d[k]` for reading: the value of @p k.
  /// @throws KeyError "Dict::at: no such key (owner rank r)" when @p k is missing; as insert().
  V at(const K& k, const Deadline& deadline = {}, CancellationToken token = {}) {
    std::string kb = key(k);
    const int o = core_.owner(kb);
    auto bytes = core_.get(std::move(kb), deadline, &token, "Dict::at");
    if (!bytes) throw KeyError("Dict::at: no such key (its owner is rank " + std::to_string(o) + ")");
    return wire::deserialize<V>(*bytes);
  }
  template <class Rep, class Period>
  V at(const K& k, std::chrono::duration<Rep, Period> timeout) {
    return at(k, Deadline::after(timeout, "Dict::at"));
  }

  /// @brief `k in d`. @throws as insert().
  bool contains(const K& k, const Deadline& deadline = {}, CancellationToken token = {}) {
    return core_.contains(key(k), deadline, &token, "Dict::contains");
  }
  template <class Rep, class Period>
  bool contains(const K& k, std::chrono::duration<Rep, Period> timeout) {
    return contains(k, Deadline::after(timeout, "Dict::contains"));
  }

  /// @brief `d.pop(k, None) is not None`: removes @p k. @return whether it was there.
  /// @throws as insert().
  bool erase(const K& k, const Deadline& deadline = {}, CancellationToken token = {}) {
    return core_.erase(key(k), deadline, &token, "Dict::erase");
  }
  template <class Rep, class Period>
  bool erase(const K& k, std::chrono::duration<Rep, Period> timeout) {
    return erase(k, Deadline::after(timeout, "Dict::erase"));
  }

  /// @brief Atomic read-modify-write: `d[k] = fn(d.get(k, V{}))`, run at the owner under its
  /// mutex (no other operation on the shard interleaves). A missing key starts from `V{}`.
  /// @param fn a sendable callable `V(V old)` (wire/callable.hpp: a lambda capturing values
  /// only, `troupe::remote<&f>`, a registered function pointer) returning exactly V.
  /// It runs under the owner's shard mutex (on its message thread, or on this thread when
  /// this rank owns @p k): it must not call this Dict, and should be short.
  /// @return the new value.
  /// @throws what @p fn threw (rebuilt as itself where troupe can; the entry is unchanged);
  /// as insert().
  template <class F>
  V update(const K& k, const F& fn, const Deadline& deadline = {}, CancellationToken token = {}) {
    check_updater<F>();
    std::string kb = key(k);
    if (core_.owner(kb) == core_.rank()) {
      return wire::deserialize<V>(core_.update_here(kb, local_update(fn), "Dict::update"));
    }
    return wire::deserialize<V>(
        core_.update_remote(std::move(kb), encode_fn(fn), initial_, deadline, &token, "Dict::update"));
  }
  template <class F, class Rep, class Period>
  V update(const K& k, const F& fn, std::chrono::duration<Rep, Period> timeout) {
    return update(k, fn, Deadline::after(timeout, "Dict::update"));
  }

  /// @brief insert() without waiting: applied at the owner by the next flush() at the latest
  /// (at once when this rank owns @p k). Never blocks (sending a full buffer may wait for
  /// the messaging layer's flow control).
  /// @throws InvalidStateError when the Runtime is gone.
  void async_insert(const K& k, const V& v) { core_.async_insert(key(k), wire::serialize(v), "Dict::async_insert"); }
  /// @brief erase() without waiting (as async_insert()).
  void async_erase(const K& k) { core_.async_erase(key(k), "Dict::async_erase"); }
  /// @brief update() without waiting (as async_insert()). An exception thrown by @p fn at the
  /// owner leaves that entry unchanged and is reported by the next flush() (on every rank).
  /// When this rank owns @p k it runs here, now, and its exception propagates to the caller.
  template <class F>
  void async_update(const K& k, const F& fn) {
    check_updater<F>();
    std::string kb = key(k);
    if (core_.owner(kb) == core_.rank()) {
      (void)core_.update_here(kb, local_update(fn), "Dict::async_update");
      return;
    }
    core_.async_update_remote(std::move(kb), encode_fn(fn), initial_, "Dict::async_update");
  }

  /// @brief Collective: returns once every async operation that any rank issued before its
  /// flush() has been applied at its owner, on every rank (one MPI_Ialltoall of batch counts,
  /// a wait for those batches, one MPI_Iallreduce).
  /// @throws TimeoutError "Dict::flush: ..." when @p deadline passes first (a rank did not
  /// call flush, or its batches did not arrive): the Dict's collective calls are then
  /// unusable on this rank; CancelledError when @p token stopped it (likewise); troupe::Error
  /// when an async_update's fn threw at its owner (every rank throws, naming the count);
  /// InvalidStateError when called from a thread that may not call MPI, after an earlier
  /// collective call gave up, or when the Runtime is gone.
  void flush(const Deadline& deadline = {}, CancellationToken token = {}) {
    core_.flush(deadline, &token, "Dict::flush");
  }
  template <class Rep, class Period>
  void flush(std::chrono::duration<Rep, Period> timeout) {
    flush(Deadline::after(timeout, "Dict::flush"));
  }

  /// @brief Collective `len(d)`: the number of entries applied on every rank (flush first to
  /// count async operations). One MPI_Iallreduce. @throws as flush() (TimeoutError "Dict::size").
  std::uint64_t size(const Deadline& deadline = {}) { return core_.global_size(deadline, "Dict::size"); }
  template <class Rep, class Period>
  std::uint64_t size(std::chrono::duration<Rep, Period> timeout) {
    return size(Deadline::after(timeout, "Dict::size"));
  }
  /// @brief The number of entries this rank owns. Never blocks (but for the shard's mutex).
  std::size_t local_size() const { return core_.local_size("Dict::local_size"); }

  /// @brief Calls `fn(const K&, V&)` on every entry this rank owns, under the shard's mutex
  /// (a changed value is stored back). @p fn must not call this Dict (it would deadlock on the
  /// mutex) and should be short: the owner answers no other rank meanwhile.
  /// @throws what @p fn throws (the entries visited before keep their changes).
  template <class F>
  void for_each(F&& fn) {
    core_.for_each(
        [&fn](std::string_view kb, std::vector<std::byte>& vb) {
          const K k = wire::deserialize<K>(
              std::span<const std::byte>(reinterpret_cast<const std::byte*>(kb.data()), kb.size()));
          V v = wire::deserialize<V>(vb);
          fn(static_cast<const K&>(k), v);
          vb = wire::serialize(v);
        },
        "Dict::for_each");
  }

  /// @brief Collective: every entry, on rank @p root (an empty map elsewhere). Flush first to
  /// include async operations. One MPI_Igather and one MPI_Igatherv.
  /// @throws ValueError when @p root is not a rank, or a rank's share exceeds 2 GiB; as flush().
  std::map<K, V> gather(int root = 0, const Deadline& deadline = {}) {
    std::map<K, V> all;
    for (auto& [kb, vb] : core_.gather(root, deadline, "Dict::gather")) {
      all.emplace(wire::deserialize<K>(kb), wire::deserialize<V>(vb));
    }
    return all;
  }
  template <class Rep, class Period>
  std::map<K, V> gather(int root, std::chrono::duration<Rep, Period> timeout) {
    return gather(root, Deadline::after(timeout, "Dict::gather"));
  }

  /// @brief The rank that owns @p k.
  int owner(const K& k) const { return core_.owner(key(k)); }
  /// @brief This rank, and the number of ranks (0 and 1 for Scope::Threads).
  int rank() const noexcept { return core_.rank(); }
  int ranks() const noexcept { return core_.size(); }
  /// @brief The scope given at construction.
  Scope scope() const noexcept { return core_.scope(); }

 private:
  static std::string key(const K& k) {
    wire::Writer w;
    w.write(k);
    const auto& b = w.buffer();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }

  template <class F>
  static void check_updater() {
    static_assert(wire::SendableCallable<F>,
                  "troupe::Dict::update: fn must be a sendable callable (a lambda capturing values only, "
                  "troupe::remote<&f>, or a registered function pointer; see docs/remote-callables.md)");
    if constexpr (wire::SendableCallable<F>) {
      static_assert(std::is_invocable_v<const F&, V&&> || std::is_invocable_v<const F&, V&>,
                    "troupe::Dict::update: fn must be callable as fn(V old)");
      static_assert(std::is_same_v<wire::call_result_t<F, V>, V>,
                    "troupe::Dict::update: fn must return exactly V (write the lambda as [](V old) -> V { ... })");
    }
  }

  // The call as the owner reads it: [callable id][state]; the owner appends the argument.
  template <class F>
  std::vector<std::byte> encode_fn(const F& fn) const {
    wire::Writer w;
    wire::encode_call(w, fn, V{});
    w.buffer().resize(w.size() - initial_.size());  // V{}'s encoding is the last thing written
    return w.take();
  }

  template <class F>
  static detail::DictCore::LocalUpdate local_update(const F& fn) {
    return [&fn](const std::vector<std::byte>* old) {
      V v = old != nullptr ? wire::deserialize<V>(*old) : V{};
      F f = fn;
      if constexpr (std::is_invocable_v<F&, V&&>) {
        return wire::serialize(static_cast<V>(f(std::move(v))));
      } else {
        return wire::serialize(static_cast<V>(f(v)));
      }
    };
  }

  mutable detail::DictCore core_;
  std::vector<std::byte> initial_;  // the encoding of V{}
};

}  // namespace troupe
