// The trace recorder (troupe/runtime/detail/trace.hpp) and its MPI session
// (trace_session.hpp): per-thread append-only buffers, the clock alignment to rank 0, the
// gather at rank 0 and the one JSON file (Chrome Trace Event Format). docs/tracing.md.
#include "troupe/runtime/detail/trace.hpp"

#include <mpi.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>

#include "trace_session.hpp"
#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/text.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/detail/rma_window.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/mpi_token.hpp"

namespace troupe::detail::trace {

std::atomic<bool> g_on{false};

namespace {

// Trivial, so that a block of them is memory as the kernel gives it (see new_block).
struct RawArg {
  const char* key;
  std::int64_t value;
};
struct Event {
  const char* name;
  const char* cat;
  std::int64_t ts;   // ns, steady clock of this process
  std::int64_t dur;  // ns ("X")
  std::uint64_t id;  // flow id ("s", "f")
  char ph;           // 'X', 's', 'f'
  std::uint8_t nargs;
  RawArg args[kMaxArgs];
};
static_assert(std::is_trivially_default_constructible_v<Event> && std::is_trivially_copyable_v<Event>);

// A thread's events: blocks of kBlock events, allocated by the owner as it fills them. The
// owner writes event `count` and then publishes count + 1 (release); a reader takes count
// (acquire) and reads below it. Nothing is ever moved, so neither side takes a lock.
constexpr std::size_t kBlock = 4096;
constexpr std::size_t kMaxBlocks = 4096;  // 16.7 M events per thread and session, then dropped
constexpr std::int64_t kLanesPerRank = 10000;

struct alignas(64) Buffer {  // its own cache lines: the owners write their counts at once
  int tid = 0;
  std::string name;  // under g_mu
  std::atomic<std::size_t> count{0};
  std::atomic<std::uint64_t> dropped{0};
  std::unique_ptr<Event* []> blocks { new Event*[kMaxBlocks]() };  // never freed (see g_sessions)
};

struct Session {
  int pid = 0;
  std::string process_name;
  std::int64_t offset = 0;
  std::int64_t clock_error = 0;
  std::vector<std::unique_ptr<Buffer>> buffers;
};

std::mutex g_mu;  // the registry: sessions, buffers, names (never on the recording path)
std::atomic<std::uint64_t> g_generation{0};
// Every session ever begun (a hook in flight across a session change still holds a pointer
// into the old one's buffers: they are never freed).
std::vector<std::unique_ptr<Session>>* g_sessions = new std::vector<std::unique_ptr<Session>>;

struct ThreadState {
  std::uint64_t generation = 0;  // 0: not registered in any session
  Buffer* buffer = nullptr;
  std::string name;
};
thread_local ThreadState tl;

Buffer* my_buffer() noexcept {
  const std::uint64_t gen = g_generation.load(std::memory_order_acquire);
  if (tl.generation == gen && tl.buffer) return tl.buffer;
  try {
    std::lock_guard lock(g_mu);
    if (g_sessions->empty()) return nullptr;
    Session& s = *g_sessions->back();
    auto b = std::make_unique<Buffer>();
    b->tid = static_cast<int>(s.buffers.size());
    b->name = tl.name.empty() ? std::string("thread ").append(std::to_string(b->tid)) : tl.name;
    tl.buffer = b.get();
    tl.generation = g_generation.load(std::memory_order_relaxed);
    s.buffers.push_back(std::move(b));
    return tl.buffer;
  } catch (...) {  // no memory: the event is lost
    return nullptr;
  }
}

// A block of kBlock events, its pages mapped at once (MAP_POPULATE): touching fresh memory a
// page at a time cost about 1 us per event on the development VM (a page fault per 36 events,
// each a trap to a paravirtualized kernel); one mmap populating 112 pages costs a fraction.
Event* new_block() noexcept {
  void* p = ::mmap(nullptr, kBlock * sizeof(Event), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* events = static_cast<Event*>(p);
  for (std::size_t i = 0; i < kBlock; ++i) ::new (static_cast<void*>(events + i)) Event;  // no stores: trivial
  return events;
}

void push(const Event& e) noexcept {
  Buffer* b = my_buffer();
  if (!b) return;
  const std::size_t i = b->count.load(std::memory_order_relaxed);
  const std::size_t block = i / kBlock;
  if (block >= kMaxBlocks) {
    b->dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!b->blocks[block]) {
    b->blocks[block] = new_block();
    if (!b->blocks[block]) {
      b->dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  b->blocks[block][i % kBlock] = e;
  b->count.store(i + 1, std::memory_order_release);
}

void append_us(std::string& out, std::int64_t ns) {
  char buf[40];
  const bool neg = ns < 0;
  const std::uint64_t a = neg ? static_cast<std::uint64_t>(-(ns + 1)) + 1 : static_cast<std::uint64_t>(ns);
  std::snprintf(buf, sizeof buf, "%s%llu.%03llu", neg ? "-" : "", static_cast<unsigned long long>(a / 1000),
                static_cast<unsigned long long>(a % 1000));
  out += buf;
}

void append_meta(std::string& out, const char* what, int pid, std::int64_t tid, const char* key,
                 const std::string& value) {
  out += "{\"name\":\"";
  out += what;
  out += "\",\"ph\":\"M\",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid) + ",\"args\":{\"";
  out += key;
  out += "\":";
  append_json_string(out, value);
  out += "}}";
}

}  // namespace

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void complete(const char* name, const char* cat, std::int64_t t0_ns, std::int64_t t1_ns,
              std::initializer_list<Arg> args) noexcept {
  if (!on()) return;
  Event e{};
  e.ph = 'X';
  e.name = name;
  e.cat = cat;
  e.ts = t0_ns;
  e.dur = t1_ns > t0_ns ? t1_ns - t0_ns : 0;
  for (const Arg& a : args) {
    if (e.nargs < kMaxArgs) e.args[e.nargs++] = RawArg{a.key, a.value};
  }
  push(e);
}

void flow(bool start, std::uint64_t id, std::int64_t ts_ns) noexcept {
  if (!on()) return;
  Event e{};
  e.name = "message";
  e.cat = "message";
  e.ts = ts_ns;
  e.id = id;
  e.ph = start ? 's' : 'f';
  push(e);
}

Span::~Span() {
  if (t0_ < 0 || !on()) return;
  Event e{};
  e.ph = 'X';
  e.name = name_;
  e.cat = cat_;
  e.ts = t0_;
  e.dur = std::max<std::int64_t>(0, now_ns() - t0_);
  e.nargs = static_cast<std::uint8_t>(n_);
  for (std::size_t i = 0; i < n_; ++i) e.args[i] = RawArg{args_[i].key, args_[i].value};
  push(e);
}

void name_thread(std::string name) noexcept {
  try {
    tl.name = std::move(name);
    if (tl.buffer && tl.generation == g_generation.load(std::memory_order_acquire)) {
      std::lock_guard lock(g_mu);
      tl.buffer->name = tl.name;
    }
  } catch (...) {  // no memory: the lane keeps its number
  }
}

void begin(int pid, std::string process_name, std::int64_t offset_ns, std::int64_t clock_error_ns) {
  auto s = std::make_unique<Session>();
  s->pid = pid;
  s->process_name = std::move(process_name);
  s->offset = offset_ns;
  s->clock_error = clock_error_ns;
  std::lock_guard lock(g_mu);
  g_sessions->push_back(std::move(s));
  g_generation.fetch_add(1, std::memory_order_acq_rel);  // every thread registers anew
  g_on.store(true, std::memory_order_release);
}

void end() noexcept { g_on.store(false, std::memory_order_release); }

std::size_t event_count() noexcept {
  std::lock_guard lock(g_mu);
  if (g_sessions->empty()) return 0;
  std::size_t n = 0;
  for (const auto& b : g_sessions->back()->buffers) n += b->count.load(std::memory_order_acquire);
  return n;
}

std::string events_json(std::int64_t origin_ns, std::size_t max_bytes) {
  std::lock_guard lock(g_mu);
  std::string out;
  if (g_sessions->empty()) return out;
  const Session& s = *g_sessions->back();
  const std::string pid = std::to_string(s.pid);
  std::uint64_t dropped = 0;
  // Lanes are numbered pid * kLanesPerRank + 1 + n: unique over the ranks (Perfetto reads tids
  // as system-wide, as an OS's are), never 0 (google/perfetto#2278 fixed a merge of tids 0 and
  // 1), and far below 2^32 (larger tids collapse into one lane: google/perfetto#522).
  const auto lane_of = [&s](int n) { return static_cast<std::int64_t>(s.pid) * kLanesPerRank + 1 + n; };
  append_meta(out, "process_name", s.pid, lane_of(0), "name", s.process_name);
  out.pop_back();  // the clock alignment, next to the name (readers ignore other arguments)
  out.pop_back();
  out += ",\"clock_offset_us\":";
  append_us(out, s.offset);
  out += ",\"clock_error_us\":";
  append_us(out, s.clock_error);
  out += "}}";
  out += ",\n{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":" + pid + ",\"tid\":" + std::to_string(lane_of(0)) +
         ",\"args\":{\"sort_index\":" + pid + "}}";
  std::string body;
  for (const auto& b : s.buffers) {
    out += ",\n";
    append_meta(out, "thread_name", s.pid, lane_of(b->tid), "name", b->name);
    const std::string lane = ",\"pid\":" + pid + ",\"tid\":" + std::to_string(lane_of(b->tid)) + ",\"ts\":";
    const std::size_t n = b->count.load(std::memory_order_acquire);
    dropped += b->dropped.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i) {
      if (body.size() > max_bytes) {
        dropped += n - i;
        break;
      }
      const Event& e = b->blocks[i / kBlock][i % kBlock];
      body += ",\n{\"name\":";
      append_json_string(body, e.name ? e.name : "?");
      body += ",\"cat\":";
      append_json_string(body, e.cat ? e.cat : "troupe");
      body += ",\"ph\":\"";
      body += e.ph;
      body += '"';
      if (e.ph != 'X') body.append(",\"id\":").append(std::to_string(e.id)).append(e.ph == 'f' ? ",\"bp\":\"e\"" : "");
      body += lane;
      append_us(body, e.ts + s.offset - origin_ns);
      if (e.ph == 'X') {
        body += ",\"dur\":";
        append_us(body, e.dur);
      }
      if (e.nargs > 0) {
        body += ",\"args\":{";
        for (std::uint8_t k = 0; k < e.nargs; ++k) {
          if (k) body += ',';
          append_json_string(body, e.args[k].key ? e.args[k].key : "?");
          body += ':' + std::to_string(e.args[k].value);
        }
        body += '}';
      }
      body += '}';
    }
  }
  if (dropped > 0) {
    out += ",\n";
    append_meta(out, "process_labels", s.pid, lane_of(0), "labels",
                std::string("dropped ").append(std::to_string(dropped)).append(" events"));
  }
  return out + body;
}

bool write_trace_file(const std::string& path, const std::vector<std::string>& parts) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return false;
  bool ok = std::fputs("{\"traceEvents\":[\n", f) >= 0;
  bool first = true;
  for (const std::string& p : parts) {
    if (p.empty()) continue;
    if (!first) ok = ok && std::fputs(",\n", f) >= 0;
    ok = ok && std::fwrite(p.data(), 1, p.size(), f) == p.size();
    first = false;
  }
  ok = ok && std::fputs("\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"producer\":\"troupe\"}}\n", f) >= 0;
  const int saved = errno;
  if (std::fclose(f) != 0) return false;
  errno = saved;
  return ok;
}

// --- the MPI session ---------------------------------------------------------------

namespace {

constexpr int kTraceTag = 0x7ace;
constexpr int kPings = 8;

struct MpiSessionState {
  bool active = false;
  bool quiet = false;
  int rank = 0;
  int size = 1;
  std::string path;  // rank 0
  std::int64_t origin = 0;
  std::chrono::milliseconds timeout{60'000};
};
MpiSessionState g_mpi;

// This kernel's boot id (/proc/sys/kernel/random/boot_id, hashed; 0 if unreadable): ranks that
// share it share CLOCK_MONOTONIC, containers on one host included.
std::int64_t kernel_id() noexcept {
  std::FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r");
  if (!f) return 0;
  char buf[64] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 1099511628211ull;
  return static_cast<std::int64_t>(h >> 1) | 1;
}

// Waits for @p req with the one wait loop; false at the deadline.
bool wait_bounded(MPI_Request& req, const Deadline& deadline) {
  return wait_request(req, deadline, {}, nullptr, false);
}

void give_up(MPI_Request& req, bool recv) {
  if (req == MPI_REQUEST_NULL) return;
  if (recv) {
    TROUPE_MPI_UNCHECKED(MPI_Cancel(&req));
    TROUPE_MPI_UNCHECKED(MPI_Wait(&req, MPI_STATUS_IGNORE));
  } else {
    TROUPE_MPI_UNCHECKED(MPI_Request_free(&req));
  }
}

}  // namespace

void start_session(MPI_Comm comm, int rank, int size, const std::string& host, const std::string& path,
                   std::chrono::milliseconds timeout, bool quiet) {
  const char* api = "troupe::Runtime (TROUPE_TRACE)";
  g_mpi = MpiSessionState{};
  // Rank 0's setting decides for every rank (its file is the one written). It opens the file
  // now, so that a path it cannot write is reported before the run rather than after.
  int traced = 0;
  if (rank == 0 && !path.empty()) {
    if (std::FILE* f = std::fopen(path.c_str(), "w")) {
      std::fclose(f);
      traced = 1;
    } else {
      troupe::log(std::string("troupe: TROUPE_TRACE: cannot write '") + path + "': " + std::strerror(errno) +
                  "; no trace is recorded");
    }
  }
  const Deadline deadline = Deadline::after(timeout, api);
  // [traced, origin (rank 0's clock), rank 0's kernel]: one broadcast, then the clock pings.
  std::int64_t head[3] = {traced, now_ns(), kernel_id()};
  MPI_Request req = MPI_REQUEST_NULL;
  TROUPE_MPI_CHECK(MPI_Ibcast(head, 3, MPI_INT64_T, 0, comm, &req));
  if (!wait_bounded(req, deadline)) {
    throw TimeoutError(std::string(api) + ": rank " + std::to_string(rank) +
                       " timed out waiting for rank 0's trace setting");
  }
  if (head[0] == 0) return;
  // Clock alignment: each rank asks rank 0 for its clock kPings times and keeps the answer
  // with the shortest round trip: offset = t0 - (t_send + t_recv) / 2, wrong by at most half
  // that round trip (NTP's estimate). Same-node ranks share CLOCK_MONOTONIC (offset ~ 0).
  std::int64_t offset = 0;
  std::int64_t best = 0;
  if (rank == 0) {
    for (int r = 1; r < size; ++r) {
      for (int k = 0; k < kPings; ++k) {
        char ping = 0;
        TROUPE_MPI_CHECK(MPI_Irecv(&ping, 1, MPI_CHAR, r, kTraceTag, comm, &req));
        if (!wait_bounded(req, deadline)) {
          give_up(req, true);
          throw TimeoutError(std::string(api) + ": rank " + std::to_string(r) + " did not answer the clock ping");
        }
        std::int64_t t = now_ns();
        TROUPE_MPI_CHECK(MPI_Isend(&t, 1, MPI_INT64_T, r, kTraceTag, comm, &req));
        if (!wait_bounded(req, deadline)) {
          give_up(req, false);
          throw TimeoutError(std::string(api) + ": the clock ping to rank " + std::to_string(r) + " timed out");
        }
      }
    }
  } else {
    best = std::numeric_limits<std::int64_t>::max();
    for (int k = 0; k < kPings; ++k) {
      char ping = 0;
      std::int64_t t0 = 0;
      const std::int64_t t1 = now_ns();
      TROUPE_MPI_CHECK(MPI_Isend(&ping, 1, MPI_CHAR, 0, kTraceTag, comm, &req));
      if (!wait_bounded(req, deadline)) {
        give_up(req, false);
        throw TimeoutError(std::string(api) + ": the clock ping to rank 0 timed out");
      }
      TROUPE_MPI_CHECK(MPI_Irecv(&t0, 1, MPI_INT64_T, 0, kTraceTag, comm, &req));
      if (!wait_bounded(req, deadline)) {
        give_up(req, true);
        throw TimeoutError(std::string(api) + ": rank 0 did not answer the clock ping");
      }
      const std::int64_t t2 = now_ns();
      if (t2 - t1 < best) {
        best = t2 - t1;
        offset = t0 - (t1 + t2) / 2;
      }
    }
  }
  if (rank != 0 && head[2] != 0 && head[2] == kernel_id()) {
    // The kernel of rank 0: the same CLOCK_MONOTONIC (steady_clock), exactly. The pings above
    // still ran (every rank takes part), but their estimate is only worse than 0.
    offset = 0;
    best = 0;
  }
  g_mpi.active = true;
  g_mpi.quiet = quiet;
  g_mpi.rank = rank;
  g_mpi.size = size;
  g_mpi.path = rank == 0 ? path : std::string();
  g_mpi.origin = head[1];
  g_mpi.timeout = timeout;
  begin(rank, std::string("rank ").append(std::to_string(rank)).append(" (").append(host).append(")"), offset,
        (best + 1) / 2);
  name_thread("main");
}

void finish_session(MPI_Comm comm) noexcept {
  if (!g_mpi.active) return;
  g_mpi.active = false;
  end();
  try {
    const char* api = "troupe::Runtime (TROUPE_TRACE)";
    const Deadline deadline = Deadline::after(g_mpi.timeout, api);
    const std::size_t max_bytes = std::size_t(1) << 30;  // one MPI message of int count
    MpiSection token;                                    // MpiMode::Serialized: troupe's MPI calls hold it
    if (g_mpi.rank != 0) {
      // Kept alive past a timeout: MPI may still read it.
      auto* text = new std::string(events_json(g_mpi.origin, max_bytes));
      std::uint64_t n = text->size();
      MPI_Request reqs[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
      TROUPE_MPI_CHECK(MPI_Isend(&n, 1, MPI_UINT64_T, 0, kTraceTag, comm, &reqs[0]));
      TROUPE_MPI_CHECK(MPI_Isend(text->data(), static_cast<int>(n), MPI_CHAR, 0, kTraceTag, comm, &reqs[1]));
      const bool ok = wait_bounded(reqs[0], deadline) && wait_bounded(reqs[1], deadline);
      if (!ok) {
        give_up(reqs[0], false);
        give_up(reqs[1], false);
        troupe::log("troupe: TROUPE_TRACE: rank 0 did not take this rank's trace events within " +
                    std::to_string(g_mpi.timeout.count()) + " ms; the trace lacks them");
        return;  // `text` is leaked on purpose
      }
      delete text;
      return;
    }
    std::vector<std::string> parts;
    parts.push_back(events_json(g_mpi.origin, max_bytes));
    std::string missing;
    for (int r = 1; r < g_mpi.size; ++r) {
      std::uint64_t n = 0;
      MPI_Request req = MPI_REQUEST_NULL;
      TROUPE_MPI_CHECK(MPI_Irecv(&n, 1, MPI_UINT64_T, r, kTraceTag, comm, &req));
      bool ok = wait_bounded(req, deadline);
      if (ok && n <= max_bytes + (std::size_t(1) << 20)) {
        std::string text(n, '\0');
        TROUPE_MPI_CHECK(MPI_Irecv(text.data(), static_cast<int>(n), MPI_CHAR, r, kTraceTag, comm, &req));
        ok = wait_bounded(req, deadline);
        if (ok) parts.push_back(std::move(text));
      }
      if (!ok) {
        give_up(req, true);
        if (!missing.empty()) missing += ',';
        missing += std::to_string(r);
      }
    }
    if (!missing.empty()) {
      troupe::log("troupe: TROUPE_TRACE: no events from rank(s) " + missing + " within " +
                  std::to_string(g_mpi.timeout.count()) + " ms; the trace lacks them");
    }
    if (!write_trace_file(g_mpi.path, parts)) {
      troupe::log("troupe: TROUPE_TRACE: cannot write '" + g_mpi.path + "': " + std::strerror(errno));
      return;
    }
    if (!g_mpi.quiet) {
      std::size_t bytes = 0;
      for (const auto& p : parts) bytes += p.size();
      troupe::log("troupe: wrote the trace of " + std::to_string(g_mpi.size) + " rank(s) to '" + g_mpi.path + "' (" +
                  std::to_string(bytes / 1024) + " KiB; open it in ui.perfetto.dev)");
    }
  } catch (const std::exception& e) {
    troupe::log(std::string("troupe: TROUPE_TRACE: the trace was not written: ") + e.what());
  } catch (...) {
    troupe::log("troupe: TROUPE_TRACE: the trace was not written");
  }
}

}  // namespace troupe::detail::trace
