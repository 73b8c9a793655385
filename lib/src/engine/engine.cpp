#include "troupe/engine/engine.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/futex.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"

namespace troupe::engine {

namespace {

// Wire layout of one MPI message ("batch"): a 16-byte header, then `count` frames of a
// 12-byte header + payload. Little-endian, as every platform troupe runs on.
constexpr std::uint32_t kMagic = 0x45505254;  // "TRPE"
constexpr std::uint16_t kVersion = 1;
constexpr std::uint16_t kFlagLargeFollows = 1;  // one frame whose payload is the next message
constexpr std::size_t kBatchHeader = 16;
constexpr std::size_t kFrameHeader = 12;

template <class T>
void put(std::vector<std::byte>& b, T v) {
  const auto at = b.size();
  b.resize(at + sizeof(T));
  std::memcpy(b.data() + at, &v, sizeof(T));
}
template <class T>
T get(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

void start_batch(std::vector<std::byte>& b, std::uint16_t flags) {
  put<std::uint32_t>(b, kMagic);
  put<std::uint16_t>(b, kVersion);
  put<std::uint16_t>(b, flags);
  put<std::uint32_t>(b, 0);  // count, patched on flush
  put<std::uint32_t>(b, 0);  // reserved
}

// MPI counts are ints: more than INT_MAX bytes travel as one element of a derived type
// (1 GiB blocks plus a tail), so no message hits the 2 GiB limit.
struct BytesType {
  MPI_Datatype type = MPI_BYTE;
  int count = 0;
  bool owned = false;
  explicit BytesType(std::size_t len) {
    if (len <= static_cast<std::size_t>(INT_MAX)) {
      count = static_cast<int>(len);
      return;
    }
    constexpr std::size_t kBlock = std::size_t{1} << 30;
    MPI_Datatype block;
    TROUPE_MPI_CHECK(MPI_Type_contiguous(static_cast<int>(kBlock), MPI_BYTE, &block));
    const int lens[2] = {static_cast<int>(len / kBlock), static_cast<int>(len % kBlock)};
    const MPI_Aint displs[2] = {0, static_cast<MPI_Aint>((len / kBlock) * kBlock)};
    MPI_Datatype types[2] = {block, MPI_BYTE};
    TROUPE_MPI_CHECK(MPI_Type_create_struct(2, lens, displs, types, &type));
    TROUPE_MPI_CHECK(MPI_Type_commit(&type));
    MPI_Type_free(&block);
    count = 1;
    owned = true;
  }
  ~BytesType() {
    if (owned) MPI_Type_free(&type);  // MPI keeps it alive for pending operations
  }
  BytesType(const BytesType&) = delete;
  BytesType& operator=(const BytesType&) = delete;
};

std::chrono::microseconds backoff_from_env() {
  if (const char* s = std::getenv("TROUPE_ENGINE_BACKOFF_US")) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end != s && *end == '\0' && v > 0) return std::chrono::microseconds(v);
    throw ValueError(std::string("TROUPE_ENGINE_BACKOFF_US must be a positive integer (microseconds), got '") + s + "'");
  }
  return std::chrono::microseconds(1000);
}

struct OutMsg {
  int dest;
  std::uint16_t type;
  std::vector<std::byte> payload;
  OutMsg* next;
};

struct InFlight {
  MPI_Request request;
  std::vector<std::byte> buffer;
};

}  // namespace

struct Collective {
  std::vector<long long> in, out;
  std::function<void(std::vector<long long>)> done;
  MPI_Request request = MPI_REQUEST_NULL;
};
struct Watched {
  MPI_Request request;
  std::function<void(const MPI_Status&)> done;
};

struct Engine::Impl {
  struct Received {
    int source;
    std::vector<std::byte> batch;
    std::optional<std::vector<std::byte>> large;  // the payload that followed a large header
  };

  MPI_Comm comm = MPI_COMM_NULL;
  EngineOptions options;
  std::chrono::microseconds max_backoff{1000};
  std::vector<Handler> handlers = std::vector<Handler>(65536);
  ErrorHandler on_error;
  std::thread::id owner = std::this_thread::get_id();

  std::atomic<OutMsg*> outbox{nullptr};
  std::vector<std::vector<std::byte>> batches;  // per destination, progress side only
  std::vector<std::uint32_t> batch_counts;
  std::vector<InFlight> in_flight;

