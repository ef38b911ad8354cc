#include "dist/batch_loop.h"

#include <mpi.h>

#include "core/error.h"
#include "core/log.h"
#include "dist/stop.h"

namespace ts {

void run_batches(Runtime& rt, int64_t my_batches, const BatchLoop& loop) {
  const int64_t rounds = rt.world_comm.allreduce_max(my_batches);
  const ResumablePhase resumable;
  Progress progress(loop.what, rounds, loop.progress_seconds);
  for (int64_t b = 0; b < rounds; ++b) {
    if (b < my_batches) {
      try {
        loop.work(b);
      } catch (const NonFiniteError& e) {
        throw NonFiniteError(loop.what + ", batch " + std::to_string(b + 1) + " of rank " + std::to_string(rt.rank) + ": " + e.what());
      }
    }
    fault_point("batch", rt.rank);
    // This round's vote, the same on every rank: {stop requested, bytes buffered}, MAX over ranks.
    int64_t vote[2] = {stop_local(), loop.pending_bytes ? loop.pending_bytes() : 0}, result[2] = {0, 0};
    mpi::check(MPI_Allreduce(vote, result, 2, MPI_INT64_T, MPI_MAX, rt.world_comm.get()), "MPI_Allreduce(batch vote)");
    if (result[0] > 0 && b + 1 < rounds) {  // after the last round the work is complete: it is committed instead
      spdlog::warn("{}: stop requested ({}); stopping after round {} of {}", loop.what, result[0] == 2 ? "SIGTERM" : "SIGUSR1 or STOP file", b + 1,
                   rounds);
      throw StopRequested(loop.save ? loop.save() : std::string("nothing was saved"));
    }
    if (loop.flush && result[1] >= loop.flush_bytes) loop.flush();
    progress.update(b + 1, loop.detail ? loop.detail() : "");
  }
  if (loop.flush) loop.flush();
  progress.finish(loop.detail ? loop.detail() : "");
}

void on_rank0(Runtime& rt, const std::function<void()>& work) {
  if (rt.rank == 0) work();
  rt.world_comm.barrier();
}

}  // namespace ts
