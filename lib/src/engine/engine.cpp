#include "troupe/engine/engine.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>

#include "troupe/core/config.hpp"
#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/futex.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/runtime/detail/trace.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/mpi_token.hpp"

namespace troupe::engine {

namespace {

constexpr std::size_t kGiB = std::size_t{1} << 30;

// After this long without traffic the progress thread's naps may grow to kDeepIdleFactor
// times EngineOptions::max_backoff (docs/engine.md, "Idle back-off").
constexpr std::chrono::milliseconds kDeepIdleAfter{50};
constexpr int kDeepIdleFactor = 5;

// MPI counts are ints: more than INT_MAX bytes travel as one element of a struct type
// (1 GiB blocks plus a tail), so no message hits the 2 GiB limit.
struct Layout {
  int count = 0;
  MPI_Datatype type = MPI_BYTE;
  bool owned = false;
  explicit Layout(std::size_t len) {
    if (len <= static_cast<std::size_t>(INT_MAX)) {
      count = static_cast<int>(len);
      return;
    }
    MPI_Datatype gib;
    TROUPE_MPI_CHECK(MPI_Type_contiguous(static_cast<int>(kGiB), MPI_BYTE, &gib));
    const int lens[2] = {static_cast<int>(len / kGiB), static_cast<int>(len % kGiB)};
    const MPI_Aint displs[2] = {0, static_cast<MPI_Aint>((len / kGiB) * kGiB)};
    MPI_Datatype types[2] = {gib, MPI_BYTE};
    TROUPE_MPI_CHECK(MPI_Type_create_struct(2, lens, displs, types, &type));
    TROUPE_MPI_CHECK(MPI_Type_commit(&type));
    TROUPE_MPI_UNCHECKED(MPI_Type_free(&gib));
    count = 1;
    owned = true;
  }
  ~Layout() {
    if (owned) TROUPE_MPI_UNCHECKED(MPI_Type_free(&type));  // MPI keeps it alive for pending operations
  }
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;
};

struct OutMsg {
  int dest;
  std::vector<std::byte> bytes;
  OutMsg* next;
  // A bulk message (send_bulk): sent from ptr on the bulk tag, keep owns the memory.
  const std::byte* ptr = nullptr;
  std::size_t len = 0;
  std::shared_ptr<const void> keep = nullptr;
};

struct InFlight {
  MPI_Request request;
  std::vector<std::byte> bytes;
  std::shared_ptr<const void> keep = nullptr;  // a bulk message's memory
};

// Bulk messages are at most this long: both sides cut a block the same way (and no count
// reaches INT_MAX).
constexpr std::size_t kBulkChunk = std::size_t{256} << 20;

// The bulk messages announced by one record, received in order from one source.
struct BulkJob {
  int source = 0;
  std::vector<std::span<std::byte>> chunks;
  std::vector<MPI_Request> requests;
  std::size_t pending = 0;
  bool ok = true;
  std::function<void(bool)> done;
};

std::vector<std::span<std::byte>> cut(std::span<std::byte> s) {
  std::vector<std::span<std::byte>> out;
  for (std::size_t at = 0; at < s.size(); at += kBulkChunk)
    out.push_back(s.subspan(at, std::min(kBulkChunk, s.size() - at)));
  return out;
}

struct Watched {
  MPI_Request request;
  std::function<void(const MPI_Status&)> done;
};

}  // namespace

struct Engine::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  EngineOptions options;
  std::chrono::microseconds max_backoff{1000};
  std::chrono::microseconds linger{200};
  Receiver receiver;
  RoundHook round_hook;
  std::thread::id owner = std::this_thread::get_id();

  std::atomic<OutMsg*> outbox{nullptr};
  std::vector<InFlight> in_flight;  // under the token
  // in_flight.size(), written under the token, read without it by the progress thread's
  // choice of nap length (a plain read of the vector there was a data race).
  std::atomic<std::size_t> n_in_flight{0};

