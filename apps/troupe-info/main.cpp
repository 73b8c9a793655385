// troupe-info — what each rank is, where it runs and what troupe decided for it (the
// psutil of a troupe job): host, pid, MPI library and thread level, communicator sizes, node
// rank, affinity, threads per rank and the rule that chose them, memory, the effective
// TROUPE_* settings, and warnings about binding traps. Rank 0 prints every rank's facts in
// rank order; docs/troupe-info.md explains each field and each warning.
//
//   build/apps/troupe-info/troupe-info                       # a singleton
//   mpirun -n 4 build/apps/troupe-info/troupe-info [--json] [--timeout S]
//
// Exit status: 0 (warnings are facts, not failures); 2 for bad arguments or an error.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/core/config.hpp"
#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/text.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/gather.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/version.hpp"

namespace {

struct Args {
  bool json = false;
  std::chrono::milliseconds timeout{0};  // 0: TROUPE_STARTUP_TIMEOUT_MS
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--json") {
      a.json = true;
    } else if (flag == "--timeout" && i + 1 < argc) {
      const auto s = troupe::detail::parse_count(argv[++i]);
      if (!s || *s == 0 || *s > 86400) {
        throw troupe::ValueError(std::string("troupe-info: --timeout takes whole seconds in [1, 86400], got '") +
                                 argv[i] + "'");
      }
      a.timeout = std::chrono::seconds(*s);
    } else if (flag == "--help" || flag == "-h") {
      std::printf("usage: troupe-info [--json] [--timeout S]\n");
      std::exit(0);
    } else {
      throw troupe::ValueError(std::string("troupe-info: unknown argument '").append(flag) +
                               "' (usage: troupe-info [--json] [--timeout S])");
    }
  }
  return a;
}

// JSON string literal of @p s (the library's one JSON escaper).
std::string quoted(std::string_view s) {
  std::string out;
  troupe::detail::append_json_string(out, s);
  return out;
}

std::string mib(long bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

// Why the rank runs its thread count: the rule of troupe/runtime/topology.hpp that decided.
std::string threads_reason(const troupe::RuntimeInfo& i) {
  const std::string& src = i.threads_source;
  if (src == "option") return "the program's explicit count (RuntimeOptions::threads)";
  if (src == "TROUPE_THREADS") return "the TROUPE_THREADS environment variable";
  if (src == "SLURM_CPUS_PER_TASK") return "SLURM_CPUS_PER_TASK (srun -c N)";
  if (src == "affinity") {
    if (i.affinity.size() >= i.node_cpus && i.node_size > 1) {
      return "the node's " + std::to_string(i.node_cpus) + " CPUs shared among its " + std::to_string(i.node_size) +
             " ranks (the mask is the whole node)";
    }
    return "the " + std::to_string(i.affinity.size()) + " CPU(s) of this rank's affinity mask";
  }
  return "nothing known: 1";
}

// "none" when the rank may run on every CPU of the node, else "part".
std::string binding_of(const troupe::RuntimeInfo& i) { return i.affinity.size() >= i.node_cpus ? "none" : "part"; }

// One rank as a JSON object (one line).
std::string to_json(const troupe::RuntimeInfo& i, const std::vector<troupe::KnobState>& knobs) {
  const auto num = [](auto v) { return std::to_string(v); };
  const auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  std::string cpus = "[";
  for (std::size_t k = 0; k < i.affinity.size(); ++k) cpus.append(k ? "," : "").append(std::to_string(i.affinity[k]));
  cpus += "]";
  std::string settings = "{";
  for (std::size_t k = 0; k < knobs.size(); ++k) {
    settings.append(k ? ", " : "");
    settings += quoted(knobs[k].name) + ": {\"value\": " + quoted(knobs[k].value) +
                ", \"default\": " + quoted(knobs[k].default_value) + ", \"from_env\": " + b(knobs[k].from_env) + "}";
  }
  settings += "}";
  std::string warnings = "[";
  for (std::size_t k = 0; k < i.warnings.size(); ++k) {
    warnings.append(k ? ", " : "");
    warnings += std::string("{\"trap\": ") + quoted(troupe::to_string(i.warnings[k].trap)) +
                ", \"message\": " + quoted(i.warnings[k].message) + "}";
  }
  warnings += "]";
  return std::string("{\"rank\": ") + num(i.rank) + ", \"size\": " + num(i.size) +
         ", \"world_rank\": " + num(i.world_rank) + ", \"world_size\": " + num(i.world_size) +
         ", \"node_rank\": " + num(i.node_rank) + ", \"node_size\": " + num(i.node_size) +
         ", \"host\": " + quoted(i.host) + ", \"pid\": " + num(i.pid) +
         ", \"mpi_implementation\": " + quoted(i.mpi_implementation) + ", \"mpi_library\": " + quoted(i.mpi_library) +
         ", \"mpi_standard\": " + quoted(i.mpi_standard) + ", \"thread_level\": " + quoted(i.thread_level) +
         ", \"thread_level_requested\": " + quoted(i.thread_level_requested) + ", \"mpi_mode\": " + quoted(i.mpi_mode) +
         ", \"owns_mpi\": " + b(i.owns_mpi) + ", \"cpus\": " + cpus +
         ", \"cpu_list\": " + quoted(troupe::format_cpu_list(i.affinity)) + ", \"node_cpus\": " + num(i.node_cpus) +
         ", \"node_covered_cpus\": " + num(i.binding.node_covered_cpus) +
         ", \"shared_mask_cpus\": " + num(i.binding.shared_mask_cpus) +
         ", \"node_threads\": " + num(i.binding.node_threads) + ", \"threads\": " + num(i.threads) +
         ", \"threads_source\": " + quoted(i.threads_source) + ", \"threads_reason\": " + quoted(threads_reason(i)) +
         ", \"binding\": " + quoted(binding_of(i)) + ", \"shared_cores\": " + b(i.shared_cores) +
         ", \"rss_bytes\": " + num(i.rss_bytes) + ", \"peak_rss_bytes\": " + num(i.peak_rss_bytes) +
         ", \"troupe_version\": " + quoted(troupe::version()) + ", \"settings\": " + settings +
         ", \"warnings\": " + warnings + "}";
}

// One rank as a readable block.
std::string to_text(const troupe::RuntimeInfo& i, const std::vector<troupe::KnobState>& knobs) {
  const auto row = [](const char* name, const std::string& value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "  %-14s ", name);
    return buf + value + "\n";
  };
  std::string s = "rank " + std::to_string(i.rank) + "/" + std::to_string(i.size) + "\n";
  s += row("host", i.host + ", pid " + std::to_string(i.pid));
  s += row("mpi", i.mpi_library + " (" + i.mpi_implementation + ", MPI " + i.mpi_standard + ")");
  s += row("thread level", i.thread_level +
                               (i.owns_mpi ? " (requested " + i.thread_level_requested + ", MPI started by troupe)"
                                           : " (adopted from the program)") +
                               ", troupe mode " + i.mpi_mode);
  s += row("communicators", "world " + std::to_string(i.world_rank) + "/" + std::to_string(i.world_size) + ", troupe " +
                                std::to_string(i.rank) + "/" + std::to_string(i.size) + ", node " +
                                std::to_string(i.node_rank) + "/" + std::to_string(i.node_size));
  s += row("cpus", troupe::format_cpu_list(i.affinity) + " (" + std::to_string(i.affinity.size()) + " of " +
                       std::to_string(i.node_cpus) + " online, " +
                       (binding_of(i) == "none" ? "not bound" : "bound to part of the node") +
                       "; the node's ranks use " + std::to_string(i.binding.node_covered_cpus) + ", " +
                       std::to_string(i.binding.shared_mask_cpus) + " of this rank's shared with another rank)");
  s += row("threads", std::to_string(i.threads) + " (" + i.threads_source + ": " + threads_reason(i) +
                          "; the node's ranks run " + std::to_string(i.binding.node_threads) + ")");
  s += row("shared cores", i.shared_cores ? "yes: waits sleep instead of spinning" : "no");
  s += row("memory", "rss " + mib(i.rss_bytes) + ", peak " + mib(i.peak_rss_bytes));
  std::string set;
  for (const auto& k : knobs) {
    if (k.from_env) set.append(set.empty() ? "" : " ").append(k.name).append("=").append(k.value);
  }
  s += row("settings", set.empty() ? "all TROUPE_* at their defaults" : set + " (the rest at their defaults)");
  for (const auto& w : i.warnings) {
    s += row("WARNING", std::string("[").append(troupe::to_string(w.trap)).append("] ").append(w.message));
  }
  return s;
}

