// The one reader of TROUPE_* knobs: a table of (name, field, range, unit, effect) drives
// parsing, validation and describe(). docs/configuration.md mirrors the table.
#include "troupe/core/config.hpp"

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string_view>
#include <utility>
#include <variant>

#include "troupe/core/error.hpp"

namespace troupe {

namespace {

using Micros = std::chrono::microseconds;
using Millis = std::chrono::milliseconds;
using Field = std::variant<std::optional<std::size_t> Settings::*, std::size_t Settings::*, bool Settings::*,
                           Micros Settings::*, Millis Settings::*, std::string Settings::*>;

struct Knob {
  const char* name;
  Field field;
  std::size_t min;
  std::size_t max;
  const char* effect;
};

// What may surround a number (a value of only these is empty).
constexpr std::string_view kBlank = " \t\n\r\v\f";

constexpr std::size_t kMaxMicros = 10'000'000;  // 10 s: longer waits are a typo, not a tuning
constexpr std::size_t kMaxMillis = 86'400'000;  // a day: the longest timeout that is not a typo

// clang-format off
constexpr Knob kKnobs[] = {
  {"TROUPE_THREADS", &Settings::threads, 1, 65536,
   "threads per rank, above SLURM_CPUS_PER_TASK and the affinity mask (unset: that rule)"},
  {"TROUPE_QUIET", &Settings::quiet, 0, 1,
   "1 hides the start-up note about ranks bound to one core"},
  {"TROUPE_PRINT_SETTINGS", &Settings::print_settings, 0, 1,
   "1: rank 0 logs these settings when the Runtime starts"},
  {"TROUPE_SPIN_US", &Settings::pool_spin, 0, kMaxMicros,
   "idle pool worker spins this long before it sleeps (0: never spin)"},
  {"TROUPE_ENGINE_BACKOFF_US", &Settings::engine_backoff, 1, kMaxMicros,
   "longest idle nap of the MPI progress thread: higher saves idle CPU, lower answers a quiet rank sooner"},
  {"TROUPE_ENGINE_LINGER_US", &Settings::engine_linger, 0, kMaxMicros,
   "the progress thread keeps polling this long after traffic before it naps"},
  {"TROUPE_WAIT_BACKOFF_US", &Settings::wait_backoff, 1, kMaxMicros,
   "longest nap of a thread that waits while helping or driving progress"},
  {"TROUPE_SHARED_CORES", &Settings::shared_cores, 0, 1,
   "1: this rank's threads share cores with other ranks', so waits sleep instead of spinning; 0: they do not (auto: detected from the node's affinity masks)"},
  {"TROUPE_WIRE_LOCAL", &Settings::wire_local, 0, 1,
   "1: every task goes through the wire format, also when it runs on the submitting rank (debug)"},
  {"TROUPE_STARTUP_TIMEOUT_MS", &Settings::startup_timeout, 1, kMaxMillis,
   "a collective construction (Executor) raises, naming the ranks that did not arrive, after this long"},
  {"TROUPE_FAILURE_TIMEOUT_MS", &Settings::failure_timeout, 0, kMaxMillis,
   "a rank silent this long while another waits on it is declared lost (0: no failure detection)"},
  {"TROUPE_SPAWN_WORKERS", &Settings::spawn_workers, 0, 4096,
   "a singleton Runtime spawns this many worker processes and works on the parent and them (0: none)"},
  {"TROUPE_CORO_STALL_MS", &Settings::coro_stall, 0, kMaxMillis,
   "debug check: a coroutine step holding a pool worker longer than this is reported on stderr (0: off)"},
  {"TROUPE_TRACE", &Settings::trace, 0, 0,
   "a file: rank 0 writes a Chrome/Perfetto trace (tasks per rank x thread, messages) there when the Runtime ends (unset: off)"},
  {"TROUPE_PROGRESS", &Settings::progress, 0, 2,
   "progress bar of Executor::map/map_reduce and ThreadPool::map on the root's stderr: 0 off, 1 when stderr is a terminal, 2 always"},
};
// clang-format on

// A knob whose unset value is a rule (nullopt) also takes the word "auto".
bool takes_auto(const Knob& k) { return std::holds_alternative<std::optional<std::size_t> Settings::*>(k.field); }

// A knob that holds text (a path): any value that is not blank.
bool takes_text(const Knob& k) { return std::holds_alternative<std::string Settings::*>(k.field); }

std::string rule(const Knob& k) {
  if (takes_text(k)) return "a file path";
  const bool micros = std::holds_alternative<Micros Settings::*>(k.field);
  const bool millis = std::holds_alternative<Millis Settings::*>(k.field);
  std::string r =
      k.max == 1 ? "0 or 1" : "an integer in [" + std::to_string(k.min) + ", " + std::to_string(k.max) + "]";
  if (takes_auto(k)) r += " or auto";
  return micros ? r + " (microseconds)" : millis ? r + " (milliseconds)" : r;
}

std::string value_text(const Settings& s, const Knob& k) {
  return std::visit(
      [&s](auto member) -> std::string {
        const auto& v = s.*member;
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "1" : "0";
        } else if constexpr (std::is_same_v<T, Micros> || std::is_same_v<T, Millis>) {
          return std::to_string(v.count());
        } else if constexpr (std::is_same_v<T, std::string>) {
          return v.empty() ? "off" : v;
        } else if constexpr (std::is_same_v<T, std::size_t>) {
          return std::to_string(v);
        } else {
          return v ? std::to_string(*v) : "auto";
        }
      },
      k.field);
}

std::string_view trimmed(std::string_view s) {
  const auto first = s.find_first_not_of(kBlank);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kBlank) - first + 1);
}

