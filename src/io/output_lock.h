// One writer per output (docs/conventions.md §2.7): an advisory lock file "<output>.lock", created
// with O_CREAT | O_EXCL and holding its holder {"host", "pid", "slurm_job", "started_utc"}, taken by
// one rank for all of a job's ranks before the output is written and removed after its commit.
//
// A second job that finds the lock refuses with one line naming the holder (exit 2), unless the lock
// is stale: its holder ran on this host and its process is gone (or, for an MPI rank, its launcher is
// gone: a rank of a job that ended), or it is a Slurm job of the same job id (the same job requeued,
// on any node). A lock left by a job that died on another host cannot be
// told from a live one: remove it by hand once that job is gone (`thinksteer-check run RUN_DIR` lists
// the locks of a run directory). O_EXCL creation is atomic on local file systems, NFSv3+ and Lustre;
// the lock never relies on flock() or fcntl() locks, which NFS and Lustre mounts may not provide.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "core/json.h"

namespace ts {

class OutputLock {
 public:
  OutputLock() = default;
  // Takes the lock of `output` for this process. Throws InputError(<output>.lock, "lock", "held by
  // ...") when another live job holds it.
  static OutputLock acquire(const std::filesystem::path& output);
  OutputLock(OutputLock&& o) noexcept;
  OutputLock& operator=(OutputLock&& o) noexcept;
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  ~OutputLock();  // release()

  // Removes the lock file if it still names this holder. Idempotent.
  void release() noexcept;
  bool held() const { return !path_.empty(); }

 private:
  std::filesystem::path path_;
  std::string token_;  // this holder's identity, as written in the file
};

// The lock file of `output`.
std::filesystem::path output_lock_path(const std::filesystem::path& output);

// This process as a lock holder: {"host", "pid", "slurm_job", "started_utc"[, "launcher_pid"]}.
json lock_holder_self();
// One line describing a holder: "host H pid P (Slurm job J) since T".
std::string lock_holder_text(const json& holder);

// Every "*.lock" file under `dir` (recursively), with its holder (an empty object when unreadable).
std::vector<std::pair<std::filesystem::path, json>> output_locks_under(const std::filesystem::path& dir);

}  // namespace ts