  std::mutex requests_mu;  // guards the two "new_" lists (any thread appends)
  std::vector<std::unique_ptr<Collective>> new_collectives;
  std::vector<Watched> new_watched;
  std::atomic<bool> has_new_requests{false};
  std::vector<std::unique_ptr<Collective>> collectives;  // progress side only
  std::vector<Watched> watched;                          // progress side only

  std::atomic<bool> token{false};  // held by the one thread making MPI calls right now
  std::atomic<long> expecting{0};  // replies announced by the layer above (expect())
  std::atomic<std::uint32_t> wake{0};
  std::atomic<bool> sleeping{false};
  std::atomic<bool> stop{false};
  std::atomic<bool> started{false};
  std::thread progress;

  std::atomic<std::uint64_t> messages_sent{0}, messages_received{0}, batches_sent{0}, batches_received{0},
      bytes_sent{0}, bytes_received{0}, bad_frames{0};

  void report(int source, const std::string& what) {
    bad_frames.fetch_add(1, std::memory_order_relaxed);
    if (on_error) {
      on_error(source, what);
    } else {
      std::fprintf(stderr, "[troupe engine] %s\n", what.c_str());
    }
  }

  void post(int dest, std::vector<std::byte> buffer) {
    InFlight f{MPI_REQUEST_NULL, std::move(buffer)};
    BytesType bt(f.buffer.size());
    // buffer, count and type of the bytes; destination; the engine's tag; private comm
    TROUPE_MPI_CHECK(MPI_Isend(f.buffer.data(), bt.count, bt.type, dest, kTag, comm, &f.request));
    bytes_sent.fetch_add(f.buffer.size(), std::memory_order_relaxed);
    in_flight.push_back(std::move(f));
  }

  void flush(int dest) {
    auto& b = batches[static_cast<std::size_t>(dest)];
    if (b.empty()) return;
    std::memcpy(b.data() + 8, &batch_counts[static_cast<std::size_t>(dest)], sizeof(std::uint32_t));
    batch_counts[static_cast<std::size_t>(dest)] = 0;
    std::vector<std::byte> out;
    out.swap(b);
    post(dest, std::move(out));
    batches_sent.fetch_add(1, std::memory_order_relaxed);
  }

  bool drain_outbox() {
    OutMsg* list = outbox.exchange(nullptr, std::memory_order_acq_rel);
    if (!list) return false;
    OutMsg* fifo = nullptr;  // the stack is LIFO: reverse it
    while (list) fifo = std::exchange(list, std::exchange(list->next, fifo));
    while (fifo) {
      OutMsg* m = fifo;
      fifo = m->next;
      const auto d = static_cast<std::size_t>(m->dest);
      if (m->payload.size() > options.batch_bytes / 2) {
        // Large: flush what is queued for d (order), then a one-frame header message and
        // the payload as its own message, sent from the caller's buffer without a copy.
        flush(m->dest);
        std::vector<std::byte> head;
        start_batch(head, kFlagLargeFollows);
        put<std::uint16_t>(head, m->type);
        put<std::uint16_t>(head, 0);
        put<std::uint64_t>(head, m->payload.size());
        std::uint32_t one = 1;
        std::memcpy(head.data() + 8, &one, sizeof one);
        post(m->dest, std::move(head));
        post(m->dest, std::move(m->payload));
        batches_sent.fetch_add(1, std::memory_order_relaxed);
      } else {
        auto& b = batches[d];
        if (b.empty()) start_batch(b, 0);
        put<std::uint16_t>(b, m->type);
        put<std::uint16_t>(b, 0);
        put<std::uint64_t>(b, m->payload.size());
        b.insert(b.end(), m->payload.begin(), m->payload.end());
        ++batch_counts[d];
        if (b.size() >= options.batch_bytes) flush(m->dest);
      }
      messages_sent.fetch_add(1, std::memory_order_relaxed);
      delete m;
    }
    // The queue ran dry: send every partial batch now (the latency bound).
    for (std::size_t d = 0; d < batches.size(); ++d) flush(static_cast<int>(d));
    return true;
  }

