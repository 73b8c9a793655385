// troupe::Dict's machinery over encoded keys and values: the shard each rank owns (a hash
// table under a mutex, the host side of the hub object), blocking calls to a key's owner,
// per-destination batches of async operations, and the collective flush (an MPI_Ialltoall of
// batch counts, a wait for those batches, an MPI_Iallreduce). docs/dict.md states the
// protocol and why flush is exact.
#include "troupe/across/dict.hpp"

#include <mpi.h>

#include <atomic>
#include <climits>
#include <exception>
#include <mutex>
#include <string>
#include <unordered_map>

#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/detail/text.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/arrival.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/detail/rma_window.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/wire/callable.hpp"
#include "troupe/wire/exception.hpp"

namespace troupe::detail {

namespace {

// Calls to the owner of a key (replied at once: nothing ever parks) and the batch notice.
enum Op : std::uint32_t { kInsert = 1, kGet = 2, kContains = 3, kErase = 4, kUpdate = 5, kBatch = 6 };
// The entries of a batch: [kind][key] then, for an insert, [value]; for an update, [call][initial].
enum Kind : std::uint8_t { kAsyncInsert = 1, kAsyncErase = 2, kAsyncUpdate = 3 };
enum Status : std::uint8_t { kFnFailed = kFirstObjectStatus };

struct BytesHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using Shard = std::unordered_map<std::string, std::vector<std::byte>, BytesHash, std::equal_to<>>;

// Length-prefixed bytes, read without a copy.
void put_bytes(wire::Writer& w, const void* p, std::size_t n) {
  w.write_length(n);
  w.write_bytes(p, n);
}
void put_bytes(wire::Writer& w, std::string_view s) { put_bytes(w, s.data(), s.size()); }
void put_bytes(wire::Writer& w, const std::vector<std::byte>& v) { put_bytes(w, v.data(), v.size()); }
std::span<const std::byte> take_bytes(wire::Reader& r) {
  const auto n = r.read_length("Dict bytes", 1);
  return r.read_view(static_cast<std::size_t>(n));
}
std::string_view as_view(std::span<const std::byte> b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}
std::vector<std::byte> as_vector(std::span<const std::byte> b) { return std::vector<std::byte>(b.begin(), b.end()); }

// `call` is [callable id][state]; the argument is the current value (or V{}'s encoding).
std::vector<std::byte> invoke_update(std::span<const std::byte> call, std::span<const std::byte> arg) {
  wire::Writer in;
  in.reserve(call.size() + arg.size());
  in.write_bytes(call.data(), call.size());
  in.write_bytes(arg.data(), arg.size());
  wire::Reader r(in.buffer());
  wire::Writer out;
  wire::decode_and_invoke(r, out);
  return out.take();
}

// The buffers and MPI requests of a collective call that gave up: MPI may still write into
// them when the missing ranks post their part, and a non-blocking collective's request can
// be neither cancelled nor freed, so they are kept, reachable, for the process's life.
struct Coll {
  MPI_Request req = MPI_REQUEST_NULL;
  std::vector<std::uint64_t> a, b;
  std::vector<int> counts, displs;
  std::vector<std::byte> bytes_in, bytes_out;
};
void keep_forever(std::unique_ptr<Coll> c) {
  static std::mutex mu;
  static auto* kept = new std::vector<std::unique_ptr<Coll>>();
  std::lock_guard lock(mu);
  kept->push_back(std::move(c));
}

}  // namespace

// The shard this rank owns, and the counts of batches applied here per source rank.
class DictHost final : public Hosted {
 public:
  DictHost(int rank, int size)
      : rank_(rank),
        size_(size),
        applied_(std::make_unique<std::atomic<std::uint64_t>[]>(static_cast<std::size_t>(size))) {
    for (int s = 0; s < size; ++s) applied_[static_cast<std::size_t>(s)].store(0);
  }
  void attach(Hub* hub) { hub_ = hub; }

