// Stopping early, on purpose or not (docs/conventions.md §1.4, §3.1).
//
// Graceful stop: SIGUSR1 (Slurm's warning before the time limit, `--signal=USR1@...`) or SIGTERM (the
// time limit, scancel, preemption) or a file `<run.dir>/STOP` set a local flag. At every batch
// boundary all ranks agree with one MPI_Allreduce(MAX), so a signal that reaches any rank stops every
// rank at the same boundary; they save progress and exit with EXIT_RESUMABLE. After SIGTERM a
// watchdog thread ends the process once `term_grace_seconds` have passed (Slurm sends SIGKILL after
// KillWait, usually 30 s; a rank blocked in a collective must not wait for it): with EXIT_RESUMABLE
// inside a batch loop, with 1 elsewhere (ResumablePhase).
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

// Thrown (on every rank at once) at a batch boundary after a stop request; `saved` says what was
// stored ("12 of 40 prompts in generations.progress.jsonl", "nothing: the rerun starts over");
// main() exits with EXIT_RESUMABLE.
class StopRequested : public std::runtime_error {
 public:
  explicit StopRequested(const std::string& saved) : std::runtime_error("stopped on request at a batch boundary; saved: " + saved) {}
};

// Installs the SIGUSR1/SIGTERM handlers (once per process) and remembers the run directory for the
// STOP file.
void stop_install(const std::filesystem::path& run_dir, double term_grace_seconds = 20);

// While one lives, the process is in a resumable phase (a batch loop): the SIGTERM watchdog exits with
// EXIT_RESUMABLE there, and with 1 anywhere else (a job stuck reading hostile input is not requeued).
class ResumablePhase {
 public:
  ResumablePhase();
  ~ResumablePhase();
  ResumablePhase(const ResumablePhase&) = delete;
  ResumablePhase& operator=(const ResumablePhase&) = delete;
};

// Local state: 0 none, 1 soft (SIGUSR1 or STOP file), 2 SIGTERM.
int stop_local();

// COLLECTIVE over `comm`: the maximum of stop_local() over the ranks (0: carry on).
int stop_agree(const mpi::Comm& comm);

// Fault injection (see above); a no-op unless THINKSTEER_FAULT names this point.
void fault_point(const char* point, int rank);

}  // namespace ts