std::mutex g_mutex;
std::atomic<const Settings*> g_settings{nullptr};

// Under g_mutex. Every Settings ever published stays (a deque never moves its elements, and
// it is never destroyed): settings() hands out references for the life of the process.
const Settings& publish(Settings s) {
  static auto* all = new std::deque<Settings>;
  const Settings& p = all->emplace_back(std::move(s));
  g_settings.store(&p, std::memory_order_release);
  return p;
}

}  // namespace

namespace detail {

std::optional<std::size_t> parse_count(const char* text) noexcept {
  if (text == nullptr) return std::nullopt;
  std::string_view s(text);
  const auto first = s.find_first_not_of(kBlank);
  if (first == std::string_view::npos) return std::nullopt;
  s = s.substr(first, s.find_last_not_of(kBlank) - first + 1);
  std::size_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

const Settings& reload_settings() {
  Settings s = read_settings([](const char* name) { return std::getenv(name); });
  std::lock_guard lock(g_mutex);
  return publish(std::move(s));
}

}  // namespace detail

Settings read_settings(const std::function<const char*(const char*)>& getenv_fn) {
  Settings s;
  for (const Knob& k : kKnobs) {
    const char* text = getenv_fn(k.name);
    if (text == nullptr) continue;  // unset: the default; anything set must satisfy the rule
    if (std::string_view(text).find_first_not_of(kBlank) == std::string_view::npos) {
      // Most often `TROUPE_X=$N` with N unset in a job script: never silently the default.
      throw ValueError(std::string(k.name) + " is set but empty; unset it for the default (" +
                       value_text(Settings{}, k) + "), or set it to " + rule(k));
    }
    if (takes_text(k)) {  // taken verbatim: a path may hold spaces
      s.*std::get<std::string Settings::*>(k.field) = text;
      s.from_env.emplace_back(k.name);
      continue;
    }
    if (takes_auto(k) && trimmed(text) == "auto") {  // the rule, as when unset
      s.from_env.emplace_back(k.name);
      continue;
    }
    const auto v = detail::parse_count(text);
    if (!v || *v < k.min || *v > k.max) {
      throw ValueError(std::string(k.name) + " must be " + rule(k) + ", got '" + text + "'");
    }
    std::visit(
        [&s, n = *v](auto member) {
          using T = std::decay_t<decltype(s.*member)>;
          if constexpr (std::is_same_v<T, bool>) {
            s.*member = n != 0;
          } else if constexpr (std::is_same_v<T, Micros> || std::is_same_v<T, Millis>) {
            s.*member = T(static_cast<typename T::rep>(n));
          } else if constexpr (std::is_same_v<T, std::string>) {
            (void)n;  // text knobs are taken above
          } else {
            s.*member = n;
          }
        },
        k.field);
    s.from_env.emplace_back(k.name);
  }
  return s;
}

const Settings& settings() {
  if (const Settings* p = g_settings.load(std::memory_order_acquire)) return *p;
  std::lock_guard lock(g_mutex);
  if (const Settings* p = g_settings.load(std::memory_order_acquire)) return *p;
  return publish(read_settings([](const char* name) { return std::getenv(name); }));
}

std::vector<KnobState> knob_states(const Settings& s) {
  const Settings defaults;
  std::vector<KnobState> out;
  for (const Knob& k : kKnobs) {
    KnobState st;
    st.name = k.name;
    st.value = value_text(s, k);
    st.default_value = value_text(defaults, k);
    for (const auto& n : s.from_env) st.from_env = st.from_env || n == k.name;
    st.effect = k.effect;
    out.push_back(std::move(st));
  }
  return out;
}

std::string describe(const Settings& s) {
  std::string out;
  for (const KnobState& k : knob_states(s)) {
    out += k.name + "=" + k.value + " (default " + k.default_value +
           (k.from_env ? ", from env): " : ", from default): ") + k.effect + "\n";
  }
  return out;
}

}  // namespace troupe