  void on_call(int src, std::uint64_t call, std::uint32_t op, wire::Reader& args) override {
    switch (op) {
      case kInsert: {
        const auto key = as_view(take_bytes(args));
        auto value = as_vector(take_bytes(args));
        insert(key, std::move(value));
        hub_->reply(src, call, kReplyOk);
        return;
      }
      case kGet: {
        auto v = get(as_view(take_bytes(args)));
        hub_->reply(src, call, kReplyOk, pack(v));
        return;
      }
      case kContains:
        hub_->reply(src, call, kReplyOk, pack(contains(as_view(take_bytes(args)))));
        return;
      case kErase:
        hub_->reply(src, call, kReplyOk, pack(erase(as_view(take_bytes(args)))));
        return;
      case kUpdate: {
        const auto key = as_view(take_bytes(args));
        const auto fn = take_bytes(args);
        const auto initial = take_bytes(args);
        std::vector<std::byte> result;
        try {
          result = update(key, fn, initial);
        } catch (...) {
          wire::Writer w;
          wire::encode_exception(w, std::current_exception(), rank_, "", size_);
          hub_->reply(src, call, kFnFailed, w.take());
          return;
        }
        hub_->reply(src, call, kReplyOk, std::move(result));
        return;
      }
      case kBatch: {
        {
          std::lock_guard lock(mu_);
          while (args.remaining() != 0) {
            const auto kind = args.read<std::uint8_t>();
            const auto key = as_view(take_bytes(args));
            switch (kind) {
              case kAsyncInsert: {
                auto v = as_vector(take_bytes(args));
                put_locked(key, std::move(v));
                break;
              }
              case kAsyncErase:
                erase_locked(key);
                break;
              case kAsyncUpdate: {
                const auto fn = take_bytes(args);
                const auto initial = take_bytes(args);
                try {
                  update_locked(key, fn, initial);
                } catch (const wire::DecodeError&) {
                  throw;
                } catch (...) {
                  note_failure(describe_current_exception());
                }
                break;
              }
              default:
                throw wire::DecodeError("Dict: unknown batch entry " + std::to_string(kind));
            }
          }
        }
        applied_[static_cast<std::size_t>(src)].fetch_add(1, std::memory_order_release);
        word_.notify_all();
        return;
      }
      default:
        throw wire::DecodeError("Dict: unknown operation " + std::to_string(op));
    }
  }

  void on_cancel(int, std::uint64_t) override {}  // nothing parks: every call is answered at once

  void on_lost(int rank) override {
    {
      std::lock_guard lock(mu_);
      if (lost_.empty()) lost_ = "rank " + std::to_string(rank) + " was lost";
    }
    lost_flag_.store(true, std::memory_order_release);
    word_.notify_all();
  }

  void on_close() override {
    closed_.store(true, std::memory_order_release);
    word_.notify_all();
  }