  std::mutex watch_mu;  // guards new_watched (any thread appends)
  std::vector<Watched> new_watched;
  std::atomic<bool> has_new_watched{false};
  std::vector<Watched> watched;  // under the token

  // Received messages wait here, in the order they came off the wire, for the one thread
  // that delivers them: receivers see the messages of one source in order, one at a time,
  // even when several threads take turns at progress.
  std::mutex inbox_mu;
  std::deque<std::pair<int, std::vector<std::byte>>> inbox;
  std::atomic<bool> delivering{false};

  std::atomic<bool> token{false};  // held by the one thread making MPI calls right now
  std::atomic<long> expecting{0};
  detail::WaitWord wake;  // the progress thread's idle sleep; poked by queued work and stop
  std::atomic<bool> wake_requested{false};
  std::atomic<bool> stop{false};
  std::atomic<bool> started{false};
  std::thread progress;

  std::atomic<std::uint64_t> messages_sent{0}, messages_received{0}, bytes_sent{0}, bytes_received{0};

  // TROUPE_TRACE: this engine's number in the process (engines are built collectively, in the
  // same order on every rank) and the messages sent to / received from each peer so far, under
  // the token: MPI keeps one tag's messages between two ranks in order, so the n-th send to a
  // peer is that peer's n-th receive from here, and both ends name the same flow.
  std::uint64_t trace_channel = 0;
  int trace_rank = 0;
  std::vector<std::uint64_t> trace_sent, trace_received;
  void trace_message(bool send, int peer, std::size_t bytes, std::int64_t t0, int me) noexcept {
    if (!detail::trace::on() || peer < 0 || static_cast<std::size_t>(peer) >= trace_sent.size()) return;
    const std::uint64_t seq = (send ? trace_sent : trace_received)[static_cast<std::size_t>(peer)]++;
    const auto id = detail::trace::message_id(trace_channel, send ? me : peer, send ? peer : me, seq);
    detail::trace::complete(send ? "send" : "receive", "message", t0, detail::trace::now_ns(),
                            {{send ? "to" : "from", peer}, {"bytes", static_cast<std::int64_t>(bytes)}});
    detail::trace::flow(send, id, t0);
  }

  // Bulk receives (receive_bulk): queued by any thread, posted and tested under the token.
  std::mutex bulk_mu;
  std::vector<BulkJob> new_bulk;
  std::atomic<bool> has_new_bulk{false};
  std::vector<BulkJob> bulk;           // under the token
  std::atomic<std::size_t> n_bulk{0};  // bulk.size() plus queued jobs, for the nap length

  // In MpiMode::Serialized every engine of the process shares the one token of
  // troupe/runtime/mpi_token.hpp (the program's with_mpi calls take it too); otherwise each
  // engine has its own.
  bool shared_token = false;
  bool take_token() noexcept {
    if (shared_token) return detail::try_acquire_mpi_token();
    return !token.exchange(true, std::memory_order_acquire);
  }
  void give_token() noexcept {
    if (shared_token) {
      detail::release_mpi_token();
    } else {
      token.store(false, std::memory_order_release);
    }
  }

  void push(OutMsg* m) noexcept {
    OutMsg* head = outbox.load(std::memory_order_relaxed);
    do {
      m->next = head;
    } while (!outbox.compare_exchange_weak(head, m, std::memory_order_seq_cst, std::memory_order_relaxed));
    poke();
  }

  void poke() noexcept { wake.notify_one(); }

  bool has_work() const noexcept {
    return outbox.load(std::memory_order_seq_cst) != nullptr || has_new_watched.load(std::memory_order_seq_cst) ||
           wake_requested.load(std::memory_order_seq_cst) || has_new_bulk.load(std::memory_order_seq_cst);
  }

