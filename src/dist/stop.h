// Stopping early, on purpose or not (CONVENTIONS.md §1.4, §3.1).
//
// Graceful stop: SIGUSR1 (Slurm's warning before the time limit, `--signal=USR1@...`) or SIGTERM (the
// time limit, scancel, preemption) or a file `<run.dir>/STOP` set a local flag. At every batch
// boundary all ranks agree with one MPI_Allreduce(MAX), so a signal that reaches any rank stops every
// rank at the same boundary; they save progress and exit with EXIT_RESUMABLE. After SIGTERM a
// watchdog thread ends the process with EXIT_RESUMABLE once `term_grace_seconds` have passed (Slurm
// sends SIGKILL after KillWait, usually 30 s; a rank blocked in a collective must not wait for it).
//
// Fatal errors: main() catches, logs and calls mpi::abort_world(code) when the world has more than
// one rank, so no rank is left waiting in a collective (dist/mpi.h).
//
// Fault injection for tests: THINKSTEER_FAULT="<action>@<point>:<n>[:<rank>]" performs <action> the
// n-th time (1-based) rank <rank> (default 0) passes fault_point("<point>"). Actions: sigkill, sigterm,
// sigusr1, throw. Points are named where they are called (e.g. "batch", "write").
#pragma once
#include <filesystem>
#include <stdexcept>
#include <string>

#include "dist/mpi.h"

namespace ts {

inline constexpr int EXIT_RESUMABLE = 75;  // EX_TEMPFAIL: stopped early, progress saved, rerun continues

// Thrown (on every rank at once) after progress was saved; main() exits with EXIT_RESUMABLE.
class StopRequested : public std::runtime_error {
 public:
  StopRequested() : std::runtime_error("stopped on request; progress saved, rerun to continue") {}
};

// Installs the SIGUSR1/SIGTERM handlers (once per process) and remembers the run directory for the
// STOP file.
void stop_install(const std::filesystem::path& run_dir, double term_grace_seconds = 20);

// Local state: 0 none, 1 soft (SIGUSR1 or STOP file), 2 SIGTERM.
int stop_local();

// COLLECTIVE over `comm`: the maximum of stop_local() over the ranks (0: carry on).
int stop_agree(const mpi::Comm& comm);

// Fault injection (see above); a no-op unless THINKSTEER_FAULT names this point.
void fault_point(const char* point, int rank);

}  // namespace ts