  // The operations, under the shard's mutex (also called directly for keys this rank owns).
  void insert(std::string_view key, std::vector<std::byte> value) {
    std::lock_guard lock(mu_);
    put_locked(key, std::move(value));
  }
  std::optional<std::vector<std::byte>> get(std::string_view key) {
    std::lock_guard lock(mu_);
    auto it = shard_.find(key);
    if (it == shard_.end()) return std::nullopt;
    return it->second;
  }
  bool contains(std::string_view key) {
    std::lock_guard lock(mu_);
    return shard_.find(key) != shard_.end();
  }
  bool erase(std::string_view key) {
    std::lock_guard lock(mu_);
    return erase_locked(key);
  }
  std::vector<std::byte> update(std::string_view key, std::span<const std::byte> fn,
                                std::span<const std::byte> initial) {
    std::lock_guard lock(mu_);
    return update_locked(key, fn, initial);
  }
  std::vector<std::byte> update_here(const std::string& key, const DictCore::LocalUpdate& fn) {
    std::lock_guard lock(mu_);
    auto it = shard_.find(std::string_view(key));
    auto v = fn(it == shard_.end() ? nullptr : &it->second);
    if (it == shard_.end()) {
      shard_.emplace(key, v);
    } else {
      it->second = v;
    }
    return v;
  }
  std::size_t local_size() {
    std::lock_guard lock(mu_);
    return shard_.size();
  }
  void for_each(const DictCore::Visit& fn) {
    std::lock_guard lock(mu_);
    for (auto& [k, v] : shard_) fn(k, v);
  }
  // The shard, encoded as [key][value] pairs.
  std::vector<std::byte> encode_all() {
    std::lock_guard lock(mu_);
    wire::Writer w;
    for (const auto& [k, v] : shard_) {
      put_bytes(w, k);
      put_bytes(w, v);
    }
    return w.take();
  }

  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  bool lost() const noexcept { return lost_flag_.load(std::memory_order_acquire); }
  std::string lost_reason() {
    std::lock_guard lock(mu_);
    return lost_;
  }
  std::uint64_t applied(int src) const noexcept {
    return applied_[static_cast<std::size_t>(src)].load(std::memory_order_acquire);
  }
  WaitWord& word() noexcept { return word_; }
  // The async update failures since the last flush: (count, first description).
  std::pair<std::uint64_t, std::string> take_failures() {
    std::lock_guard lock(mu_);
    auto r = std::make_pair(failures_, std::move(first_failure_));
    failures_ = 0;
    first_failure_.clear();
    return r;
  }

 private:
  void put_locked(std::string_view key, std::vector<std::byte> value) {
    auto it = shard_.find(key);
    if (it == shard_.end()) {
      shard_.emplace(std::string(key), std::move(value));
    } else {
      it->second = std::move(value);
    }
  }
  bool erase_locked(std::string_view key) {
    auto it = shard_.find(key);
    if (it == shard_.end()) return false;
    shard_.erase(it);
    return true;
  }
  std::vector<std::byte> update_locked(std::string_view key, std::span<const std::byte> fn,
                                       std::span<const std::byte> initial) {
    auto it = shard_.find(key);
    auto v = invoke_update(fn, it == shard_.end() ? initial : std::span<const std::byte>(it->second));
    if (it == shard_.end()) {
      shard_.emplace(std::string(key), v);
    } else {
      it->second = v;
    }
    return v;
  }
  void note_failure(std::string what) {
    if (failures_++ == 0) first_failure_ = std::move(what);
  }

  const int rank_;
  const int size_;
  Hub* hub_ = nullptr;
  std::mutex mu_;
  Shard shard_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> applied_;
  WaitWord word_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> lost_flag_{false};
  std::string lost_;
  std::uint64_t failures_ = 0;
  std::string first_failure_;
};

// This rank's buffer of async operations for one destination, and the batches sent to it.
struct DictCore::Out {
  std::mutex mu;
  wire::Writer w;
  std::uint64_t sent = 0;
};

struct DictCore::Mpi {
  MPI_Comm comm = MPI_COMM_NULL;
};

DictCore::DictCore(Scope scope, const DictOptions& options, const char* api)
    : scope_(scope), batch_bytes_(options.batch_bytes) {
  if (options.batch_bytes == 0) throw ValueError(std::string(api) + ": batch_bytes must be >= 1, got 0");
  const Deadline startup = Deadline::after(settings().startup_timeout, api);
  auto hub = Hub::of(scope, startup, api);
  rank_ = hub->rank();
  size_ = hub->size();
  host_ = std::make_shared<DictHost>(rank_, size_);
  host_->attach(hub.get());
  if (!hub->local()) {
    // The private communicator of the collective calls, made within the start-up timeout.
    mpi_ = std::make_unique<Mpi>();
    mpi_->comm = collective_dup(hub->comm(), Runtime::current()->comm(), startup, api);
  }
  try {
    handle_ = std::make_unique<Handle>(scope, host_, 0, api);
  } catch (...) {
    if (mpi_) TROUPE_MPI_UNCHECKED(MPI_Comm_free(&mpi_->comm));
    throw;
  }
  out_ = std::make_unique<Out[]>(static_cast<std::size_t>(size_));
}

DictCore::~DictCore() {
  if (mpi_ && broken_.empty() && !host_->closed()) {
    // Collective, like the construction: what this rank buffered is applied, and no rank
    // unregisters while another still sends it batches.
    try {
      flush(Deadline::after(settings().startup_timeout, "Dict::~Dict"), nullptr, "Dict::~Dict");
    } catch (const std::exception& e) {
      log(std::string("Dict::~Dict: the final flush failed (flush before destroying a Dict): ") + e.what());
    }
  }
  handle_.reset();
  if (mpi_ && broken_.empty()) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) TROUPE_MPI_UNCHECKED(MPI_Comm_free(&mpi_->comm));
  }
}

