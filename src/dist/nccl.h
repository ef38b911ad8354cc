// An NCCL communicator bootstrapped over MPI, for tensors that live on CUDA (pipeline hidden states,
// gradient allreduce). Built only with NCCL (THINKSTEER_HAVE_NCCL); CPU tensors use MPI instead.
//
// Hangs become errors (docs/conventions.md §3.2): the communicator is created non-blocking, and every
// operation is enqueued on the current CUDA stream and then polled (ncclCommGetAsyncError and
// cudaStreamQuery) until it completes or `timeout_seconds` pass; on an error or a timeout the
// communicator is aborted (ncclCommAbort) and std::runtime_error names the operation, the peer and
// the byte count, which main() turns into an abort of every rank.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>

#include "dist/mpi.h"

namespace ts {

class NcclComm {
 public:
  // COLLECTIVE over `comm`: rank 0 makes the unique id, MPI_Bcast shares it, every rank joins on
  // CUDA device `device`.
  NcclComm(const mpi::Comm& comm, int device, double timeout_seconds);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  // Point to point: every send must meet the peer's recv of the same size and dtype.
  void send(const at::Tensor& t, int peer);
  void recv(at::Tensor& t, int peer);  // into a preallocated contiguous tensor
  // COLLECTIVE over the communicator.
  void allreduce_sum(at::Tensor& t);
  void bcast(at::Tensor& t, int root);

  static int version();  // ncclGetVersion, e.g. 22806

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ts