  void post(OutMsg& m) {
    if (m.ptr) {
      post_bulk(m);
      return;
    }
    InFlight f{MPI_REQUEST_NULL, std::move(m.bytes)};
    Layout l(f.bytes.size());
    // buffer, count and type of the bytes; destination; the engine's tag; private comm
    const std::int64_t t0 = detail::trace::on() ? detail::trace::now_ns() : 0;
    TROUPE_MPI_CHECK(MPI_Isend(f.bytes.data(), l.count, l.type, m.dest, kTag, comm, &f.request));
    trace_message(true, m.dest, f.bytes.size(), t0, trace_rank);
    messages_sent.fetch_add(1, std::memory_order_relaxed);
    bytes_sent.fetch_add(f.bytes.size(), std::memory_order_relaxed);
    in_flight.push_back(std::move(f));
    n_in_flight.store(in_flight.size(), std::memory_order_relaxed);
  }

  // A bulk message: straight from the sender's memory, on the bulk tag.
  void post_bulk(OutMsg& m) {
    InFlight f{MPI_REQUEST_NULL, {}, std::move(m.keep)};
    // buffer and byte count (< kBulkChunk); destination; the bulk tag; private comm
    TROUPE_MPI_CHECK(MPI_Isend(m.ptr, static_cast<int>(m.len), MPI_BYTE, m.dest, kBulkTag, comm, &f.request));
    messages_sent.fetch_add(1, std::memory_order_relaxed);
    bytes_sent.fetch_add(m.len, std::memory_order_relaxed);
    in_flight.push_back(std::move(f));
    n_in_flight.store(in_flight.size(), std::memory_order_relaxed);
  }

  // Posts the queued bulk receives (in the order they were queued: MPI matches a source's
  // messages on one tag in order) and tests those in flight; finished jobs go to @p done.
  bool bulk_round(std::vector<BulkJob>& done) {
    bool did = false;
    if (has_new_bulk.exchange(false, std::memory_order_acq_rel)) {
      std::vector<BulkJob> fresh;
      {
        std::lock_guard lock(bulk_mu);
        fresh.swap(new_bulk);
      }
      for (auto& j : fresh) {
        j.requests.assign(j.chunks.size(), MPI_REQUEST_NULL);
        for (std::size_t i = 0; i < j.chunks.size(); ++i) {
          // straight into the destination; exactly this chunk's bytes; from the announcing
          // source on the bulk tag; private comm
          if (MPI_Irecv(j.chunks[i].data(), static_cast<int>(j.chunks[i].size()), MPI_BYTE, j.source, kBulkTag, comm,
                        &j.requests[i]) != MPI_SUCCESS) {
            j.ok = false;  // nothing posted after a failure: the job ends once the rest do
            break;
          }
          ++j.pending;
        }
        bulk.push_back(std::move(j));
      }
      did = true;
    }
    for (std::size_t k = 0; k < bulk.size();) {
      auto& j = bulk[k];
      for (std::size_t i = 0; i < j.requests.size(); ++i) {
        if (j.requests[i] == MPI_REQUEST_NULL) continue;
        int flag = 0;
        MPI_Status st;
        if (MPI_Test(&j.requests[i], &flag, &st) != MPI_SUCCESS) {
          j.ok = false;
          j.requests[i] = MPI_REQUEST_NULL;
          flag = 1;
        } else if (flag) {
          MPI_Count got = 0;
          if (MPI_Get_elements_x(&st, MPI_BYTE, &got) != MPI_SUCCESS ||
              static_cast<std::size_t>(got) != j.chunks[i].size()) {
            j.ok = false;  // a shorter message than announced
          }
          messages_received.fetch_add(1, std::memory_order_relaxed);
          bytes_received.fetch_add(static_cast<std::size_t>(got), std::memory_order_relaxed);
        }
        if (flag) {
          --j.pending;
          did = true;
        }
      }
      if (j.pending == 0) {
        done.push_back(std::move(j));
        bulk[k] = std::move(bulk.back());
        bulk.pop_back();
        n_bulk.fetch_sub(1, std::memory_order_relaxed);
      } else {
        ++k;
      }
    }
    return did;
  }