int DictCore::owner(std::string_view key) const noexcept {
  if (size_ <= 1) return 0;
  return static_cast<int>(wire::fnv1a64(key) % static_cast<std::uint64_t>(size_));
}

void DictCore::check_live(const char* api) const {
  if (host_->closed()) {
    throw InvalidStateError(std::string(api) +
                            ": the troupe::Runtime of this Dict was released (or the Dict is being destroyed)");
  }
}

void DictCore::check_collective(const char* api) const {
  check_live(api);
  if (!broken_.empty()) {
    throw InvalidStateError(std::string(api) + ": an earlier collective call of this Dict gave up on rank " +
                            std::to_string(rank_) + " (" + broken_ +
                            "); its MPI requests may still be pending, so the Dict's collective calls cannot be "
                            "used again (per-key operations still work)");
  }
  if (mpi_ && !handle_->hub().may_call_mpi()) {
    throw InvalidStateError(std::string(api) +
                            ": below MPI_THREAD_MULTIPLE only the thread that built the Runtime's first cross-rank "
                            "object may call a Dict's collective calls");
  }
}

void DictCore::abandon(const char* api, const std::string& why) {
  if (broken_.empty()) broken_ = std::string(api) + ": " + why;
}

std::vector<std::byte> DictCore::call_owner(int owner, std::uint32_t op, std::vector<std::byte> args,
                                            const Deadline& deadline, const std::stop_token* token, const char* api,
                                            std::uint8_t* status) {
  check_live(api);
  send_buffer(owner);  // this rank's earlier async ops to that owner go first (FIFO per pair)
  Reply r = handle_->hub().call(owner, handle_->id(), op, std::move(args), deadline, token, api);
  if (r.status == kReplyLostHost) {
    throw BrokenExecutor(std::string(api) + ": rank " + std::to_string(owner) + ", which owns this key, was lost");
  }
  if (r.status == kReplyGone) {
    throw InvalidStateError(std::string(api) + ": the Dict was destroyed on rank " + std::to_string(owner) +
                            " (or its Runtime is closing)");
  }
  if (r.status == kReplyCancelled) {  // never parked, so only a deadline that passed first
    throw TimeoutError(std::string(api) + ": rank " + std::to_string(owner) + " did not answer in time");
  }
  if (status != nullptr) *status = r.status;
  return std::move(r.body);
}

void DictCore::insert(std::string key, std::vector<std::byte> value, const Deadline& deadline,
                      const std::stop_token* token, const char* api) {
  const int o = owner(key);
  if (o == rank_) {
    check_live(api);
    host_->insert(key, std::move(value));
    return;
  }
  wire::Writer w;
  put_bytes(w, key);
  put_bytes(w, value);
  (void)call_owner(o, kInsert, w.take(), deadline, token, api);
}