int run(int argc, char** argv) {
  const Args a = parse(argc, argv);  // before MPI starts: --help and bad arguments need no MPI
  troupe::RuntimeOptions options;
  options.quiet = true;  // the warnings are printed below, for every rank
  troupe::Runtime rt(argc, argv, options);
  const auto knobs = troupe::knob_states(troupe::settings());
  const troupe::RuntimeInfo info = rt.info();
  // host \x1e text \x1e json: the root counts the nodes and prints one form.
  const std::string mine = info.host + '\x1e' + to_text(info, knobs) + '\x1e' + to_json(info, knobs);
  const auto timeout = a.timeout.count() > 0 ? a.timeout : troupe::settings().startup_timeout;
  std::vector<std::string> all;
  try {
    all =
        troupe::detail::gather_text(rt.comm(), 0, mine, troupe::Deadline::after(timeout, "troupe-info"), "troupe-info");
  } catch (const troupe::TimeoutError& e) {
    // A rank that never arrives leaves a collective pending: MPI_Finalize could wait forever.
    troupe::log(e.what());
    MPI_Abort(rt.comm(), 3);
    return 3;
  }
  if (rt.rank() != 0) return 0;

  std::set<std::string> hosts;
  std::vector<std::string> texts, jsons;
  for (const std::string& r : all) {
    const auto p1 = r.find('\x1e');
    const auto p2 = r.find('\x1e', p1 + 1);
    hosts.insert(r.substr(0, p1));
    texts.push_back(r.substr(p1 + 1, p2 - p1 - 1));
    jsons.push_back(r.substr(p2 + 1));
  }
  std::string out;
  if (a.json) {
    out = "[\n";
    for (std::size_t r = 0; r < jsons.size(); ++r) out += "  " + jsons[r] + (r + 1 < jsons.size() ? ",\n" : "\n");
    out += "]\n";
  } else {
    std::size_t warned = 0;
    for (const auto& t : texts) warned += t.find("  WARNING") != std::string::npos ? 1 : 0;
    out = "troupe-info: troupe " + std::string(troupe::version()) + ", " + std::to_string(rt.size()) + " rank(s) on " +
          std::to_string(hosts.size()) + " node(s), " + info.mpi_implementation + " (MPI " + info.mpi_standard + "), " +
          std::to_string(warned) + " rank(s) with warnings\n";
    for (const auto& t : texts) out += t;
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    troupe::log(std::string("troupe-info: ") + e.what());
    return 2;
  }
}