  bool drain_outbox() {
    OutMsg* list = outbox.exchange(nullptr, std::memory_order_acq_rel);
    if (!list) return false;
    OutMsg* fifo = nullptr;  // the stack is LIFO: reverse it (order per destination)
    while (list) fifo = std::exchange(list, std::exchange(list->next, fifo));
    while (fifo) {
      OutMsg* m = fifo;
      fifo = m->next;
      try {
        post(*m);
      } catch (...) {
        delete m;
        while (fifo) delete std::exchange(fifo, fifo->next);
        throw;
      }
      delete m;
    }
    return true;
  }

  bool receive() {
    bool any = false;
    for (int k = 0; k < 64; ++k) {
      int flag = 0;
      MPI_Message msg;
      MPI_Status st;
      // any source, the engine's tag, private comm; matched message handle out
      TROUPE_MPI_CHECK(MPI_Improbe(MPI_ANY_SOURCE, kTag, comm, &flag, &msg, &st));
      if (!flag) break;
      const std::int64_t t0 = detail::trace::on() ? detail::trace::now_ns() : 0;
      MPI_Count n = 0;
      TROUPE_MPI_CHECK(MPI_Get_elements_x(&st, MPI_BYTE, &n));
      std::vector<std::byte> bytes(static_cast<std::size_t>(n));
      {
        Layout l(bytes.size());
        TROUPE_MPI_CHECK(MPI_Mrecv(bytes.data(), l.count, l.type, &msg, MPI_STATUS_IGNORE));
      }
      trace_message(false, st.MPI_SOURCE, bytes.size(), t0, trace_rank);
      messages_received.fetch_add(1, std::memory_order_relaxed);
      bytes_received.fetch_add(bytes.size(), std::memory_order_relaxed);
      {
        std::lock_guard lock(inbox_mu);
        inbox.emplace_back(st.MPI_SOURCE, std::move(bytes));
      }
      any = true;
    }
    return any;
  }

  bool complete_sends() {
    bool any = false;
    for (std::size_t i = 0; i < in_flight.size();) {
      int done = 0;
      TROUPE_MPI_CHECK(MPI_Test(&in_flight[i].request, &done, MPI_STATUS_IGNORE));
      if (done) {
        in_flight[i] = std::move(in_flight.back());
        in_flight.pop_back();
        any = true;
      } else {
        ++i;
      }
    }
    if (any) n_in_flight.store(in_flight.size(), std::memory_order_relaxed);
    return any;
  }

  bool test_watched(std::vector<std::pair<Watched, MPI_Status>>& done) {
    bool did = false;
    if (has_new_watched.exchange(false, std::memory_order_acq_rel)) {
      std::lock_guard lock(watch_mu);
      for (auto& w : new_watched) watched.push_back(std::move(w));
      new_watched.clear();
      did = true;
    }
    for (std::size_t i = 0; i < watched.size();) {
      int flag = 0;
      MPI_Status st;
      TROUPE_MPI_CHECK(MPI_Test(&watched[i].request, &flag, &st));
      if (flag) {
        done.emplace_back(std::move(watched[i]), st);
        watched.erase(watched.begin() + static_cast<std::ptrdiff_t>(i));
        did = true;
      } else {
        ++i;
      }
    }
    return did;
  }

  // One round of progress by the token holder. Receivers and completions run after the
  // token is released, so that they may send and never run while holding it.
  // Returns 1 if it did something, 0 if idle, -1 if another thread held the token.
  // Delivers what is in the inbox unless another thread is delivering (it will take these
  // too: it looks again after giving up the role).
  void deliver() {
    while (!delivering.exchange(true, std::memory_order_acquire)) {
      for (;;) {
        std::pair<int, std::vector<std::byte>> m;
        {
          std::lock_guard lock(inbox_mu);
          if (inbox.empty()) break;
          m = std::move(inbox.front());
          inbox.pop_front();
        }
        receiver(m.first, std::move(m.second));
      }
      delivering.store(false, std::memory_order_release);
      std::lock_guard lock(inbox_mu);
      if (inbox.empty()) return;
    }
  }