  void dispatch(int source, std::uint16_t type, std::span<const std::byte> payload) {
    if (type == 0 || !handlers[type]) {
      report(source, "message of unknown type " + std::to_string(type) + " from rank " + std::to_string(source) +
                         " (" + std::to_string(payload.size()) + " bytes) dropped");
      return;
    }
    messages_received.fetch_add(1, std::memory_order_relaxed);
    handlers[type](source, payload);
  }

  void parse(Received& r) {
    const int source = r.source;
    const std::vector<std::byte>& b = r.batch;
    const std::string from = "malformed batch from rank " + std::to_string(source) + ": ";
    if (b.size() < kBatchHeader) {
      report(source, from + std::to_string(b.size()) + " bytes, shorter than the 16-byte header");
      return;
    }
    const auto magic = get<std::uint32_t>(b.data());
    if (magic != kMagic) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "bad magic 0x%08x (expected 0x%08x); is every rank running the same troupe?", magic,
                    kMagic);
      report(source, from + buf);
      return;
    }
    const auto version = get<std::uint16_t>(b.data() + 4);
    if (version != kVersion) {
      report(source, from + "wire version " + std::to_string(version) + ", this rank speaks " + std::to_string(kVersion));
      return;
    }
    const auto flags = get<std::uint16_t>(b.data() + 6);
    const auto count = get<std::uint32_t>(b.data() + 8);
    std::size_t at = kBatchHeader;
    for (std::uint32_t i = 0; i < count; ++i) {
      if (b.size() - at < kFrameHeader) {
        report(source, from + "frame " + std::to_string(i) + " of " + std::to_string(count) + " is cut short at byte " +
                           std::to_string(at));
        return;
      }
      const auto type = get<std::uint16_t>(b.data() + at);
      const auto len = get<std::uint64_t>(b.data() + at + 4);
      at += kFrameHeader;
      if (flags & kFlagLargeFollows) {
        deliver_large(source, type, len, r.large);
        return;
      }
      if (len > b.size() - at) {
        report(source, from + "frame " + std::to_string(i) + " claims " + std::to_string(len) + " bytes, " +
                           std::to_string(b.size() - at) + " remain");
        return;
      }
      dispatch(source, type, std::span<const std::byte>(b.data() + at, static_cast<std::size_t>(len)));
      at += static_cast<std::size_t>(len);
    }
    if (at != b.size()) report(source, from + std::to_string(b.size() - at) + " trailing bytes after the last frame");
  }

  void deliver_large(int source, std::uint16_t type, std::uint64_t len, std::optional<std::vector<std::byte>>& payload) {
    if (!payload) {
      report(source, "large message header from rank " + std::to_string(source) + " without its payload");
      return;
    }
    if (payload->size() != len) {
      report(source, "large message from rank " + std::to_string(source) + " announced " + std::to_string(len) +
                         " bytes, got " + std::to_string(payload->size()));
      return;
    }
    dispatch(source, type, *payload);
  }

  // Under the token: take up to 64 messages off the wire; parsing happens after the token
  // is released, so that handlers never run while holding it.
  bool receive(std::vector<Received>& got) {
    bool any = false;
    for (int k = 0; k < 64; ++k) {
      int flag = 0;
      MPI_Message msg;
      MPI_Status st;
      // any source, the engine's tag, private comm; matched message handle out
      TROUPE_MPI_CHECK(MPI_Improbe(MPI_ANY_SOURCE, kTag, comm, &flag, &msg, &st));
      if (!flag) break;
      MPI_Count n = 0;
      TROUPE_MPI_CHECK(MPI_Get_elements_x(&st, MPI_BYTE, &n));
      Received r{st.MPI_SOURCE, std::vector<std::byte>(static_cast<std::size_t>(n)), std::nullopt};
      {
        BytesType bt(r.batch.size());
        TROUPE_MPI_CHECK(MPI_Mrecv(r.batch.data(), bt.count, bt.type, &msg, MPI_STATUS_IGNORE));
      }
      batches_received.fetch_add(1, std::memory_order_relaxed);
      bytes_received.fetch_add(r.batch.size(), std::memory_order_relaxed);
      // Only a well-formed one-frame header announces a payload message; anything else is
      // parsed (and reported) later, never waited on.
      if (r.batch.size() == kBatchHeader + kFrameHeader && get<std::uint32_t>(r.batch.data()) == kMagic &&
          get<std::uint16_t>(r.batch.data() + 4) == kVersion &&
          (get<std::uint16_t>(r.batch.data() + 6) & kFlagLargeFollows) && get<std::uint32_t>(r.batch.data() + 8) == 1) {
        // The sender posted the payload right after the header: same source and tag, so
        // MPI's non-overtaking rule makes it the next match.
        MPI_Message pm;
        MPI_Status ps;
        TROUPE_MPI_CHECK(MPI_Mprobe(r.source, kTag, comm, &pm, &ps));
        MPI_Count pn = 0;
        TROUPE_MPI_CHECK(MPI_Get_elements_x(&ps, MPI_BYTE, &pn));
        r.large.emplace(static_cast<std::size_t>(pn));
        BytesType pt(r.large->size());
        TROUPE_MPI_CHECK(MPI_Mrecv(r.large->data(), pt.count, pt.type, &pm, MPI_STATUS_IGNORE));
        bytes_received.fetch_add(r.large->size(), std::memory_order_relaxed);
      }
      got.push_back(std::move(r));
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
    return any;
  }

  bool progress_requests(std::vector<std::function<void()>>& done_calls) {
    bool did = false;
    if (has_new_requests.exchange(false, std::memory_order_acq_rel)) {
      std::vector<std::unique_ptr<Collective>> cs;
      std::vector<Watched> ws;
      {
        std::lock_guard lock(requests_mu);
        cs.swap(new_collectives);
        ws.swap(new_watched);
      }
      for (auto& c : cs) {
        c->out.assign(c->in.size(), 0);
        // send buffer, receive buffer, count, type, op, comm, request
        TROUPE_MPI_CHECK(MPI_Iallreduce(c->in.data(), c->out.data(), static_cast<int>(c->in.size()), MPI_LONG_LONG,
                                        MPI_SUM, comm, &c->request));
        collectives.push_back(std::move(c));
      }
      for (auto& w : ws) watched.push_back(std::move(w));
      did = true;
    }
    for (std::size_t i = 0; i < collectives.size();) {
      int flag = 0;
      TROUPE_MPI_CHECK(MPI_Test(&collectives[i]->request, &flag, MPI_STATUS_IGNORE));
      if (flag) {
        std::shared_ptr<Collective> c(std::move(collectives[i]));
        collectives.erase(collectives.begin() + static_cast<std::ptrdiff_t>(i));
        done_calls.push_back([c] { c->done(std::move(c->out)); });
        did = true;
      } else {
        ++i;
      }
    }
    for (std::size_t i = 0; i < watched.size();) {
      int flag = 0;
      MPI_Status st;
      TROUPE_MPI_CHECK(MPI_Test(&watched[i].request, &flag, &st));
      if (flag) {
        auto w = std::make_shared<Watched>(std::move(watched[i]));
        watched.erase(watched.begin() + static_cast<std::ptrdiff_t>(i));
        done_calls.push_back([w, st] { w->done(st); });
        did = true;
      } else {
        ++i;
      }
    }
    return did;
  }
  bool waiting_on_requests() const { return !collectives.empty() || !watched.empty(); }

  // One round of progress by whichever thread holds the token (the progress thread, or a
  // thread waiting for a result: troupe never has two threads inside MPI at once).
  // Returns 1 if it did something, 0 if idle, -1 if another thread held the token.
  int poll_once() {
    if (token.exchange(true, std::memory_order_acquire)) return -1;
    std::vector<Received> got;
    std::vector<std::function<void()>> done_calls;
    bool did = false;
    try {
      did = drain_outbox();
      did |= progress_requests(done_calls);
      did |= receive(got);
      did |= complete_sends();
    } catch (...) {
      token.store(false, std::memory_order_release);
      throw;
    }
    token.store(false, std::memory_order_release);
    // A handler that throws loses its own message only, never the rest of the round.
    for (auto& r : got) {
      try {
        parse(r);
      } catch (const std::exception& e) {
        report(r.source, std::string("handler failed on a message from rank ") + std::to_string(r.source) + ": " + e.what());
      } catch (...) {
        report(r.source, "handler failed on a message from rank " + std::to_string(r.source));
      }
    }
    for (auto& f : done_calls) {
      try {
        f();
      } catch (const std::exception& e) {
        report(-1, std::string("completion callback failed: ") + e.what());
      } catch (...) {
        report(-1, "completion callback failed");
      }
    }
    return did ? 1 : 0;
  }

  void run() {
    auto backoff = std::chrono::microseconds(1);
    auto last_activity = Clock::now();
    for (;;) {
      bool did = false;
      try {
        const int r = poll_once();
        did = r != 0;  // busy (another thread polls) counts as activity: keep lingering
      } catch (const std::exception& e) {
        report(-1, std::string("progress failed: ") + e.what());
        did = false;
      }
      if (did) {
        backoff = std::chrono::microseconds(1);
        last_activity = Clock::now();
        continue;
      }
      if (stop.load(std::memory_order_acquire) && outbox.load(std::memory_order_acquire) == nullptr) break;
      // Idle. Right after traffic, keep polling (yielding the core to co-located workers)
      // for options.linger: a reply or the next request usually comes soon. Then spin briefly
      // and sleep with a doubling back-off up to max_backoff; a send() ends the sleep at once,
      // MPI traffic is seen at the next wake-up. While replies are expected, naps stay short.
      const auto now = Clock::now();
      const bool lingering = now - last_activity < options.linger;
      // Long idle (the back-off at its ceiling): no spinning at all between naps.
      const auto spin = backoff >= max_backoff ? std::chrono::microseconds(0) : options.spin;
      const auto spin_until = now + (lingering ? std::chrono::microseconds(5) : spin);
      bool work = false;
      int rounds = 0;
      while (Clock::now() < spin_until) {
        if (outbox.load(std::memory_order_acquire) != nullptr || has_new_requests.load(std::memory_order_acquire)) {
          work = true;
          break;
        }
        int flag = 0;
        TROUPE_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kTag, comm, &flag, MPI_STATUS_IGNORE));
        if (flag) {
          work = true;
          break;
        }
        for (int i = 0; i < 64; ++i) detail::cpu_relax();
        if ((++rounds & 3) == 0) std::this_thread::yield();
      }
      if (work) continue;
      if (lingering) {
        std::this_thread::yield();
        continue;
      }
      const std::uint32_t e = wake.load(std::memory_order_acquire);
      sleeping.store(true, std::memory_order_seq_cst);
      if (outbox.load(std::memory_order_seq_cst) == nullptr && !has_new_requests.load(std::memory_order_seq_cst) &&
          !stop.load(std::memory_order_acquire)) {
        auto nap = backoff;
        // Sends in flight or replies expected: stay responsive.
        if (!in_flight.empty() || expecting.load(std::memory_order_relaxed) > 0) {
          nap = std::min(nap, std::chrono::microseconds(20));
        }
        detail::futex_wait(wake, e, Deadline::at(Clock::now() + nap));
        backoff = std::min(backoff * 2, max_backoff);
      }
      sleeping.store(false, std::memory_order_relaxed);
    }
    // Complete what was posted; a peer that never receives must not hang the exit.
    const auto give_up = Clock::now() + std::chrono::seconds(10);
    while (!in_flight.empty() && Clock::now() < give_up) {
      if (poll_once() <= 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    if (!in_flight.empty()) {
      report(-1, std::to_string(in_flight.size()) + " send(s) still incomplete at engine shutdown; abandoned");
      for (auto& f : in_flight) MPI_Request_free(&f.request);
      in_flight.clear();
    }
  }
};

