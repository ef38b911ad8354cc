#include "dist/nccl.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

namespace ts {
namespace {

ncclDataType_t nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return ncclFloat32;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kDouble: return ncclFloat64;
    case at::kLong: return ncclInt64;
    case at::kInt: return ncclInt32;
    case at::kByte: return ncclUint8;
    default: throw std::invalid_argument(std::string("NCCL: unsupported dtype ") + c10::toString(t.scalar_type()));
  }
}

}  // namespace

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
  int device = 0;
  double timeout = 600;
  int rank = 0;

  // Drives a non-blocking NCCL call to completion: first the enqueue (ncclInProgress), then the work
  // on the stream, with the deadline. On failure: abort the communicator and throw.
  void wait(ncclResult_t launched, const char* what, int peer, size_t bytes, cudaStream_t stream) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
    auto fail = [&](const std::string& why) {
      const std::string msg = std::string("NCCL ") + what + (peer >= 0 ? " peer " + std::to_string(peer) : "") + " (" +
                              std::to_string(bytes) + " bytes): " + why;
      if (comm != nullptr) {
        ncclCommAbort(comm);
        comm = nullptr;
      }
      throw std::runtime_error(msg);
    };
    ncclResult_t state = launched;
    while (state == ncclInProgress) {
      if (std::chrono::steady_clock::now() > deadline) fail("timed out while enqueuing");
      std::this_thread::yield();
      ncclCommGetAsyncError(comm, &state);
    }
    if (state != ncclSuccess) fail(std::string(ncclGetErrorString(state)) + " (" + ncclGetLastError(comm) + ")");
    for (;;) {
      const cudaError_t q = cudaStreamQuery(stream);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) fail(std::string("CUDA: ") + cudaGetErrorString(q));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm, &async);
      if (async != ncclSuccess && async != ncclInProgress) fail(std::string(ncclGetErrorString(async)) + " (" + ncclGetLastError(comm) + ")");
      if (std::chrono::steady_clock::now() > deadline) fail("timed out after " + std::to_string(timeout) + " s (a peer died or hangs?)");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
};

NcclComm::NcclComm(const mpi::Comm& comm, int device, double timeout_seconds) : impl_(std::make_unique<Impl>()) {
  impl_->device = device;
  impl_->timeout = timeout_seconds;
  impl_->rank = comm.rank();
  ncclUniqueId id;
  if (impl_->rank == 0 && ncclGetUniqueId(&id) != ncclSuccess) throw std::runtime_error("ncclGetUniqueId failed");
  mpi::check(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm.get()), "MPI_Bcast(ncclUniqueId)");
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const ncclResult_t rc = ncclCommInitRankConfig(&impl_->comm, comm.size(), id, impl_->rank, &config);
  impl_->wait(rc, "init", -1, 0, c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream());
  spdlog::debug("NCCL {} communicator: rank {}/{} on cuda:{}", version(), impl_->rank, comm.size(), device);
}

NcclComm::~NcclComm() {
  if (!impl_ || impl_->comm == nullptr) return;
  if (std::uncaught_exceptions() > 0) ncclCommAbort(impl_->comm);  // peers may be gone: do not wait for them
  else ncclCommDestroy(impl_->comm);
}

int NcclComm::version() {
  int v = 0;
  ncclGetVersion(&v);
  return v;
}

void NcclComm::send(const at::Tensor& t, int peer) {
  c10::cuda::CUDAGuard guard(t.device());
  const at::Tensor c = t.contiguous();
  cudaStream_t s = c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
  impl_->wait(ncclSend(c.data_ptr(), static_cast<size_t>(c.numel()), nccl_type(c), peer, impl_->comm, s), "send", peer, c.nbytes(), s);
}

void NcclComm::recv(at::Tensor& t, int peer) {
  if (!t.is_contiguous()) throw std::invalid_argument("NCCL recv: tensor must be contiguous");
  c10::cuda::CUDAGuard guard(t.device());
  cudaStream_t s = c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
  impl_->wait(ncclRecv(t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), peer, impl_->comm, s), "recv", peer, t.nbytes(), s);
}

void NcclComm::allreduce_sum(at::Tensor& t) {
  if (!t.is_contiguous()) throw std::invalid_argument("NCCL allreduce: tensor must be contiguous");
  c10::cuda::CUDAGuard guard(t.device());
  cudaStream_t s = c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
  impl_->wait(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), ncclSum, impl_->comm, s),
              "allreduce", -1, t.nbytes(), s);
}

void NcclComm::bcast(at::Tensor& t, int root) {
  if (!t.is_contiguous()) throw std::invalid_argument("NCCL bcast: tensor must be contiguous");
  c10::cuda::CUDAGuard guard(t.device());
  cudaStream_t s = c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
  impl_->wait(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), root, impl_->comm, s),
              "bcast", root, t.nbytes(), s);
}

}  // namespace ts