  int poll_once() {
    if (!take_token()) return -1;
    std::vector<std::pair<Watched, MPI_Status>> done;
    std::vector<BulkJob> bulk_done;
    bool did = false;
    try {
      if (wake_requested.exchange(false, std::memory_order_acq_rel)) did = true;
      if (round_hook) round_hook();
      did |= drain_outbox();
      did |= test_watched(done);
      did |= receive();
      if (n_bulk.load(std::memory_order_relaxed) != 0) did |= bulk_round(bulk_done);
      did |= complete_sends();
    } catch (...) {
      give_token();
      throw;
    }
    give_token();
    deliver();
    for (auto& [w, st] : done) w.done(st);
    for (auto& j : bulk_done) j.done(j.ok);
    return did ? 1 : 0;
  }

  // An MPI_Iprobe under the token: is a message waiting? (false when the token is busy:
  // whoever holds it is receiving.)
  bool probe() {
    if (!take_token()) return false;
    int flag = 0;
    try {
      TROUPE_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kTag, comm, &flag, MPI_STATUS_IGNORE));
    } catch (...) {
      give_token();
      throw;
    }
    give_token();
    return flag != 0;
  }

  void run() {
    auto backoff = std::chrono::microseconds(1);
    auto last_activity = Clock::now();
    for (;;) {
      if (poll_once() != 0) {  // busy (another thread polls) counts as activity
        backoff = std::chrono::microseconds(1);
        last_activity = Clock::now();
        continue;
      }
      if (stop.load(std::memory_order_acquire) && outbox.load(std::memory_order_acquire) == nullptr) break;
      // Idle. Right after traffic, keep polling (yielding the core to co-located workers)
      // for `linger`: a reply or the next request usually comes soon. Then spin briefly and
      // sleep with a doubling back-off up to max_backoff; queued work ends the sleep at once,
      // MPI traffic is seen at the next wake-up. While replies are expected, naps stay short.
      // Where ranks share cores (detail::cores_shared()), neither: a polling thread would
      // take the core from the ranks that do the work; the doubling nap alone follows traffic.
      const auto now = Clock::now();
      const bool shared = detail::cores_shared();
      const bool lingering = !shared && now - last_activity < linger;
      const auto spin = backoff >= max_backoff || shared ? std::chrono::microseconds(0) : options.spin;
      const auto spin_until = now + (lingering ? std::chrono::microseconds(5) : spin);
      bool work = false;
      for (int rounds = 1; Clock::now() < spin_until; ++rounds) {
        if (has_work() || probe()) {
          work = true;
          break;
        }
        for (int i = 0; i < 64; ++i) detail::cpu_relax();
        if ((rounds & 3) == 0) std::this_thread::yield();
      }
      if (work) continue;
      if (lingering) {
        std::this_thread::yield();
        continue;
      }
      // The one wait loop (core/detail/wait.hpp) as a plain timed sleep: this thread is the
      // progress, so it neither spins (done above), helps a pool nor polls sources there.
      auto nap = backoff;
      if (n_in_flight.load(std::memory_order_relaxed) != 0 || expecting.load(std::memory_order_relaxed) > 0 ||
          n_bulk.load(std::memory_order_relaxed) != 0) {
        nap = std::min(nap, std::chrono::microseconds(20));
      }
      detail::WaitParams sleep_only;
      sleep_only.spin = std::chrono::nanoseconds(0);
      sleep_only.help = false;
      sleep_only.poll_while_asleep = false;
      (void)wake.wait([&] { return has_work() || stop.load(std::memory_order_acquire); },
                      Deadline::at(Clock::now() + nap), nullptr, "Engine", sleep_only);
      // Deep idle: no traffic for kDeepIdleAfter, the naps grow to kDeepIdleFactor times the
      // ceiling, so that an idle rank costs well under 1% of a core (a wake-up with its MPI
      // poll costs ~25 µs on a loaded 2-core node); the first request after a long rest
      // waits up to that much longer.
      const auto ceiling = Clock::now() - last_activity > kDeepIdleAfter ? max_backoff * kDeepIdleFactor : max_backoff;
      backoff = std::min(backoff * 2, ceiling);
    }
    // Complete what was posted; a peer that never receives must not hang the exit.
    const auto give_up = Clock::now() + std::chrono::seconds(10);
    while (!in_flight.empty() && Clock::now() < give_up) {
      if (poll_once() <= 0) std::this_thread::yield();
    }
    for (auto& f : in_flight) TROUPE_MPI_UNCHECKED(MPI_Request_free(&f.request));
    in_flight.clear();
    n_in_flight.store(0, std::memory_order_relaxed);
    // Bulk receives nobody completed (the peer stopped sending): abandoned with their jobs.
    for (auto& j : bulk) {
      for (auto& r : j.requests) {
        if (r != MPI_REQUEST_NULL) {
          TROUPE_MPI_UNCHECKED(MPI_Cancel(&r));
          TROUPE_MPI_UNCHECKED(MPI_Request_free(&r));
        }
      }
    }
    bulk.clear();
  }
};