Engine::Engine(MPI_Comm comm, EngineOptions options) : impl_(std::make_unique<Impl>()) {
  if (comm == MPI_COMM_NULL) throw ValueError("Engine: communicator is MPI_COMM_NULL");
  if (options.batch_bytes < 64) throw ValueError("Engine: batch_bytes must be >= 64, got " + std::to_string(options.batch_bytes));
  impl_->comm = comm;
  impl_->options = options;
  impl_->max_backoff = options.max_backoff ? *options.max_backoff : backoff_from_env();
  if (const char* l = std::getenv("TROUPE_ENGINE_LINGER_US")) {
    char* end = nullptr;
    const long v = std::strtol(l, &end, 10);
    if (end == l || *end != '\0' || v < 0) {
      throw ValueError(std::string("TROUPE_ENGINE_LINGER_US must be a non-negative integer (microseconds), got '") + l + "'");
    }
    impl_->options.linger = std::chrono::microseconds(v);
  }
  TROUPE_MPI_CHECK(MPI_Comm_rank(comm, &rank_));
  TROUPE_MPI_CHECK(MPI_Comm_size(comm, &size_));
  impl_->batches.resize(static_cast<std::size_t>(size_));
  impl_->batch_counts.assign(static_cast<std::size_t>(size_), 0);
}

