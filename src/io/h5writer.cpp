#include "io/h5writer.h"

#include <chrono>

#include "dist/mpi.h"
#include "dist/stop.h"

namespace ts::h5 {

BackgroundWriter::BackgroundWriter(ParallelFile& file, int rank, bool background)
    : file_(file), rank_(rank), background_(background && mpi::thread_multiple()) {
  if (!background_) return;
  thread_ = std::thread([st = st_, &file, rank] {
    for (;;) {
      std::vector<RowWrite> job;
      {
        std::unique_lock lock(st->mu);
        st->cv.wait(lock, [&] { return st->has_job || st->stop; });
        if (!st->has_job) return;
        job = std::move(st->job);
      }
      try {
        write_all(file, rank, *st, job);
      } catch (...) {
        std::lock_guard lock(st->mu);
        st->error = std::current_exception();
      }
      {
        std::lock_guard lock(st->mu);
        st->has_job = false;
      }
      st->cv.notify_all();
    }
  });
}

BackgroundWriter::~BackgroundWriter() {
  if (!background_) return;
  {
    std::unique_lock lock(st_->mu);
    if (st_->has_job && std::uncaught_exceptions() > 0) {
      lock.unlock();
      thread_.detach();
      return;
    }
    st_->cv.wait(lock, [this] { return !st_->has_job; });
    st_->stop = true;
  }
  st_->cv.notify_all();
  thread_.join();
}

void BackgroundWriter::write_all(ParallelFile& file, int rank, State& st, const std::vector<RowWrite>& writes) {
  const auto t0 = std::chrono::steady_clock::now();
  for (const RowWrite& w : writes) {
    file.write_rows(w.path, w.ranges, w.data);
    fault_point("write", rank);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard lock(st.mu);
  st.seconds += secs;
}

void BackgroundWriter::submit(std::vector<RowWrite> writes) {
  if (!background_) {
    write_all(file_, rank_, *st_, writes);
    return;
  }
  wait();
  {
    std::lock_guard lock(st_->mu);
    st_->job = std::move(writes);
    st_->has_job = true;
  }
  st_->cv.notify_all();
}

void BackgroundWriter::wait() {
  if (!background_) return;
  std::unique_lock lock(st_->mu);
  st_->cv.wait(lock, [this] { return !st_->has_job; });
  if (st_->error) std::rethrow_exception(std::exchange(st_->error, nullptr));
}

double BackgroundWriter::seconds_writing() const {
  std::lock_guard lock(st_->mu);
  return st_->seconds;
}

}  // namespace ts::h5