Engine::Engine(MPI_Comm comm, EngineOptions options) : impl_(std::make_unique<Impl>()) {
  if (comm == MPI_COMM_NULL) throw ValueError("Engine: communicator is MPI_COMM_NULL");
  const Settings& s = settings();
  impl_->comm = comm;
  impl_->options = options;
  impl_->max_backoff = options.max_backoff.value_or(s.engine_backoff);
  impl_->linger = options.linger.value_or(s.engine_linger);
  impl_->shared_token = detail::mpi_token_mode();
  TROUPE_MPI_CHECK(MPI_Comm_rank(comm, &rank_));
  TROUPE_MPI_CHECK(MPI_Comm_size(comm, &size_));
  static std::atomic<std::uint64_t> engines{0};  // TROUPE_TRACE's channel numbers
  impl_->trace_channel = engines.fetch_add(1, std::memory_order_relaxed);
  impl_->trace_rank = rank_;
  impl_->trace_sent.assign(static_cast<std::size_t>(size_), 0);
  impl_->trace_received.assign(static_cast<std::size_t>(size_), 0);
}

Engine::~Engine() {
  impl_->stop.store(true, std::memory_order_seq_cst);
  impl_->wake.notify_all();
  if (impl_->progress.joinable()) {
    impl_->progress.join();
  } else if (impl_->started.load()) {
    try {
      impl_->run();  // poll mode: finish in this thread
    } catch (...) {  // a destructor must not throw; the sends are abandoned
    }
  }
  OutMsg* m = impl_->outbox.exchange(nullptr);
  while (m) delete std::exchange(m, m->next);
}

void Engine::on_receive(Receiver receiver) {
  if (impl_->started.load()) throw InvalidStateError("Engine::on_receive: set the receiver before start()");
  impl_->receiver = std::move(receiver);
}

void Engine::on_round(RoundHook hook) {
  if (impl_->started.load()) throw InvalidStateError("Engine::on_round: set the hook before start()");
  impl_->round_hook = std::move(hook);
}

void Engine::start() {
  if (!impl_->receiver) throw InvalidStateError("Engine::start: no receiver (call on_receive first)");
  if (impl_->started.exchange(true)) throw InvalidStateError("Engine::start: already started");
  if (impl_->options.progress_thread) {
    impl_->progress = std::thread([this] {
      detail::trace::name_thread("progress");
      impl_->run();
    });
  }
}