Engine::~Engine() {
  impl_->stop.store(true, std::memory_order_seq_cst);
  impl_->wake.fetch_add(1, std::memory_order_acq_rel);
  detail::futex_wake(impl_->wake, INT_MAX);
  if (impl_->progress.joinable()) {
    impl_->progress.join();
  } else if (impl_->started.load()) {
    try {
      impl_->run();  // poll mode: finish in this thread
    } catch (...) {
    }
  }
  OutMsg* m = impl_->outbox.exchange(nullptr);
  while (m) delete std::exchange(m, m->next);
}

void Engine::on(std::uint16_t type, Handler handler) {
  if (impl_->started.load()) throw InvalidStateError("Engine::on: handlers must be registered before start()");
  if (type == 0) throw ValueError("Engine::on: message type 0 is reserved");
  impl_->handlers[type] = std::move(handler);
}

void Engine::on_error(ErrorHandler handler) {
  if (impl_->started.load()) throw InvalidStateError("Engine::on_error: register before start()");
  impl_->on_error = std::move(handler);
}

void Engine::start() {
  if (impl_->started.exchange(true)) throw InvalidStateError("Engine::start: already started");
  if (impl_->options.progress_thread) impl_->progress = std::thread([this] { impl_->run(); });
}

void Engine::send(int dest, std::uint16_t type, std::vector<std::byte> payload) {
  if (dest < 0 || dest >= size_) {
    throw ValueError("Engine::send: destination rank must be in [0, " + std::to_string(size_) + "), got " +
                     std::to_string(dest));
  }
  if (type == 0) throw ValueError("Engine::send: message type 0 is reserved");
  if (impl_->stop.load(std::memory_order_acquire)) throw InvalidStateError("Engine::send: engine is stopping");
  auto* m = new OutMsg{dest, type, std::move(payload), nullptr};
  OutMsg* head = impl_->outbox.load(std::memory_order_relaxed);
  do {
    m->next = head;
  } while (!impl_->outbox.compare_exchange_weak(head, m, std::memory_order_seq_cst, std::memory_order_relaxed));
  if (impl_->sleeping.load(std::memory_order_seq_cst)) {
    impl_->wake.fetch_add(1, std::memory_order_acq_rel);
    detail::futex_wake(impl_->wake, 1);
  }
}

