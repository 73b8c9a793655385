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
// order) in the high bits, the tree step in the low byte.
constexpr std::uint64_t kStepBits = 8;
constexpr std::uint64_t kBroadcastStep = 0x80;
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
  std::vector<Handler> handlers = std::vector<Handler>(kKindLimit);
  BrokenHandler on_broken;
  std::atomic<bool> started{false};

  // Quiescence counters (monotonic): counted records sent and handled, work begun and ended.
  std::atomic<std::uint64_t> sent{0}, handled{0}, begun{0}, ended{0};
  std::atomic<std::uint64_t> records_sent{0}, records_handled{0}, mail_sent{0}, mail_received{0}, batches_sent{0},
      bad_records{0};

  // The mailbox, and the word its waiters sleep on (notified when mail arrives).
  std::mutex mail_mu;
  std::map<std::pair<int, std::uint64_t>, std::vector<std::byte>> mail;
  troupe::detail::WaitWord arrivals;
  std::uint64_t collective_seq = 0;  // the calling thread's only

  mutable std::mutex errors_mu;
  std::vector<std::string> errors;

  void hand_off(int dest, Outbox& o) {  // o.mu held
    if (o.batch.empty()) return;
    engine->send(dest, std::exchange(o.batch, {}));
    batches_sent.fetch_add(1, std::memory_order_relaxed);
  }

  // The latency bound: every progress round sends what is batched (under the token).
  void flush_all() {
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

  void receive(int source, std::vector<std::byte> bytes, Messenger& self) noexcept {
    auto problem = detail::parse_batch(
        bytes, [&](std::uint16_t kind, std::span<const std::byte> record) { dispatch(source, kind, record, self); });
    if (problem) {
      fault(source, "malformed batch from rank " + std::to_string(source) + ": " + *problem, true, self);
    }
  }

  void dispatch(int source, std::uint16_t kind, std::span<const std::byte> record, Messenger& self) noexcept {
    records_handled.fetch_add(1, std::memory_order_relaxed);
    const char* name = kind_name(kind);
    const bool is_counted = !name || counted(static_cast<Kind>(kind));
    std::string problem;
    try {
      wire::Reader in(record);
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
      } else if (static_cast<Kind>(kind) == Kind::kBroken) {
        BrokenRecord b;
        wire::load(in, b);
        {
          std::lock_guard lock(errors_mu);
          errors.push_back("rank " + std::to_string(source) + " reported: " + b.cause);
        }
        if (on_broken)
          on_broken(source, "rank " + std::to_string(source) + " could not use a record of this rank: " + b.cause);
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
    if (is_counted) handled.fetch_add(1, std::memory_order_seq_cst);
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
  im.out = std::make_unique<Impl::Outbox[]>(static_cast<std::size_t>(size_));
  im.engine->on_receive(
      [this](int source, std::vector<std::byte> bytes) { impl_->receive(source, std::move(bytes), *this); });
  im.engine->on_round([this] { impl_->flush_all(); });
}

Messenger::~Messenger() {
  if (impl_->registered) troupe::detail::remove_progress_source(&impl_->progress_source);  // waits out polls in flight
  try {
    impl_->flush_all();
  } catch (...) {  // stopping: what could not be handed over is abandoned
  }
  impl_->engine.reset();
}

void Messenger::on(Kind kind, Handler handler) {
  if (impl_->started.load()) throw InvalidStateError("Messenger::on: register handlers before start()");
  const auto k = static_cast<std::uint16_t>(kind);
  if (k >= kKindLimit || kind == Kind::kMail || kind == Kind::kBroken) {
    throw ValueError("Messenger::on: kind " + std::to_string(k) + " is not a client kind");
  }
  impl_->handlers[k] = std::move(handler);
}

void Messenger::on_broken(BrokenHandler handler) {
  if (impl_->started.load()) throw InvalidStateError("Messenger::on_broken: register before start()");
  impl_->on_broken = std::move(handler);
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
    if (out.counted) im.sent.fetch_add(1, std::memory_order_seq_cst);
    im.records_sent.fetch_add(1, std::memory_order_relaxed);
    if (o.batch.size() >= im.options.batch_bytes) {
      try {
        im.hand_off(out.dest, o);
        handed = true;
      } catch (...) {  // the engine is stopping: the batch stays for the final flush
      }
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

std::vector<std::byte> Messenger::take(int src, std::uint64_t key, const Deadline& deadline, const char* api) {
  auto& im = *impl_;
  const auto slot = std::make_pair(src, key);
  std::vector<std::byte> got;
  const bool ok = im.wait_until(
      [&] {
        std::lock_guard lock(im.mail_mu);
        auto it = im.mail.find(slot);
        if (it == im.mail.end()) return false;
        got = std::move(it->second);
        im.mail.erase(it);
        return true;
      },
      deadline, api);
  if (!ok) throw TimeoutError(std::string(api) + ": timed out waiting for rank " + std::to_string(src));
  return got;
}

std::optional<std::vector<std::byte>> Messenger::reduce(std::vector<std::byte> mine, const Combine& combine, int root,
                                                        const Deadline& deadline) {
  if (root < 0 || root >= size_) {
    throw ValueError("Messenger::reduce: root must be in [0, " + std::to_string(size_) + "), got " +
                     std::to_string(root));
  }
  const std::uint64_t key = impl_->collective_seq++ << kStepBits;
  const int p = size_, v = (rank_ - root + p) % p;  // rank relative to the root
  auto real = [&](int vr) { return (vr + root) % p; };
  std::uint64_t step = 0;
  for (int mask = 1; mask < p; mask <<= 1, ++step) {
    if (v & mask) {  // hand what this subtree holds to the parent, and leave
      post(real(v - mask), key | step, std::move(mine));
      return std::nullopt;
    }
    if (v + mask < p) mine = combine(std::move(mine), take(real(v + mask), key | step, deadline, "Messenger::reduce"));
  }
  return mine;
}

std::vector<std::byte> Messenger::broadcast(std::vector<std::byte> value, int root, const Deadline& deadline) {
  if (root < 0 || root >= size_) {
    throw ValueError("Messenger::broadcast: root must be in [0, " + std::to_string(size_) + "), got " +
                     std::to_string(root));
  }
  const std::uint64_t key = impl_->collective_seq++ << kStepBits | kBroadcastStep;
  const int p = size_, v = (rank_ - root + p) % p;
  auto real = [&](int vr) { return (vr + root) % p; };
  int mask = 1;
  while (mask < p) {  // receive from the parent: this rank minus its lowest set bit
    if (v & mask) {
      value = take(real(v - mask), key, deadline, "Messenger::broadcast");
      break;
    }
    mask <<= 1;
  }
  for (mask >>= 1; mask > 0; mask >>= 1) {
    if (v + mask < p) post(real(v + mask), key, value);
  }
  return value;
}

std::vector<std::byte> Messenger::allreduce(std::vector<std::byte> mine, const Combine& combine,
                                            const Deadline& deadline) {
  auto total = reduce(std::move(mine), combine, 0, deadline);
  return broadcast(total ? std::move(*total) : std::vector<std::byte>{}, 0, deadline);
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
    Counts mine{};
    mine[3] = im.ended.load(std::memory_order_seq_cst);
    mine[1] = im.handled.load(std::memory_order_seq_cst);
    mine[2] = im.begun.load(std::memory_order_seq_cst);
    mine[0] = im.sent.load(std::memory_order_seq_cst);
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