std::optional<std::vector<std::byte>> DictCore::get(std::string key, const Deadline& deadline,
                                                    const std::stop_token* token, const char* api) {
  const int o = owner(key);
  if (o == rank_) {
    check_live(api);
    return host_->get(key);
  }
  wire::Writer w;
  put_bytes(w, key);
  return wire::deserialize<std::optional<std::vector<std::byte>>>(call_owner(o, kGet, w.take(), deadline, token, api));
}

bool DictCore::contains(std::string key, const Deadline& deadline, const std::stop_token* token, const char* api) {
  const int o = owner(key);
  if (o == rank_) {
    check_live(api);
    return host_->contains(key);
  }
  wire::Writer w;
  put_bytes(w, key);
  return wire::deserialize<bool>(call_owner(o, kContains, w.take(), deadline, token, api));
}

bool DictCore::erase(std::string key, const Deadline& deadline, const std::stop_token* token, const char* api) {
  const int o = owner(key);
  if (o == rank_) {
    check_live(api);
    return host_->erase(key);
  }
  wire::Writer w;
  put_bytes(w, key);
  return wire::deserialize<bool>(call_owner(o, kErase, w.take(), deadline, token, api));
}

std::vector<std::byte> DictCore::update_remote(std::string key, std::vector<std::byte> call,
                                               std::vector<std::byte> initial, const Deadline& deadline,
                                               const std::stop_token* token, const char* api) {
  const int o = owner(key);
  wire::Writer w;
  put_bytes(w, key);
  put_bytes(w, call);
  put_bytes(w, initial);
  std::uint8_t status = kReplyOk;
  auto body = call_owner(o, kUpdate, w.take(), deadline, token, api, &status);
  if (status == kFnFailed) {
    wire::Reader r(body);
    std::rethrow_exception(wire::decode_exception(r));
  }
  return body;
}

std::vector<std::byte> DictCore::update_here(const std::string& key, const LocalUpdate& fn, const char* api) {
  check_live(api);
  return host_->update_here(key, fn);
}

void DictCore::send_buffer(int dest) {
  if (dest == rank_) return;
  Out& o = out_[static_cast<std::size_t>(dest)];
  std::lock_guard lock(o.mu);
  if (o.w.size() == 0) return;
  handle_->notice(dest, kBatch, o.w.take());
  ++o.sent;
}

void DictCore::append_async(int dest, std::uint8_t kind, const std::string& key, const std::vector<std::byte>* a,
                            const std::vector<std::byte>* b) {
  Out& o = out_[static_cast<std::size_t>(dest)];
  std::lock_guard lock(o.mu);
  o.w.write(kind);
  put_bytes(o.w, key);
  if (a != nullptr) put_bytes(o.w, *a);
  if (b != nullptr) put_bytes(o.w, *b);
  if (o.w.size() >= batch_bytes_) {
    // Sent under the buffer's mutex: the batches to one owner leave in the order they were
    // filled (the messaging layer keeps that order per pair of ranks).
    handle_->notice(dest, kBatch, o.w.take());
    ++o.sent;
  }
}

void DictCore::async_insert(std::string key, std::vector<std::byte> value, const char* api) {
  check_live(api);
  const int o = owner(key);
  if (o == rank_) {
    host_->insert(key, std::move(value));
    return;
  }
  append_async(o, kAsyncInsert, key, &value, nullptr);
}

void DictCore::async_erase(std::string key, const char* api) {
  check_live(api);
  const int o = owner(key);
  if (o == rank_) {
    (void)host_->erase(key);
    return;
  }
  append_async(o, kAsyncErase, key, nullptr, nullptr);
}

void DictCore::async_update_remote(std::string key, std::vector<std::byte> call, std::vector<std::byte> initial,
                                   const char* api) {
  check_live(api);
  append_async(owner(key), kAsyncUpdate, key, &call, &initial);
}