void Engine::allreduce_sum(std::vector<long long> values, std::function<void(std::vector<long long>)> done) {
  auto c = std::make_unique<Collective>();
  c->in = std::move(values);
  c->done = std::move(done);
  {
    std::lock_guard lock(impl_->requests_mu);
    impl_->new_collectives.push_back(std::move(c));
  }
  impl_->has_new_requests.store(true, std::memory_order_seq_cst);
  if (impl_->sleeping.load(std::memory_order_seq_cst)) {
    impl_->wake.fetch_add(1, std::memory_order_acq_rel);
    detail::futex_wake(impl_->wake, 1);
  }
}

void Engine::expect(long delta) noexcept { impl_->expecting.fetch_add(delta, std::memory_order_relaxed); }

void Engine::watch(MPI_Request request, std::function<void(const MPI_Status&)> done) {
  if (request == MPI_REQUEST_NULL) throw ValueError("Engine::watch: request is MPI_REQUEST_NULL");
  {
    std::lock_guard lock(impl_->requests_mu);
    impl_->new_watched.push_back(Watched{request, std::move(done)});
  }
  impl_->has_new_requests.store(true, std::memory_order_seq_cst);
  if (impl_->sleeping.load(std::memory_order_seq_cst)) {
    impl_->wake.fetch_add(1, std::memory_order_acq_rel);
    detail::futex_wake(impl_->wake, 1);
  }
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

EngineStats Engine::stats() const noexcept {
  const auto& i = *impl_;
  return EngineStats{i.messages_sent.load(), i.messages_received.load(), i.batches_sent.load(),
                     i.batches_received.load(), i.bytes_sent.load(), i.bytes_received.load(), i.bad_frames.load()};
}

}  // namespace troupe::engine
