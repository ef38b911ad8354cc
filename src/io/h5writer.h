// Background writes into a ParallelFile, so that the ranks compute the next rows while the last ones
// go to disk. One flush (a list of dataset writes) is in flight at a time: submit() hands it to the
// writer thread and returns; the next submit() first waits for it. Needs MPI_THREAD_MULTIPLE (the
// writer thread's collective writes run on the file's own communicator while the main thread keeps
// using its communicators); without it, or with background = false, writes run synchronously in
// submit(). While the writer owns the file no other thread may call HDF5.
#pragma once
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "io/h5store.h"

namespace ts::h5 {

struct RowWrite {
  std::string path;
  std::vector<RowRange> ranges;  // empty on a rank with nothing to write (it still takes part)
  const void* data = nullptr;
  std::shared_ptr<void> owner;   // keeps `data` alive until written
};

class BackgroundWriter {
 public:
  BackgroundWriter(ParallelFile& file, int rank, bool background = true);
  // Waits for the writes in flight and stops the thread; while an exception unwinds with a write in
  // flight (the job is aborting, the write may never finish), leaves the thread behind instead.
  ~BackgroundWriter();
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  // COLLECTIVE in effect: every rank submits the same sequence of writes (same paths, same order).
  void submit(std::vector<RowWrite> writes);
  // Waits until everything submitted is written; rethrows the writer's error, if any.
  void wait();
  bool background() const { return background_; }
  double seconds_writing() const;  // time the writes took (in the background or not)

 private:
  // Shared with the thread (which may outlive this object on an abort).
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<RowWrite> job;
    bool has_job = false, stop = false;
    std::exception_ptr error;
    double seconds = 0;
  };
  static void write_all(ParallelFile& file, int rank, State& st, const std::vector<RowWrite>& writes);

  ParallelFile& file_;
  int rank_;
  bool background_;
  std::shared_ptr<State> st_ = std::make_shared<State>();
  std::thread thread_;
};

}  // namespace ts::h5
