#include "io/output_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"

namespace ts {
namespace fs = std::filesystem;

namespace {

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string slurm_job() {
  const char* job = std::getenv("SLURM_JOB_ID");
  return job ? job : "";
}

json read_holder(const fs::path& lock) {
  std::ifstream in(lock);
  std::stringstream s;
  s << in.rdbuf();
  try {
    json j = json::parse(s.str());
    return j.is_object() ? j : json::object();
  } catch (const std::exception&) {
    return json::object();  // being written by its holder, or damaged
  }
}

// The parent of a live process of this host (from /proc), or -1.
int64_t parent_of(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  const size_t close = stat.rfind(')');  // "pid (comm) state ppid ..."; comm may hold spaces
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 1));
  std::string state;
  int64_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

// A holder whose lock this process may take over: the same Slurm job (requeued); a process of this
// host that is gone; or an MPI rank of this host whose launcher is gone (an orphan of a job that
// ended, waiting out its SIGTERM grace period).
bool stale(const json& holder) {
  const std::string job = holder.value("slurm_job", "");
  if (!job.empty() && job == slurm_job()) return true;
  if (holder.value("host", "") != host_name()) return false;
  const int64_t pid = holder.value("pid", int64_t{0});
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return true;
  const int64_t launcher = holder.value("launcher_pid", int64_t{0});
  return launcher > 0 && parent_of(pid) != launcher;
}

// Creates `lock` exclusively with `content`; false when it exists.
bool create_exclusive(const fs::path& lock, const std::string& content) {
  const int fd = ::open(lock.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw InputError(lock.string(), "lock", std::string("cannot create the output's lock file: ") + std::strerror(errno));
  }
  const ssize_t n = ::write(fd, content.data(), content.size());
  const bool ok = n == static_cast<ssize_t>(content.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw InputError(lock.string(), "lock", std::string("cannot write the output's lock file: ") + std::strerror(errno));
  return true;
}

}  // namespace

fs::path output_lock_path(const fs::path& output) { return fs::path(output.string() + ".lock"); }

json lock_holder_self() {
  json self = {{"host", host_name()}, {"pid", static_cast<int64_t>(::getpid())}, {"slurm_job", slurm_job()}, {"started_utc", utc_now()}};
  // Under mpiexec a rank's parent is its launcher; a rank that outlives it belongs to a job that ended.
  if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK")) self["launcher_pid"] = static_cast<int64_t>(::getppid());
  return self;
}

std::string lock_holder_text(const json& h) {
  if (h.empty()) return "an unreadable holder";
  std::string s = "host " + h.value("host", "?") + " pid " + std::to_string(h.value("pid", int64_t{0}));
  if (const std::string job = h.value("slurm_job", ""); !job.empty()) s += " (Slurm job " + job + ")";
  return s + " since " + h.value("started_utc", "?");
}

OutputLock OutputLock::acquire(const fs::path& output) {
  fs::create_directories(output.parent_path().empty() ? fs::path(".") : output.parent_path());
  const fs::path lock = output_lock_path(output);
  json self = lock_holder_self();
  // A token that tells this holder from a requeued copy of the same job on the same host and pid.
  self["token"] = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "-" + std::to_string(::getpid());
  const std::string content = self.dump() + "\n";
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (create_exclusive(lock, content)) {
      OutputLock l;
      l.path_ = lock;
      l.token_ = self["token"];
      return l;
    }
    const json holder = read_holder(lock);
    if (!stale(holder))
      throw InputError(lock.string(), "lock", "another job is writing this output: held by " + lock_holder_text(holder) +
                                                  "; if that job is gone, remove the lock file (`thinksteer-check run <run.dir>` lists locks)");
    // Stale: remove it and try again (a concurrent taker may win the next create; then we refuse).
    std::error_code ec;
    fs::remove(lock, ec);
  }
  throw InputError(lock.string(), "lock", "could not take the output's lock (it keeps reappearing)");
}

OutputLock::OutputLock(OutputLock&& o) noexcept : path_(std::move(o.path_)), token_(std::move(o.token_)) { o.path_.clear(); }

OutputLock& OutputLock::operator=(OutputLock&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    token_ = std::move(o.token_);
    o.path_.clear();
  }
  return *this;
}

OutputLock::~OutputLock() { release(); }

void OutputLock::release() noexcept {
  if (path_.empty()) return;
  try {
    if (read_holder(path_).value("token", "") == token_) {
      std::error_code ec;
      fs::remove(path_, ec);
    }
  } catch (...) {
  }
  path_.clear();
}

std::vector<std::pair<fs::path, json>> output_locks_under(const fs::path& dir) {
  std::vector<std::pair<fs::path, json>> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && it->path().extension() == ".lock") out.emplace_back(it->path(), read_holder(it->path()));
  return out;
}

}  // namespace ts
