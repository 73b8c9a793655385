#include "troupe/messaging/messenger.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <map>
#include <mutex>
#include <utility>

#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"

namespace troupe::messaging {

namespace {
// Collective keys: the n-th collective of this messenger (every rank calls them in the same
// order) in the high bits, then the count of lost ranks the attempt was made with (an
// attempt restarted after a loss never meets the old attempt's mail), then the tree step.
constexpr std::uint64_t kStepBits = 8;
constexpr std::uint64_t kEpochBits = 16;
constexpr std::uint64_t kBroadcastStep = 0x80;

std::uint64_t epoch_of(std::uint64_t key) { return (key >> kStepBits) & ((1u << kEpochBits) - 1); }

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

template <class T>
std::unique_ptr<std::atomic<T>[]> atomics(int n) {
  auto a = std::make_unique<std::atomic<T>[]>(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) a[static_cast<std::size_t>(i)].store(T{}, std::memory_order_relaxed);
  return a;
}
}  // namespace

struct Messenger::Impl {
  struct Outbox {
    std::mutex mu;
    std::vector<std::byte> batch;
  };

  MessengerOptions options;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<Outbox[]> out;
  int size = 1;
  int rank = 0;
  std::vector<Handler> handlers = std::vector<Handler>(kKindLimit);
  std::vector<BlocksHandler> blocks_handlers = std::vector<BlocksHandler>(kKindLimit);
  BrokenHandler on_broken;
  LostHandler on_lost;
  std::atomic<bool> started{false};

  // Quiescence counters (monotonic): counted records sent to and handled from each rank
  // (so a lost rank's traffic can be left out), work begun and ended.
  std::unique_ptr<std::atomic<std::uint64_t>[]> sent_to, handled_from;
  std::atomic<std::uint64_t> begun{0}, ended{0};

  // Failure detection (options.failure_timeout > 0): per peer, when it was last heard from,
  // how many things this rank waits on it for and since when, when it was last pinged;
  // lost ranks stay lost. lost_epoch counts them (the collectives' keys carry it).
  std::int64_t failure_ns = 0;
  std::unique_ptr<std::atomic<std::int64_t>[]> last_heard, watch_since, pinged_at;
  std::unique_ptr<std::atomic<int>[]> watching;
  std::unique_ptr<std::atomic<bool>[]> lost_flag, declared;
  std::atomic<int> watching_total{0};
  std::atomic<std::uint32_t> lost_epoch{0};
  std::int64_t next_scan = 0;   // the token holder's only
  std::vector<int> lost_order;  // under errors_mu
  std::atomic<std::uint64_t> records_sent{0}, records_handled{0}, mail_sent{0}, mail_received{0}, batches_sent{0},
      bad_records{0};

  // The mailbox, and the word its waiters sleep on (notified when mail arrives).
  std::mutex mail_mu;
  std::map<std::pair<int, std::uint64_t>, std::vector<std::byte>> mail;
  troupe::detail::WaitWord arrivals;
  std::uint64_t collective_seq = 0;  // the calling thread's only
  // Mail a collective attempt took (the calling thread's only): put back if it times out,
  // so that calling the collective again resumes it instead of waiting for mail already
  // taken (shutdown after a timed-out shutdown).
  bool in_collective = false;
  std::vector<std::pair<std::pair<int, std::uint64_t>, std::vector<std::byte>>> taken;

  mutable std::mutex errors_mu;
  std::vector<std::string> errors;

  void hand_off(int dest, Outbox& o) {  // o.mu held
    if (o.batch.empty()) return;
    if (lost_flag[dest].load(std::memory_order_acquire)) {  // nobody will read it
      o.batch.clear();
      return;
    }
    engine->send(dest, std::exchange(o.batch, {}));
    batches_sent.fetch_add(1, std::memory_order_relaxed);
  }

  // The destinations whose batch went from empty to non-empty since the last flush (pushed
  // by close() under the outbox's lock; lock order: an outbox, then pending_mu): a progress
  // round visits only these, not all P outboxes (docs/scaling.md).
  std::mutex pending_mu;
  std::vector<int> pending;

  // The latency bound: every progress round sends what is batched (under the token).
  void flush_all() {
    std::vector<int> todo;
    {
      std::lock_guard lock(pending_mu);
      if (pending.empty()) return;
      todo.swap(pending);
    }
    for (std::size_t i = 0; i < todo.size(); ++i) {
      try {
        std::lock_guard lock(out[todo[i]].mu);
        hand_off(todo[i], out[todo[i]]);
      } catch (...) {  // the engine is stopping: the rest stays pending for the final flush
        std::lock_guard lock(pending_mu);
        pending.insert(pending.end(), todo.begin() + static_cast<std::ptrdiff_t>(i), todo.end());
        throw;
      }
    }
    todo.clear();
    std::lock_guard lock(pending_mu);
    if (pending.empty()) pending.swap(todo);  // keeps the capacity: no allocation per round
  }