namespace {
void check_dest(int dest, int size) {
  if (dest < 0 || dest >= size) {
    throw ValueError("Engine::send: destination rank must be in [0, " + std::to_string(size) + "), got " +
                     std::to_string(dest));
  }
}
}  // namespace

void Engine::send(int dest, std::vector<std::byte> message) {
  check_dest(dest, size_);
  if (impl_->stop.load(std::memory_order_acquire)) throw InvalidStateError("Engine::send: engine is stopping");
  impl_->push(new OutMsg{dest, std::move(message), nullptr});
}

void Engine::send_bulk(int dest, std::span<const std::byte> data, std::shared_ptr<const void> keep) {
  check_dest(dest, size_);
  if (impl_->stop.load(std::memory_order_acquire)) throw InvalidStateError("Engine::send_bulk: engine is stopping");
  for (std::size_t at = 0; at < data.size(); at += kBulkChunk) {
    impl_->push(new OutMsg{dest, {}, nullptr, data.data() + at, std::min(kBulkChunk, data.size() - at), keep});
  }
}

void Engine::receive_bulk(int source, const std::vector<std::span<std::byte>>& into, std::function<void(bool)> done) {
  if (source < 0 || source >= size_) {
    throw ValueError("Engine::receive_bulk: source rank must be in [0, " + std::to_string(size_) + "), got " +
                     std::to_string(source));
  }
  BulkJob j;
  j.source = source;
  for (const auto& s : into) {
    for (auto c : cut(s)) j.chunks.push_back(c);
  }
  j.done = std::move(done);
  {
    std::lock_guard lock(impl_->bulk_mu);
    impl_->new_bulk.push_back(std::move(j));
    impl_->n_bulk.fetch_add(1, std::memory_order_relaxed);
  }
  impl_->has_new_bulk.store(true, std::memory_order_seq_cst);
  impl_->poke();
}

void Engine::deliver_here(int source, std::vector<std::byte> message) {
  {
    std::lock_guard lock(impl_->inbox_mu);
    impl_->inbox.emplace_back(source, std::move(message));
  }
  wake();
}

void Engine::wake() noexcept {
  impl_->wake_requested.store(true, std::memory_order_seq_cst);
  impl_->poke();
}

void Engine::expect(long delta) noexcept { impl_->expecting.fetch_add(delta, std::memory_order_relaxed); }

void Engine::watch(MPI_Request request, std::function<void(const MPI_Status&)> done) {
  if (request == MPI_REQUEST_NULL) throw ValueError("Engine::watch: request is MPI_REQUEST_NULL");
  {
    std::lock_guard lock(impl_->watch_mu);
    impl_->new_watched.push_back(Watched{request, std::move(done)});
  }
  impl_->has_new_watched.store(true, std::memory_order_seq_cst);
  impl_->poke();
}

bool Engine::poll() {
  if (impl_->options.progress_thread) throw InvalidStateError("Engine::poll: the engine has a progress thread");
  if (std::this_thread::get_id() != impl_->owner) {
    throw InvalidStateError("Engine::poll: only the thread that created the engine may drive MPI (FUNNELED)");
  }
  return impl_->poll_once() > 0;
}

bool Engine::try_progress() {
  if (!impl_->started.load(std::memory_order_acquire) || impl_->stop.load(std::memory_order_acquire)) return false;
  if (!impl_->options.progress_thread && std::this_thread::get_id() != impl_->owner) return false;
  return impl_->poll_once() > 0;
}

std::chrono::microseconds Engine::driver_linger() const noexcept {
  if (impl_->options.progress_thread || std::this_thread::get_id() != impl_->owner) {
    return std::chrono::microseconds(0);
  }
  return impl_->linger;
}

EngineStats Engine::stats() const noexcept {
  const auto& i = *impl_;
  return EngineStats{i.messages_sent.load(), i.messages_received.load(), i.bytes_sent.load(), i.bytes_received.load()};
}

}  // namespace troupe::engine
