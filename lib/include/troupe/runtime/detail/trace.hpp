#pragma once
/// @file
/// @brief The trace recorder behind `TROUPE_TRACE=file.json` (docs/tracing.md).
///
/// Every thread appends its events to its own buffer, registered once per thread and
/// session: recording never takes a shared lock. When tracing is off, each hook costs one
/// relaxed load of a process-wide flag and a predictable branch. The Runtime starts a
/// session (troupe::Runtime start, when the root's `TROUPE_TRACE` names a file), aligns the
/// ranks' clocks to rank 0's, and at its end gathers every rank's events at rank 0, which
/// writes one file in the Chrome Trace Event Format (JSON object form) that
/// ui.perfetto.dev and chrome://tracing open.
///
/// Hooks are one line each:
/// @code
/// detail::trace::Span span("task", "pool");                 // an "X" event over a scope
/// if (detail::trace::on()) detail::trace::complete(...);     // or an explicit one
/// @endcode
///
/// No `<mpi.h>` here: the pool and the executor include it freely.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::detail::trace {

/// @brief The process-wide switch (defined in trace.cpp). Read through on().
extern std::atomic<bool> g_on;

/// @brief True while a trace session records. One relaxed load: the whole cost of a hook
/// when tracing is off.
/// @note Thread-safe, never blocks.
inline bool on() noexcept { return g_on.load(std::memory_order_relaxed); }

/// @brief Nanoseconds of the steady clock (the trace's clock before alignment).
/// @note Thread-safe, never blocks.
std::int64_t now_ns() noexcept;

/// @brief One integer argument of an event (`"args": {key: value}`); @p key must be a
/// string literal (it is stored as a pointer).
struct Arg {
  const char* key = nullptr;
  std::int64_t value = 0;
};

/// @brief The most arguments an event keeps (more are dropped).
inline constexpr std::size_t kMaxArgs = 4;

/// @brief Records a complete event ("ph":"X") on the calling thread's lane.
/// @param name what ran; a string literal (stored as a pointer).
/// @param cat the event's category ("pool", "executor", "message"); a string literal.
/// @param t0_ns start (now_ns()); @param t1_ns end (>= @p t0_ns).
/// @param args up to kMaxArgs integer arguments.
/// @note Thread-safe (each thread has its own buffer), lock-free, never blocks. Does
///       nothing when on() is false.
void complete(const char* name, const char* cat, std::int64_t t0_ns, std::int64_t t1_ns,
              std::initializer_list<Arg> args = {}) noexcept;

/// @brief Records one end of a message's flow arrow: @p start true for the send ("ph":"s"),
/// false for the receive ("ph":"f", bound to the enclosing slice). Both ends of one message
/// pass the same @p id, on whichever ranks they are.
/// @note Thread-safe, lock-free, never blocks; nothing when on() is false.
void flow(bool start, std::uint64_t id, std::int64_t ts_ns) noexcept;

/// @brief A flow id for the @p seq-th message from @p src to @p dst on the @p channel-th
/// engine of the process (engines are built collectively, so their order agrees).
/// @note Pure.
inline std::uint64_t message_id(std::uint64_t channel, int src, int dst, std::uint64_t seq) noexcept {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the four numbers
  for (std::uint64_t v : {channel, static_cast<std::uint64_t>(src), static_cast<std::uint64_t>(dst), seq}) {
    h = (h ^ v) * 1099511628211ull;
  }
  return h >> 11;  // 53 bits: exact as a JSON number in every reader
}

/// @brief Names the calling thread's lane ("worker 3", "progress", "main"); kept for the
/// life of the thread, also across sessions.
/// @note Thread-safe; takes the registry's lock only if the thread is already registered.
void name_thread(std::string name) noexcept;

/// @brief An "X" event over a scope: the start is taken at construction when on(), the
/// event recorded at destruction.
class Span {
 public:
  /// @param name, @p cat string literals (see complete()).
  Span(const char* name, const char* cat) noexcept : name_(name), cat_(cat), t0_(on() ? now_ns() : -1) {}
  /// @brief Adds an argument (up to kMaxArgs; a no-op when the span does not record).
  void arg(const char* key, std::int64_t value) noexcept {
    if (t0_ >= 0 && n_ < kMaxArgs) args_[n_++] = Arg{key, value};
  }
  ~Span();
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

 private:
  const char* name_;
  const char* cat_;
  std::int64_t t0_;
  Arg args_[kMaxArgs]{};
  std::size_t n_ = 0;
};

// --- sessions (the Runtime; tests) ---------------------------------------------------

/// @brief Starts recording in this process (no MPI): clears nothing recorded before but
/// starts a new session, whose events alone are written by write_json().
/// @param pid the process id in the trace (the rank); @p process_name its label.
/// @param offset_ns added to every timestamp (the clock alignment to rank 0).
/// @param clock_error_ns how far @p offset_ns may be off (half the best ping's round trip),
///        written with the process's name so that a reader can bound a message's skew.
/// @note Thread-safe.
void begin(int pid, std::string process_name, std::int64_t offset_ns = 0, std::int64_t clock_error_ns = 0);

/// @brief Stops recording (a hook that already checked on() may still land its event).
/// @note Thread-safe.
void end() noexcept;

/// @brief The session's events as JSON objects, separated by ",\n" (no brackets), with the
/// process's and threads' metadata ("ph":"M") first; timestamps in microseconds relative to
/// @p origin_ns (after the offset).
/// @param origin_ns the aligned clock value that becomes ts 0 (rank 0's session start).
/// @param max_bytes events past this size are dropped (counted in the process metadata).
/// @note Thread-safe; best called after end().
std::string events_json(std::int64_t origin_ns, std::size_t max_bytes = std::size_t(1) << 30);

/// @brief The events recorded in this session so far (tests).
std::size_t event_count() noexcept;

/// @brief Writes a whole trace file: `{"traceEvents":[` parts joined by ",\n" `],"displayTimeUnit":"ms"}`.
/// @return false (and errno set) if the file could not be written.
bool write_trace_file(const std::string& path, const std::vector<std::string>& parts);

}  // namespace troupe::detail::trace