void DictCore::flush(const Deadline& deadline, const std::stop_token* token, const char* api) {
  check_collective(api);
  if (!mpi_ || size_ == 1) return;  // every operation was applied where it was made
  auto c = std::make_unique<Coll>();
  c->a.resize(static_cast<std::size_t>(size_));
  c->b.resize(static_cast<std::size_t>(size_));
  for (int d = 0; d < size_; ++d) {
    if (d == rank_) continue;
    send_buffer(d);
    Out& o = out_[static_cast<std::size_t>(d)];
    std::lock_guard lock(o.mu);
    c->a[static_cast<std::size_t>(d)] = o.sent;  // counted once sent: every counted batch is on its way
  }
  auto give_up = [&](const std::string& what) {
    const bool cancelled = token != nullptr && token->stop_requested();
    abandon(api, what);
    keep_forever(std::move(c));
    if (cancelled) throw CancelledError(std::string(api) + ": cancelled while waiting for " + what);
    throw TimeoutError(std::string(api) + ": timed out on rank " + std::to_string(rank_) + " waiting for " + what +
                       "; the Dict's collective calls are unusable on this rank from now on");
  };
  // 1. How many batches each rank sent here (cumulative counts: per source, so FIFO order
  //    per pair makes "applied >= sent" exact even while other threads keep sending).
  TROUPE_MPI_CHECK(MPI_Ialltoall(c->a.data(), 1, MPI_UINT64_T, c->b.data(), 1, MPI_UINT64_T, mpi_->comm, &c->req));
  if (!wait_request(c->req, deadline, {}, token)) {
    give_up("every rank to call flush (MPI_Ialltoall of the batch counts)");
  }
  // 2. Those batches applied here.
  auto all_applied = [&] {
    if (host_->closed() || host_->lost()) return true;
    for (int s = 0; s < size_; ++s) {
      if (host_->applied(s) < c->b[static_cast<std::size_t>(s)]) return false;
    }
    return true;
  };
  WaitParams params;
  params.help = true;  // every rank reaches this point: nothing is granted to the waiter
  const WaitStatus st = host_->word().wait_status(all_applied, deadline, token, params);
  check_live(api);
  if (host_->lost()) {
    abandon(api, host_->lost_reason());
    throw BrokenExecutor(std::string(api) + ": " + host_->lost_reason());
  }
  if (st != WaitStatus::kReady) {
    std::string missing;
    for (int s = 0; s < size_; ++s) {
      const auto want = c->b[static_cast<std::size_t>(s)];
      const auto got = host_->applied(s);
      if (got < want) {
        missing += (missing.empty() ? "" : ", ") + std::to_string(want - got) + " from rank " + std::to_string(s);
      }
    }
    give_up("the batches sent to it (" + missing + ")");
  }
  // 3. Everybody applied everything (and learns whether an async update threw somewhere).
  auto [failed, first] = host_->take_failures();
  c->a[0] = failed;
  TROUPE_MPI_CHECK(MPI_Iallreduce(c->a.data(), c->b.data(), 1, MPI_UINT64_T, MPI_SUM, mpi_->comm, &c->req));
  if (!wait_request(c->req, deadline, {}, token)) give_up("every rank to apply its batches (MPI_Iallreduce)");
  if (c->b[0] != 0) {
    throw Error(std::string(api) + ": " + std::to_string(c->b[0]) +
                " async_update call(s) threw at their owner (those entries are unchanged)" +
                (failed != 0 ? "; the first here, on rank " + std::to_string(rank_) + ": " + first : std::string()));
  }
}

std::uint64_t DictCore::global_size(const Deadline& deadline, const char* api) {
  check_collective(api);
  if (!mpi_ || size_ == 1) return host_->local_size();
  auto c = std::make_unique<Coll>();
  c->a.assign(1, host_->local_size());
  c->b.assign(1, 0);
  TROUPE_MPI_CHECK(MPI_Iallreduce(c->a.data(), c->b.data(), 1, MPI_UINT64_T, MPI_SUM, mpi_->comm, &c->req));
  if (!wait_request(c->req, deadline, {})) {
    abandon(api, "every rank to call size (MPI_Iallreduce)");
    keep_forever(std::move(c));
    throw TimeoutError(std::string(api) + ": timed out on rank " + std::to_string(rank_) +
                       " waiting for every rank to call size; the Dict's collective calls are unusable on this rank "
                       "from now on");
  }
  return c->b[0];
}