  // Every outbox, each under its lock (the last flush, when the messenger stops: it also
  // waits out a send that is appending a record right now).
  void flush_every_outbox() {
    for (int d = 0; d < size; ++d) {
      std::lock_guard lock(out[d].mu);
      hand_off(d, out[d]);
    }
  }

  // This messenger's progress for the one wait loop (core/detail/wait.hpp): any thread
  // that waits anywhere in troupe takes its messages off the wire (the FUNNELED case needs
  // it: without a progress thread only waiting threads move MPI).
  struct Source final : troupe::detail::ProgressSource {
    Impl* im = nullptr;
    bool try_progress() noexcept override {
      try {
        return im->engine->try_progress();
      } catch (...) {  // an MPI failure in a waiter's poll: the progress thread or the next
        return false;  // collective reports it
      }
    }
    std::chrono::nanoseconds linger() const noexcept override { return im->engine->driver_linger(); }
  } progress_source;
  bool registered = false;

  // The one wait of the messaging layer: the wait loop of core/detail/wait.hpp (spin, help
  // the pool, drive progress, nap with bounded back-off), until ready() or the deadline.
  // With a progress thread, mail wakes the waiter, so after the spin it sleeps instead of
  // polling: a serving rank's main thread waits in shutdown's collective for as long as the
  // root runs the program, and polling there cost 3-4% of a core (1% before); without one,
  // only waiters move MPI, so they poll.
  template <class Ready>
  bool wait_until(Ready ready, const Deadline& deadline, const char* api) {
    troupe::detail::WaitParams params;
    params.poll_while_asleep = !options.engine.progress_thread;
    return arrivals.wait(ready, deadline, nullptr, api, params);
  }

  // The error policy. The notice to the source goes out before anything else this rank
  // sends it afterwards, and the count is raised last: whoever sees the count knows the
  // owner was told and the notice is on its way.
  void fault(int source, const std::string& cause, bool tell_source, Messenger& self) noexcept {
    try {
      {
        std::lock_guard lock(errors_mu);
        errors.push_back("rank " + std::to_string(source) + ": " + cause);
      }
      if (tell_source && source >= 0 && source < size) {
        self.send(source, Kind::kBroken, [&](wire::Writer& w) { wire::save(w, BrokenRecord{cause}); });
      }
      if (on_broken) on_broken(source, cause);
    } catch (...) {  // the fault is counted below; nothing else can be done from here
    }
    bad_records.fetch_add(1, std::memory_order_seq_cst);
  }

