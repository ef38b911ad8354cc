// MPI as RAII objects (torch-free). `Env` initialises MPI once per process and finalises it at scope
// exit; `Comm` owns a communicator (a duplicate or a split, never MPI_COMM_WORLD itself) and frees it.
// Functions marked COLLECTIVE must be called by every rank of the communicator, in the same order and
// with matching arguments; the others are local.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ts::mpi {

// Initialises MPI, asking for MPI_THREAD_MULTIPLE (the HDF5 writer thread does collective I/O on its
// own communicator while the main thread computes; see io/h5writer.h). Works without a launcher
// (singleton). COLLECTIVE over MPI_COMM_WORLD, as are the constructor and the destructor.
class Env {
 public:
  Env(int* argc, char*** argv);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
};

// True between MPI_Init and MPI_Finalize.
bool active();
// True when MPI granted MPI_THREAD_MULTIPLE (else only the main thread may call MPI).
bool thread_multiple();

// Ends every rank of MPI_COMM_WORLD with `code` (Open MPI: SIGTERM to all, then SIGKILL). Flushes the
// logs first. Use when one rank fails and the others may be waiting in a collective.
[[noreturn]] void abort_world(int code);

// Destroying a Comm frees it, except while an exception unwinds the stack: then the process is about
// to abort (mpi::abort_world) and a peer may never reach the matching free.
class Comm {
 public:
  Comm() = default;
  ~Comm();
  Comm(Comm&& o) noexcept : comm_(o.comm_) { o.comm_ = MPI_COMM_NULL; }
  Comm& operator=(Comm&& o) noexcept;
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  // COLLECTIVE over `parent`: a private duplicate.
  static Comm dup(MPI_Comm parent);
  // COLLECTIVE: ranks with the same color form one communicator, ordered by key.
  Comm split(int color, int key) const;
  // COLLECTIVE: the ranks on this node (MPI_Comm_split_type SHARED), ordered by rank.
  Comm split_shared() const;

  MPI_Comm get() const { return comm_; }
  int rank() const;
  int size() const;

  // COLLECTIVE reductions and scans.
  int64_t allreduce_max(int64_t value) const;
  int64_t allreduce_min(int64_t value) const;
  int64_t allreduce_sum(int64_t value) const;
  void allreduce_sum(std::span<double> values) const;  // in place
  void allreduce_sum(std::span<float> values) const;   // in place
  void allreduce_sum(std::span<int64_t> values) const;  // in place
  void allreduce_max_inplace(std::span<int64_t> values) const;
  int64_t exscan_sum(int64_t value) const;               // sum over lower ranks (0 on rank 0)
  std::vector<int64_t> allgather(int64_t value) const;
  // COLLECTIVE: `s` on `root` replaces `s` everywhere.
  void bcast(std::string& s, int root) const;
  void bcast(std::span<int64_t> values, int root) const;
  // COLLECTIVE: every rank's strings, concatenated in rank order, on `root` (empty elsewhere).
  std::vector<std::string> gather_strings(const std::vector<std::string>& local, int root) const;
  void barrier() const;

 private:
  explicit Comm(MPI_Comm c) : comm_(c) {}
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// Throws std::runtime_error naming `what` when an MPI call did not return MPI_SUCCESS.
void check(int rc, const char* what);

}  // namespace ts::mpi