std::size_t DictCore::local_size(const char* api) const {
  check_live(api);
  return host_->local_size();
}

void DictCore::for_each(const Visit& fn, const char* api) {
  check_live(api);
  host_->for_each(fn);
}

std::vector<std::pair<std::vector<std::byte>, std::vector<std::byte>>> DictCore::gather(int root,
                                                                                        const Deadline& deadline,
                                                                                        const char* api) {
  if (root < 0 || root >= size_) {
    throw ValueError(std::string(api) + ": root must be a rank in [0, " + std::to_string(size_) + "), got " +
                     std::to_string(root));
  }
  check_collective(api);
  auto c = std::make_unique<Coll>();
  c->bytes_out = host_->encode_all();
  if (mpi_ && size_ > 1) {
    if (c->bytes_out.size() > static_cast<std::size_t>(INT_MAX)) {
      abandon(api, "this rank's share exceeds 2 GiB");
      throw ValueError(std::string(api) + ": rank " + std::to_string(rank_) + "'s entries take " +
                       std::to_string(c->bytes_out.size()) + " bytes encoded; gather sends at most 2 GiB per rank");
    }
    auto give_up = [&](const char* what) {
      abandon(api, what);
      keep_forever(std::move(c));
      throw TimeoutError(std::string(api) + ": timed out on rank " + std::to_string(rank_) + " waiting for " + what +
                         "; the Dict's collective calls are unusable on this rank from now on");
    };
    c->a.assign(1, c->bytes_out.size());
    c->b.assign(static_cast<std::size_t>(size_), 0);
    TROUPE_MPI_CHECK(
        MPI_Igather(c->a.data(), 1, MPI_UINT64_T, c->b.data(), 1, MPI_UINT64_T, root, mpi_->comm, &c->req));
    if (!wait_request(c->req, deadline, {})) give_up("every rank to call gather (MPI_Igather)");
    std::size_t total = 0;
    if (rank_ == root) {
      c->counts.resize(static_cast<std::size_t>(size_));
      c->displs.resize(static_cast<std::size_t>(size_));
      for (int r = 0; r < size_; ++r) {
        const auto n = c->b[static_cast<std::size_t>(r)];
        if (total + n > static_cast<std::size_t>(INT_MAX)) {
          // The other ranks' Igatherv then waits until their deadline: the Dict is unusable.
          abandon(api, "the entries exceed 2 GiB");
          throw ValueError(std::string(api) + ": the entries of every rank take more than 2 GiB encoded");
        }
        c->counts[static_cast<std::size_t>(r)] = static_cast<int>(n);
        c->displs[static_cast<std::size_t>(r)] = static_cast<int>(total);
        total += n;
      }
      c->bytes_in.resize(total);
    }
    TROUPE_MPI_CHECK(MPI_Igatherv(c->bytes_out.data(), static_cast<int>(c->bytes_out.size()), MPI_BYTE,
                                  c->bytes_in.data(), c->counts.data(), c->displs.data(), MPI_BYTE, root, mpi_->comm,
                                  &c->req));
    if (!wait_request(c->req, deadline, {})) give_up("every rank's entries (MPI_Igatherv)");
  } else {
    c->bytes_in = std::move(c->bytes_out);
  }
  std::vector<std::pair<std::vector<std::byte>, std::vector<std::byte>>> all;
  if (rank_ != root) return all;
  wire::Reader r(c->bytes_in);
  while (r.remaining() != 0) {
    auto k = as_vector(take_bytes(r));
    auto v = as_vector(take_bytes(r));
    all.emplace_back(std::move(k), std::move(v));
  }
  return all;
}

}  // namespace troupe::detail
