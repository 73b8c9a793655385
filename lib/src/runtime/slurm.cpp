// Slurm's job facts: the start-up log line and the tasks-per-node list. No MPI here.
#include "troupe/runtime/slurm.hpp"

#include <cstdlib>
#include <string>
#include <string_view>

namespace troupe {

namespace {

constexpr std::size_t kMaxShown = 200;  // longest value shown in the start-up line

bool set(const char* value) noexcept { return value != nullptr && *value != '\0'; }

// The value for a log line: control characters (a newline would split the line) become '?'.
std::string shown(const char* value) {
  std::string_view v(value);
  const bool cut = v.size() > kMaxShown;
  if (cut) v = v.substr(0, kMaxShown);
  std::string out;
  out.reserve(v.size() + 3);
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (cut) out += "...";
  return out;
}

const char* first_set(const char* a, const char* b) noexcept {
  const char* va = std::getenv(a);
  return set(va) ? va : std::getenv(b);
}

// Parses the digits at text[pos...]; advances pos. nullopt if there are none or too many.
std::optional<std::size_t> digits(std::string_view text, std::size_t& pos) noexcept {
  std::size_t value = 0;
  std::size_t start = pos;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    if (pos - start >= 9) return std::nullopt;
    value = value * 10 + static_cast<std::size_t>(text[pos] - '0');
    ++pos;
  }
  if (pos == start) return std::nullopt;
  return value;
}

}  // namespace

std::string describe_slurm_job(const SlurmJobInputs& in) {
  if (!set(in.job_id)) return {};
  std::string line = "slurm job " + shown(in.job_id);
  if (set(in.step_id)) line.append(" step ").append(shown(in.step_id));
  line += ": ";
  if (set(in.ntasks)) {
    line.append(shown(in.ntasks)).append(std::string_view(in.ntasks) == "1" ? " task" : " tasks");
  } else {
    line += "tasks not set";
  }
  line.append(" on nodes ").append(set(in.nodelist) ? shown(in.nodelist) : std::string("not set"));
  if (set(in.cpus_per_task)) {
    line.append(", ").append(shown(in.cpus_per_task)).append(" CPUs per task");
  } else {
    line += ", CPUs per task not set";
  }
  return line;
}

SlurmJobInputs slurm_job_from_environment() noexcept {
  SlurmJobInputs in;
  in.job_id = std::getenv("SLURM_JOB_ID");
  in.step_id = std::getenv("SLURM_STEP_ID");
  in.ntasks = first_set("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS");
  in.nodelist = first_set("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST");
  in.cpus_per_task = std::getenv("SLURM_CPUS_PER_TASK");
  return in;
}

std::optional<std::size_t> slurm_tasks_on_node(const char* tasks_per_node, std::size_t node_index) noexcept {
  if (tasks_per_node == nullptr) return std::nullopt;
  const std::string_view text(tasks_per_node);
  std::size_t pos = 0;
  std::size_t seen = 0;  // nodes covered by the entries before this one
  std::optional<std::size_t> answer;
  while (true) {  // the whole list is checked, also after the answer is known
    const auto count = digits(text, pos);
    if (!count || *count == 0) return std::nullopt;
    std::size_t repeat = 1;
    if (pos < text.size() && text[pos] == '(') {
      if (text.substr(pos, 2) != "(x") return std::nullopt;
      pos += 2;
      const auto r = digits(text, pos);
      if (!r || *r == 0 || pos >= text.size() || text[pos] != ')') return std::nullopt;
      ++pos;
      repeat = *r;
    }
    if (!answer && node_index < seen + repeat) answer = *count;
    seen += repeat;
    if (pos == text.size()) return answer;  // nullopt: index past the end
    if (text[pos] != ',') return std::nullopt;
    ++pos;
  }
}

}  // namespace troupe