  // --- failure detection ---------------------------------------------------------------
  // Called at the start of every progress round (under the token): pings the watched peers
  // that have been silent for a quarter of the timeout, and declares lost those silent for
  // all of it. The verdict goes to every other rank, and to this one through the engine's
  // inbox, so the handlers run outside the token like any delivery.
  void scan(Messenger& self) {
    if (failure_ns == 0 || watching_total.load(std::memory_order_relaxed) <= 0) return;
    const std::int64_t now = now_ns();
    const std::int64_t quarter = failure_ns / 4;
    if (now < next_scan) return;
    next_scan = now + std::max<std::int64_t>(quarter / 4, 100'000);
    for (int r = 0; r < size; ++r) {
      const auto i = static_cast<std::size_t>(r);
      if (r == rank || watching[i].load(std::memory_order_relaxed) <= 0 || lost_flag[i].load()) continue;
      const std::int64_t heard = std::max(last_heard[i].load(), watch_since[i].load());
      const std::int64_t silence = now - heard;
      if (silence >= failure_ns) {
        if (declared[i].exchange(true)) continue;
        const std::string cause = "no message from rank " + std::to_string(r) + " for " +
                                  std::to_string(silence / 1'000'000) + " ms while this rank waited on it (rank " +
                                  std::to_string(rank) + "'s failure detector, failure_timeout " +
                                  std::to_string(failure_ns / 1'000'000) + " ms)";
        const LostRecord rec{r, cause};
        // Every other rank, the lost one included: if it is only stalled, it learns that it
        // was given up on (its owner breaks) rather than carrying on unheard.
        for (int d = 0; d < size; ++d) {
          if (d != rank && !lost_flag[static_cast<std::size_t>(d)].load()) {
            self.send(d, Kind::kLost, [&](wire::Writer& w) { wire::save(w, rec); });
          }
        }
        std::vector<std::byte> batch;
        detail::append_frame(batch, static_cast<std::uint16_t>(Kind::kLost),
                             [&](wire::Writer& w) { wire::save(w, rec); });
        engine->deliver_here(rank, std::move(batch));
      } else if (silence >= quarter && now - pinged_at[i].load() >= quarter) {
        pinged_at[i].store(now);
        self.send(r, Kind::kPing, [](wire::Writer&) {});
      }
    }
  }

  // A verdict (ours or another rank's): the rank is lost for good.
  void declare_lost(int source, const LostRecord& rec, Messenger& self) {
    if (rec.rank < 0 || rec.rank >= size) throw wire::DecodeError("lost rank " + std::to_string(rec.rank));
    if (rec.rank == rank) {  // another rank gave up on this one: its traffic is gone
      if (on_broken) on_broken(source, "rank " + std::to_string(source) + " declared this rank lost: " + rec.cause);
      return;
    }
    const auto i = static_cast<std::size_t>(rec.rank);
    declared[i].store(true);
    if (lost_flag[i].exchange(true, std::memory_order_acq_rel)) return;
    {
      std::lock_guard lock(errors_mu);
      errors.push_back("rank " + std::to_string(rec.rank) + " lost: " + rec.cause);
      lost_order.push_back(rec.rank);
    }
    lost_epoch.fetch_add(1, std::memory_order_acq_rel);
    {
      std::lock_guard lock(out[rec.rank].mu);
      out[rec.rank].batch.clear();
    }
    arrivals.notify_all();  // collectives waiting on it start again without it
    (void)self;
    if (on_lost) on_lost(rec.rank, rec.cause);
  }

  void receive(int source, std::vector<std::byte> bytes, Messenger& self) noexcept {
    if (source != rank) {
      if (lost_flag[static_cast<std::size_t>(source)].load(std::memory_order_acquire)) return;  // lost for good
      last_heard[static_cast<std::size_t>(source)].store(now_ns(), std::memory_order_relaxed);
    }
    auto problem = detail::parse_batch(
        bytes, [&](std::uint16_t kind, std::span<const std::byte> record) { dispatch(source, kind, record, self); });
    if (problem) {
      fault(source, "malformed batch from rank " + std::to_string(source) + ": " + *problem, true, self);
    }
  }

  void dispatch(int source, std::uint16_t kind, std::span<const std::byte> record, Messenger& self,
                const std::shared_ptr<wire::BlockSet>& blocks = nullptr) noexcept {
    records_handled.fetch_add(1, std::memory_order_relaxed);
    const char* name = kind_name(kind);
    const bool is_counted = !name || counted(static_cast<Kind>(kind));
    std::string problem;
    try {
      wire::Reader in(record);
      if (blocks) in.attach_blocks(blocks);
      if (static_cast<Kind>(kind) == Kind::kMail) {
        MailRecord m;
        wire::load(in, m);
        if (in.remaining() != 0) throw wire::DecodeError(std::to_string(in.remaining()) + " bytes after the record");
        mail_received.fetch_add(1, std::memory_order_relaxed);
        {
          std::lock_guard lock(mail_mu);
          mail[{source, m.key}] = std::move(m.bytes);
        }
        arrivals.notify_all();  // only mail wakes the mailbox's waiters
      } else if (static_cast<Kind>(kind) == Kind::kPing) {
        self.send(source, Kind::kPong, [](wire::Writer&) {});
      } else if (static_cast<Kind>(kind) == Kind::kPong) {
        // heard from: receive() noted the time
      } else if (static_cast<Kind>(kind) == Kind::kLost) {
        LostRecord l;
        wire::load(in, l);
        declare_lost(source, l, self);
      } else if (static_cast<Kind>(kind) == Kind::kBroken) {
        BrokenRecord b;
        wire::load(in, b);
        {
          std::lock_guard lock(errors_mu);
          errors.push_back("rank " + std::to_string(source) + " reported: " + b.cause);
        }
        if (on_broken)
          on_broken(source, "rank " + std::to_string(source) + " could not use a record of this rank: " + b.cause);
      } else if (static_cast<Kind>(kind) == Kind::kBlocks) {
        dispatch_blocks(source, in, self);
      } else if (!name || !handlers[kind]) {
        problem = "record of unknown kind " + std::to_string(kind) + " (" + std::to_string(record.size()) + " bytes)";
      } else {
        handlers[kind](source, in);
        if (in.remaining() != 0) throw wire::DecodeError(std::to_string(in.remaining()) + " bytes after the record");
      }
    } catch (const std::exception& e) {
      problem = std::string("bad ") + (name ? name : "?") + " record (" + std::to_string(record.size()) +
                " bytes): " + e.what();
    } catch (...) {
      problem = std::string("bad ") + (name ? name : "?") + " record: unknown exception";
    }
    if (!problem.empty()) {
      fault(source, problem + " from rank " + std::to_string(source), static_cast<Kind>(kind) != Kind::kBroken, self);
    }
    if (is_counted) handled_from[static_cast<std::size_t>(source)].fetch_add(1, std::memory_order_seq_cst);
  }

  // --- large payloads (docs/wire.md, "Large payloads") -----------------------------------
  // Buffers of their own for the blocks of @p set (staged mode).
  static void stage(wire::BlockSet& set) {
    set.deferred = false;
    set.next = 0;
    set.dest.clear();
    set.staged.clear();
    for (const auto n : set.sizes) {
      set.staged.emplace_back(new std::byte[static_cast<std::size_t>(n)]);  // not zero-filled: MPI writes it
      set.dest.emplace_back(set.staged.back().get(), static_cast<std::size_t>(n));
    }
  }

  // A kBlocks frame: the head announces the bulk messages that follow from @p source on the
  // engine's bulk tag. They are always received (in order with the source's other blocks,
  // or every later record's blocks would land in the wrong place): into the value an
  // on_blocks handler decoded (deferred), into buffers of their own before the ordinary
  // handler runs (staged), or into buffers that are dropped (a record that failed). The
  // record is counted as handled, and its work ends, once its blocks arrived.
  void dispatch_blocks(int source, wire::Reader& in, Messenger& self) {
    BlocksHead head;
    wire::load(in, head);
    if (head.sizes.empty()) throw wire::DecodeError("a blocks record without blocks");
    for (const auto n : head.sizes) {
      if (n < wire::kBlockMin || n > (std::uint64_t{1} << 48)) {
        throw wire::DecodeError("a block of " + std::to_string(n) + " bytes");
      }
    }
    const std::uint16_t inner = head.kind;
    const char* name = kind_name(inner);
    const bool is_counted = !name || counted(static_cast<Kind>(inner));
    auto set = std::make_shared<wire::BlockSet>();
    set->sizes = std::move(head.sizes);
    const auto rest = in.read_view(in.remaining());
    begun.fetch_add(1, std::memory_order_seq_cst);  // quiescence waits for the blocks
    auto settle = [this, source, is_counted](bool count) noexcept {
      if (count && is_counted) handled_from[static_cast<std::size_t>(source)].fetch_add(1, std::memory_order_seq_cst);
      ended.fetch_add(1, std::memory_order_seq_cst);
    };
    const std::string from = " from rank " + std::to_string(source);
    if (name && !internal(static_cast<Kind>(inner)) && blocks_handlers[inner]) {
      std::function<void(bool)> then;
      std::string problem;
      try {
        set->deferred = true;
        wire::Reader r(rest);
        r.attach_blocks(set);
        then = blocks_handlers[inner](source, r);
        if (then && r.remaining() != 0) {
          throw wire::DecodeError(std::to_string(r.remaining()) + " bytes after the record");
        }
        if (then && set->dest.size() != set->sizes.size()) {
          throw wire::DecodeError("it used " + std::to_string(set->dest.size()) + " of its " +
                                  std::to_string(set->sizes.size()) + " blocks");
        }
      } catch (const std::exception& e) {
        problem = std::string("bad ") + name + " record with blocks (" + std::to_string(rest.size()) +
                  " bytes): " + e.what() + from;
        then = nullptr;
      }
      if (then) {
        engine->receive_bulk(source, set->dest, [this, &self, then, settle, set, from, source](bool ok) {
          try {
            then(ok);
          } catch (...) {  // the handler's completion must not throw; nothing to do here
          }
          if (!ok) fault(source, "the blocks of a record" + from + " could not be received", true, self);
          settle(true);
        });
        return;
      }
      if (!problem.empty()) fault(source, problem, true, self);
      drain(source, set, settle);
      return;
    }
    // Staged: the record waits for its blocks, then goes to the ordinary handler.
    try {
      stage(*set);
    } catch (...) {
      settle(true);
      throw;  // no memory for them: the owner breaks (dispatch's error policy)
    }
    std::vector<std::byte> record(rest.begin(), rest.end());
    engine->receive_bulk(source, set->dest, [this, &self, record, set, settle, inner, source, from](bool ok) {
      if (ok) {
        set->next = 0;
        dispatch(source, inner, record, self, set);  // counts it as handled
      } else {
        fault(source, "the blocks of a record" + from + " could not be received", true, self);
      }
      settle(!ok);
    });
  }

  // Receives @p set's blocks into buffers that are dropped (nobody can use them).
  template <class Settle>
  void drain(int source, const std::shared_ptr<wire::BlockSet>& set, Settle settle) {
    try {
      stage(*set);
    } catch (...) {
      settle(true);
      return;  // the source's later blocks are misaligned now, but its owner is broken
    }
    engine->receive_bulk(source, set->dest, [set, settle](bool) { settle(true); });
  }

  std::vector<int> live_ranks() const {
    std::vector<int> live;
    live.reserve(static_cast<std::size_t>(size));
    for (int r = 0; r < size; ++r) {
      if (!lost_flag[static_cast<std::size_t>(r)].load(std::memory_order_acquire)) live.push_back(r);
    }
    return live;
  }

  // Mail of attempts made before the latest loss can no longer be used.
  void purge_before(std::uint32_t epoch) {
    std::lock_guard lock(mail_mu);
    std::erase_if(mail, [&](const auto& kv) { return epoch_of(kv.first.second) < (epoch & 0xFFFF); });
  }
};

Messenger::Messenger(MPI_Comm comm, MessengerOptions options) : impl_(std::make_unique<Impl>()) {
  if (comm == MPI_COMM_NULL) throw ValueError("Messenger: communicator is MPI_COMM_NULL");
  if (options.batch_bytes < 64) {
    throw ValueError("Messenger: batch_bytes must be >= 64, got " + std::to_string(options.batch_bytes));
  }
  auto& im = *impl_;
  im.options = options;
  im.engine = std::make_unique<engine::Engine>(comm, options.engine);
  rank_ = im.engine->rank();
  size_ = im.engine->size();
  im.size = size_;
  im.rank = rank_;
  im.out = std::make_unique<Impl::Outbox[]>(static_cast<std::size_t>(size_));
  im.sent_to = atomics<std::uint64_t>(size_);
  im.handled_from = atomics<std::uint64_t>(size_);
  im.last_heard = atomics<std::int64_t>(size_);
  im.watch_since = atomics<std::int64_t>(size_);
  im.pinged_at = atomics<std::int64_t>(size_);
  im.watching = atomics<int>(size_);
  im.lost_flag = atomics<bool>(size_);
  im.declared = atomics<bool>(size_);
  if (options.failure_timeout.count() < 0) {
    throw ValueError("Messenger: failure_timeout must be >= 0 ms, got " +
                     std::to_string(options.failure_timeout.count()));
  }
  im.failure_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(options.failure_timeout).count();
  im.engine->on_receive(
      [this](int source, std::vector<std::byte> bytes) { impl_->receive(source, std::move(bytes), *this); });
  im.engine->on_round([this] {
    impl_->scan(*this);
    impl_->flush_all();
  });
}

Messenger::~Messenger() {
  if (impl_->registered) troupe::detail::remove_progress_source(&impl_->progress_source);  // waits out polls in flight
  try {
    impl_->flush_every_outbox();
  } catch (...) {  // stopping: what could not be handed over is abandoned
  }
  impl_->engine.reset();
}

void Messenger::on(Kind kind, Handler handler) {
  if (impl_->started.load()) throw InvalidStateError("Messenger::on: register handlers before start()");
  const auto k = static_cast<std::uint16_t>(kind);
  if (k >= kKindLimit || internal(kind)) {
    throw ValueError("Messenger::on: kind " + std::to_string(k) + " is not a client kind");
  }
  impl_->handlers[k] = std::move(handler);
}

void Messenger::on_blocks(Kind kind, BlocksHandler handler) {
  if (impl_->started.load()) throw InvalidStateError("Messenger::on_blocks: register handlers before start()");
  const auto k = static_cast<std::uint16_t>(kind);
  if (k >= kKindLimit || internal(kind)) {
    throw ValueError("Messenger::on_blocks: kind " + std::to_string(k) + " is not a client kind");
  }
  impl_->blocks_handlers[k] = std::move(handler);
}

void Messenger::queue_blocks(Outgoing& out, const std::vector<wire::Writer::Block>& blocks,
                             std::shared_ptr<const void> keep) {
  if (impl_->lost_flag[static_cast<std::size_t>(out.dest)].load(std::memory_order_acquire)) return;
  for (const auto& b : blocks) impl_->engine->send_bulk(out.dest, std::span<const std::byte>(b.data, b.size), keep);
}

void Messenger::on_broken(BrokenHandler handler) {
  if (impl_->started.load()) throw InvalidStateError("Messenger::on_broken: register before start()");
  impl_->on_broken = std::move(handler);
}

void Messenger::on_lost(LostHandler handler) {
  if (impl_->started.load()) throw InvalidStateError("Messenger::on_lost: register before start()");
  impl_->on_lost = std::move(handler);
}

void Messenger::watch(int peer, int delta) noexcept {
  auto& im = *impl_;
  if (peer < 0 || peer >= size_ || peer == rank_ || delta == 0) return;
  const auto i = static_cast<std::size_t>(peer);
  const int before = im.watching[i].fetch_add(delta, std::memory_order_acq_rel);
  if (before <= 0 && before + delta > 0) im.watch_since[i].store(now_ns(), std::memory_order_relaxed);
  im.watching_total.fetch_add(delta, std::memory_order_relaxed);
}

bool Messenger::is_lost(int peer) const noexcept {
  return peer >= 0 && peer < size_ && impl_->lost_flag[static_cast<std::size_t>(peer)].load();
}

std::vector<int> Messenger::lost() const {
  std::lock_guard lock(impl_->errors_mu);
  return impl_->lost_order;
}

void Messenger::start() {
  if (impl_->started.exchange(true)) throw InvalidStateError("Messenger::start: already started");
  impl_->engine->start();
  impl_->progress_source.im = impl_.get();
  troupe::detail::add_progress_source(&impl_->progress_source);
  impl_->registered = true;
}

Messenger::Outgoing Messenger::open(int dest, bool is_counted, const char* api) {
  if (dest < 0 || dest >= size_) {
    throw ValueError(std::string(api) + ": destination rank must be in [0, " + std::to_string(size_) + "), got " +
                     std::to_string(dest));
  }
  auto& o = impl_->out[dest];
  o.mu.lock();
  return Outgoing{&o.batch, &o, dest, o.batch.empty(), is_counted};
}

void Messenger::close(Outgoing& out, bool sent) noexcept {
  auto& im = *impl_;
  auto& o = *static_cast<Impl::Outbox*>(out.lock);
  bool handed = false;
  if (sent) {
    // Counted before the lock is released: nobody can flush, let alone handle, it before.
    if (out.counted) im.sent_to[static_cast<std::size_t>(out.dest)].fetch_add(1, std::memory_order_seq_cst);
    im.records_sent.fetch_add(1, std::memory_order_relaxed);
    if (o.batch.size() >= im.options.batch_bytes) {
      try {
        im.hand_off(out.dest, o);
        handed = true;
      } catch (...) {  // the engine is stopping: the batch stays for the final flush
      }
    }
    if (out.was_empty && !handed) {  // a batch to flush at the next round
      std::lock_guard lock(im.pending_mu);
      im.pending.push_back(out.dest);
    }
  }
  o.mu.unlock();
  if (sent && out.was_empty && !handed) im.engine->wake();  // someone must flush it soon
}

void Messenger::send_raw(int dest, std::uint16_t kind, std::span<const std::byte> record) {
  const bool is_counted = !kind_name(kind) || counted(static_cast<Kind>(kind));
  Outgoing out = open(dest, is_counted, "Messenger::send_raw");
  detail::append_frame(*out.batch, kind, [&](wire::Writer& w) { w.write_bytes(record.data(), record.size()); });
  close(out, true);
}

void Messenger::begin_work() noexcept { impl_->begun.fetch_add(1, std::memory_order_seq_cst); }
void Messenger::end_work() noexcept { impl_->ended.fetch_add(1, std::memory_order_seq_cst); }

void Messenger::post(int dest, std::uint64_t key, std::vector<std::byte> bytes) {
  impl_->mail_sent.fetch_add(1, std::memory_order_relaxed);
  send(dest, Kind::kMail, [&](wire::Writer& w) { wire::save(w, MailRecord{key, std::move(bytes)}); });
}

std::vector<std::byte> Messenger::take_in(int src, std::uint64_t key, const Deadline& deadline, const char* api,
                                          std::uint32_t epoch) {
  auto& im = *impl_;
  const auto slot = std::make_pair(src, key);
  std::vector<std::byte> got;
  bool restart = false;
  watch(src, +1);  // the failure detector watches whom this rank waits on
  struct Unwatch {
    Messenger& m;
    int src;
    ~Unwatch() { m.watch(src, -1); }
  } unwatch{*this, src};
  const bool ok = im.wait_until(
      [&] {
        {
          std::lock_guard lock(im.mail_mu);
          auto it = im.mail.find(slot);
          if (it != im.mail.end()) {
            got = std::move(it->second);
            im.mail.erase(it);
            if (im.in_collective) im.taken.emplace_back(slot, got);
            return true;
          }
        }
        restart = im.lost_epoch.load(std::memory_order_acquire) != epoch;
        return restart;
      },
      deadline, api);
  if (restart) throw Restart{};
  if (!ok) {
    throw TimeoutError(std::string(api) + ": timed out waiting for rank " + std::to_string(src) +
                       " (it, or a rank whose part comes through it, has not arrived)");
  }
  return got;
}

std::vector<std::byte> Messenger::take(int src, std::uint64_t key, const Deadline& deadline, const char* api) {
  for (;;) {
    if (is_lost(src)) throw BrokenExecutor(std::string(api) + ": rank " + std::to_string(src) + " was lost");
    try {
      return take_in(src, key, deadline, api, impl_->lost_epoch.load(std::memory_order_acquire));
    } catch (const Restart&) {  // some rank was lost: src itself is checked above
    }
  }
}

template <class Body>
auto Messenger::over_live(Body body, const char* api) {
  auto& im = *impl_;
  // The n-th collective keeps its number until it completes: one that timed out is resumed
  // by the next call (every rank calls the collectives in the same order).
  const std::uint64_t seq = im.collective_seq;
  struct Scope {
    Impl& im;
    explicit Scope(Impl& i) : im(i) { im.in_collective = true; }
    ~Scope() {
      im.in_collective = false;
      im.taken.clear();
    }
  } scope(im);
  for (;;) {
    const std::uint32_t epoch = im.lost_epoch.load(std::memory_order_acquire);
    const std::vector<int> live = im.live_ranks();
    const std::uint64_t key = seq << (kStepBits + kEpochBits) | (std::uint64_t{epoch} & 0xFFFF) << kStepBits;
    try {
      auto result = body(key, live, epoch);
      ++im.collective_seq;
      // Without a progress thread what the body sent last (a broadcast's children, a reduce's
      // parent) stays batched until this thread next waits in troupe, and a FUNNELED host may
      // go straight back to its own blocking MPI calls: the peers would wait for it forever.
      // One round hands it to MPI now (an eager-sized message then needs no more from us).
      if (!im.options.engine.progress_thread) {
        try {
          (void)im.engine->try_progress();
        } catch (...) {  // an MPI failure here: the next wait or collective reports it
        }
      }
      return result;
    } catch (const Restart&) {
      im.taken.clear();
      im.purge_before(im.lost_epoch.load(std::memory_order_acquire));
    } catch (const TimeoutError&) {
      std::lock_guard lock(im.mail_mu);
      for (auto& [slot, bytes] : im.taken) im.mail.try_emplace(slot, std::move(bytes));
      throw;
    }
    (void)api;
  }
}

namespace {
// A binomial tree over the ranks not lost, rooted at @p root: a rank's place in it.
struct Tree {
  const std::vector<int>& live;
  int p = 0, v = 0, root_at = 0;
  Tree(const std::vector<int>& l, int me, int root, const char* api) : live(l), p(static_cast<int>(l.size())) {
    const auto at = [&](int r) { return static_cast<int>(std::find(live.begin(), live.end(), r) - live.begin()); };
    root_at = at(root);
    if (root_at == p)
      throw BrokenExecutor(std::string(api) + ": its root, rank " + std::to_string(root) + ", was lost");
    v = (at(me) - root_at + p) % p;
  }
  int real(int vr) const { return live[static_cast<std::size_t>((vr + root_at) % p)]; }
};
}  // namespace

std::optional<std::vector<std::byte>> Messenger::reduce(std::vector<std::byte> mine, const Combine& combine, int root,
                                                        const Deadline& deadline) {
  if (root < 0 || root >= size_) {
    throw ValueError("Messenger::reduce: root must be in [0, " + std::to_string(size_) + "), got " +
                     std::to_string(root));
  }
  return over_live(
      [&](std::uint64_t key, const std::vector<int>& live,
          std::uint32_t epoch) -> std::optional<std::vector<std::byte>> {
        const Tree t(live, rank_, root, "Messenger::reduce");
        std::vector<std::byte> acc = mine;
        std::uint64_t step = 0;
        for (int mask = 1; mask < t.p; mask <<= 1, ++step) {
          if (t.v & mask) {  // hand what this subtree holds to the parent, and leave
            post(t.real(t.v - mask), key | step, std::move(acc));
            return std::nullopt;
          }
          if (t.v + mask < t.p) {
            acc =
                combine(std::move(acc), take_in(t.real(t.v + mask), key | step, deadline, "Messenger::reduce", epoch));
          }
        }
        return acc;
      },
      "Messenger::reduce");
}

std::vector<std::byte> Messenger::broadcast(std::vector<std::byte> value, int root, const Deadline& deadline) {
  if (root < 0 || root >= size_) {
    throw ValueError("Messenger::broadcast: root must be in [0, " + std::to_string(size_) + "), got " +
                     std::to_string(root));
  }
  return over_live([&](std::uint64_t key, const std::vector<int>& live,
                       std::uint32_t epoch) { return broadcast_in(value, root, deadline, key, live, epoch); },
                   "Messenger::broadcast");
}

std::vector<std::byte> Messenger::broadcast_in(std::vector<std::byte> value, int root, const Deadline& deadline,
                                               std::uint64_t key, const std::vector<int>& live, std::uint32_t epoch) {
  const Tree t(live, rank_, root, "Messenger::broadcast");
  key |= kBroadcastStep;
  int mask = 1;
  while (mask < t.p) {  // receive from the parent: this rank minus its lowest set bit
    if (t.v & mask) {
      value = take_in(t.real(t.v - mask), key, deadline, "Messenger::broadcast", epoch);
      break;
    }
    mask <<= 1;
  }
  for (mask >>= 1; mask > 0; mask >>= 1) {
    if (t.v + mask < t.p) post(t.real(t.v + mask), key, value);
  }
  return value;
}

std::vector<std::byte> Messenger::allreduce(std::vector<std::byte> mine, const Combine& combine,
                                            const Deadline& deadline) {
  // One unit: a loss during either half starts both again over the others (the root, the
  // lowest rank not lost, needs every part again).
  return over_live(
      [&](std::uint64_t key, const std::vector<int>& live, std::uint32_t epoch) {
        const int root = live.front();
        const Tree t(live, rank_, root, "Messenger::allreduce");
        std::vector<std::byte> acc = mine;
        std::uint64_t step = 0;
        bool sent_up = false;
        for (int mask = 1; mask < t.p; mask <<= 1, ++step) {
          if (t.v & mask) {
            post(t.real(t.v - mask), key | step, std::move(acc));
            acc.clear();
            sent_up = true;
            break;
          }
          if (t.v + mask < t.p) {
            acc = combine(std::move(acc),
                          take_in(t.real(t.v + mask), key | step, deadline, "Messenger::allreduce", epoch));
          }
        }
        return broadcast_in(sent_up ? std::vector<std::byte>{} : std::move(acc), root, deadline, key, live, epoch);
      },
      "Messenger::allreduce");
}

void Messenger::barrier(const Deadline& deadline) {
  (void)allreduce(
      {}, [](std::vector<std::byte> l, std::vector<std::byte>) { return l; }, deadline);
}

void Messenger::quiesce(const Deadline& deadline) {
  auto& im = *impl_;
  using Counts = std::array<std::uint64_t, 4>;  // sent, handled, begun, ended
  auto sum = [](Counts a, const Counts& b) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
  };
  std::optional<Counts> previous;
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    // Ended and handled first: a piece of work or a record is never seen ending before
    // it was seen starting in the same round.
    // Traffic to and from lost ranks is left out: it will never be matched.
    Counts mine{};
    mine[3] = im.ended.load(std::memory_order_seq_cst);
    for (int r = 0; r < size_; ++r) {
      if (!is_lost(r)) mine[1] += im.handled_from[static_cast<std::size_t>(r)].load(std::memory_order_seq_cst);
    }
    mine[2] = im.begun.load(std::memory_order_seq_cst);
    for (int r = 0; r < size_; ++r) {
      if (!is_lost(r)) mine[0] += im.sent_to[static_cast<std::size_t>(r)].load(std::memory_order_seq_cst);
    }
    const Counts all = allreduce_value(mine, sum, deadline);
    const bool balanced = all[0] == all[1] && all[2] == all[3];
    if (balanced && previous == all) return;
    previous = all;
    if (!balanced) {
      // Let the work run: drive progress and nap until the next round.
      (void)im.wait_until([] { return false; },
                          Deadline::at(std::min(Clock::now() + pause, deadline.infinite() ? Clock::time_point::max()
                                                                                          : deadline.time_point())),
                          "Messenger::quiesce");
      pause = std::min(pause * 2, std::chrono::microseconds(5000));
    }
    if (deadline.expired()) throw TimeoutError("Messenger::quiesce: timed out with work in flight");
  }
}

bool Messenger::try_progress() { return impl_->engine->try_progress(); }

engine::Engine& Messenger::engine() noexcept { return *impl_->engine; }

MessengerStats Messenger::stats() const noexcept {
  const auto& im = *impl_;
  const auto e = im.engine ? im.engine->stats() : engine::EngineStats{};
  return MessengerStats{im.records_sent.load(), im.records_handled.load(), im.mail_sent.load(), im.mail_received.load(),
                        im.batches_sent.load(), e.messages_received,       e.bytes_sent,        e.bytes_received,
                        im.bad_records.load()};
}

std::vector<std::string> Messenger::errors() const {
  std::lock_guard lock(impl_->errors_mu);
  return impl_->errors;
}

}  // namespace troupe::messaging
