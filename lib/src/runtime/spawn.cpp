// Spawned workers (docs/spawn.md). MPI_Comm_spawn and MPI_Intercomm_merge block, and when a
// child never reaches MPI_Init (a missing or non-MPI program, a crash at start) they block
// forever (Open MPI 4.1 and mpi4py.futures alike). So they run on a helper thread while the
// constructing thread waits in the one wait loop with a deadline; on expiry the helper is
// left inside MPI (it cannot be interrupted) and the caller gets a TimeoutError.
#include "spawn.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <thread>
#include <utility>

#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"

namespace troupe::detail {

namespace {

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// What the helper thread did; shared with it, so an abandoned helper keeps it alive.
struct Blocking {
  WaitWord word;
  std::atomic<bool> done{false};
  SpawnLink link;
  std::exception_ptr error;
};

// Runs @p body on a helper thread; true when it ended before @p timeout, false when it was
// abandoned (the thread is detached and stays blocked inside MPI).
template <class Body>
bool run_bounded(const std::shared_ptr<Blocking>& st, Body body, std::chrono::milliseconds timeout, const char* api) {
  const Deadline deadline = Deadline::after(timeout, api);
  std::thread helper([st, body = std::move(body)]() mutable {
    try {
      body(*st);
    } catch (...) {
      st->error = std::current_exception();
    }
    st->done.store(true, std::memory_order_release);
    st->word.notify_all();
  });
  WaitParams params;
  params.help = false;
  const bool ended =
      st->word.wait([&st] { return st->done.load(std::memory_order_acquire); }, deadline, nullptr, api, params);
  if (!ended) {
    helper.detach();
    return false;
  }
  helper.join();
  if (st->error) std::rethrow_exception(st->error);
  return true;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s.append(" ").append(w);
  return s;
}

}  // namespace

std::string self_executable() {
  std::string buf(PATH_MAX, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) {
    throw InvalidStateError(std::string("troupe::Runtime: cannot spawn workers: /proc/self/exe is unreadable (") +
                            std::strerror(errno) + "); set SpawnOptions::command");
  }
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

std::vector<std::string> self_arguments() {
  std::string all;
  const int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) all.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
  }
  std::vector<std::string> words;
  std::size_t pos = 0;
  while (pos < all.size()) {
    const std::size_t end = all.find('\0', pos);
    words.push_back(all.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  if (!words.empty()) words.erase(words.begin());  // argv[0]
  return words;
}

std::string resolve_worker_command(const std::string& command) {
  if (command.find('/') != std::string::npos) {
    if (!is_executable_file(command)) {
      throw ValueError("troupe::Runtime: cannot spawn workers: '" + command +
                       "' is not an executable file (SpawnOptions::command)");
    }
    return command;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  std::size_t pos = 0;
  while (pos <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', pos), dirs.size());
    std::string candidate = end > pos ? dirs.substr(pos, end - pos) : std::string(".");
    candidate.append("/").append(command);
    if (is_executable_file(candidate)) return candidate;
    pos = end + 1;
  }
  throw ValueError("troupe::Runtime: cannot spawn workers: '" + command +
                   "' is not an executable file in PATH (SpawnOptions::command)");
}

SpawnLink spawn_and_merge(const std::string& command, const std::vector<std::string>& args, int workers,
                          std::chrono::milliseconds timeout) {
  auto st = std::make_shared<Blocking>();
  auto body = [command, args, workers](Blocking& b) {
    // A private copy of MPI_COMM_SELF with MPI_ERRORS_RETURN: a failed spawn comes back as a
    // code instead of aborting, and the program's MPI_COMM_SELF keeps its error handler.
    MPI_Comm self = MPI_COMM_NULL;
    TROUPE_MPI_CHECK(MPI_Comm_dup(MPI_COMM_SELF, &self));
    MPI_Info info = MPI_INFO_NULL;
    std::vector<int> codes(static_cast<std::size_t>(workers), MPI_SUCCESS);
    int rc = TROUPE_MPI_UNCHECKED(MPI_Comm_set_errhandler(self, MPI_ERRORS_RETURN));
    if (rc == MPI_SUCCESS) rc = TROUPE_MPI_UNCHECKED(MPI_Info_create(&info));
#ifdef OPEN_MPI
    // An Open MPI singleton counts one slot per core, its own included: more children than
    // the cores left fail with "not enough slots" unless the mapping may oversubscribe
    // (MPI_Comm_spawn(3) of Open MPI 4.1: info key "map_by"; ":OVERSUBSCRIBE" is the
    // modifier of mpirun's --map-by, with the default policy).
    if (rc == MPI_SUCCESS) rc = TROUPE_MPI_UNCHECKED(MPI_Info_set(info, "map_by", ":OVERSUBSCRIBE"));
#endif
    if (rc == MPI_SUCCESS) {
      std::vector<std::string> words = args;
      std::vector<char*> argv;
      for (auto& w : words) argv.push_back(w.data());
      argv.push_back(nullptr);
      std::string cmd = command;
      rc = TROUPE_MPI_UNCHECKED(
          MPI_Comm_spawn(cmd.data(), argv.data(), workers, info, 0, self, &b.link.inter, codes.data()));
    }
    if (info != MPI_INFO_NULL) TROUPE_MPI_UNCHECKED(MPI_Info_free(&info));
    TROUPE_MPI_UNCHECKED(MPI_Comm_free(&self));
    mpi_check(rc, "MPI_Comm_spawn", __FILE__, __LINE__);
    for (int code : codes) mpi_check(code, "MPI_Comm_spawn (a worker's error code)", __FILE__, __LINE__);
    TROUPE_MPI_CHECK(MPI_Comm_set_errhandler(b.link.inter, MPI_ERRORS_RETURN));
    TROUPE_MPI_CHECK(MPI_Intercomm_merge(b.link.inter, 0, &b.link.merged));  // the parent first
    TROUPE_MPI_CHECK(MPI_Comm_set_errhandler(b.link.merged, MPI_ERRORS_RETURN));
  };
  if (!run_bounded(st, std::move(body), timeout, "troupe::Runtime")) {
    throw TimeoutError("troupe::Runtime: spawning " + std::to_string(workers) + " worker(s) ('" + command +
                       join_words(args) + "') did not complete within " + std::to_string(timeout.count()) +
                       " ms (MPI_Comm_spawn + MPI_Intercomm_merge; SpawnOptions::timeout, default "
                       "TROUPE_STARTUP_TIMEOUT_MS): the workers did not start, or did not reach MPI_Init and their "
                       "own troupe::Runtime (not an MPI program? a crash at start?). The abandoned call stays "
                       "inside MPI, which will not be finalized: end the program");
  }
  return st->link;
}

SpawnLink join_parent(MPI_Comm parent, std::chrono::milliseconds timeout) {
  auto st = std::make_shared<Blocking>();
  auto body = [parent](Blocking& b) {
    b.link.inter = parent;
    TROUPE_MPI_CHECK(MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN));
    TROUPE_MPI_CHECK(MPI_Intercomm_merge(parent, 1, &b.link.merged));  // after the parent
    TROUPE_MPI_CHECK(MPI_Comm_set_errhandler(b.link.merged, MPI_ERRORS_RETURN));
  };
  if (!run_bounded(st, std::move(body), timeout, "troupe::Runtime")) {
    throw TimeoutError(
        "troupe::Runtime: this process was started by MPI_Comm_spawn, but joining its parent "
        "(MPI_Intercomm_merge) did not complete within " +
        std::to_string(timeout.count()) +
        " ms (SpawnOptions::timeout, default TROUPE_STARTUP_TIMEOUT_MS): the parent is not a troupe "
        "Runtime spawning workers, or it gave up. MPI will not be finalized: end the program");
  }
  return st->link;
}

void bounded_barrier(MPI_Comm comm, const Deadline& deadline, const std::string& what) {
  MPI_Request req = MPI_REQUEST_NULL;
  TROUPE_MPI_CHECK(MPI_Ibarrier(comm, &req));
  // The request is tested through a progress source of the one wait loop (a waiter with no
  // source registered sleeps until notified), only by this thread: other threads that drive
  // progress meanwhile skip it.
  struct Barrier final : ProgressSource {
    std::thread::id owner = std::this_thread::get_id();
    MPI_Request* req = nullptr;
    int rc = MPI_SUCCESS;
    std::atomic<bool> done{false};
    bool try_progress() noexcept override {
      if (std::this_thread::get_id() != owner || done.load(std::memory_order_relaxed)) return false;
      int flag = 0;
      rc = TROUPE_MPI_UNCHECKED(MPI_Test(req, &flag, MPI_STATUS_IGNORE));
      if (rc != MPI_SUCCESS || flag != 0) done.store(true, std::memory_order_release);
      return done.load(std::memory_order_relaxed);
    }
  } source;
  source.req = &req;
  add_progress_source(&source);
  WaitWord nobody;  // nothing notifies: the loop polls the source with its bounded back-off
  WaitParams params;
  params.help = false;
  bool ok = false;
  try {
    ok = nobody.wait(
        [&source] {
          (void)source.try_progress();
          return source.done.load(std::memory_order_acquire);
        },
        deadline, nullptr, "troupe::Runtime", params);
  } catch (...) {
    remove_progress_source(&source);
    throw;
  }
  remove_progress_source(&source);
  mpi_check(source.rc, "MPI_Ibarrier", __FILE__, __LINE__);
  if (!ok) throw TimeoutError(what);  // the request stays pending: a collective cannot be cancelled
}

}  // namespace troupe::detail
