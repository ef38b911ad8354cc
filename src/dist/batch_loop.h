// The batch loop every stage's ranks run, with the stop agreement (dist/stop.h) and buffered writes.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "dist/runtime.h"

namespace ts {

// Every rank runs `rounds` rounds (the maximum of my_batches over ranks) and calls work(b) in round
// b < my_batches. At the end of each round the ranks agree with one MPI_Allreduce(MAX) of {stop
// requested, bytes buffered}, so every rank acts on this round's result at the same batch boundary: a
// stop request makes every rank call save() (COLLECTIVE) and throw StopRequested with what save()
// reports as saved, unless that was the last round (the work is complete, and the stage commits it);
// buffered bytes over flush_bytes on any rank make every rank call flush() (COLLECTIVE, e.g. the HDF5
// writes). After the last round flush() runs once more.
struct BatchLoop {
  std::function<void(int64_t)> work;      // local
  std::function<int64_t()> pending_bytes;  // local; empty: nothing is buffered
  std::function<void()> flush;            // COLLECTIVE; may be empty
  std::function<std::string()> save;      // COLLECTIVE: store progress after a stop request; returns what
                                          // was stored, for the log ("nothing: ..." when nothing is)
  int64_t flush_bytes = int64_t{256} << 20;
  std::string what;                       // progress label
  double progress_seconds = 30;
  std::function<std::string()> detail;    // progress detail
};
// COLLECTIVE over rt.world_comm.
void run_batches(Runtime& rt, int64_t my_batches, const BatchLoop& loop);

// Single-writer work: runs `work` on rank 0 while the other ranks wait at a barrier. COLLECTIVE over
// rt.world_comm. If `work` throws, the exception propagates (and main() aborts every rank).
void on_rank0(Runtime& rt, const std::function<void()>& work);

}  // namespace ts
