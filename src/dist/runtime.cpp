#include "dist/runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
#include <thread>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "dist/nccl.h"

namespace ts {

Runtime::~Runtime() = default;

Runtime runtime_init(const Config& cfg) {
  Runtime rt;
  rt.world_comm = mpi::Comm::dup(MPI_COMM_WORLD);
  rt.rank = rt.world_comm.rank();
  rt.world = rt.world_comm.size();

  // Every rank must run the same config: compare hashes before anything else is collective.
  std::string hash = sha256_hex(config_to_ini(cfg));
  std::string root_hash = hash;
  rt.world_comm.bcast(root_hash, 0);
  const int64_t mismatch = rt.world_comm.allreduce_max(root_hash != hash ? 1 : 0);
  if (mismatch) throw InputError(cfg.config_file.empty() ? "<config>" : cfg.config_file, "<all keys>",
                                 "ranks resolved different configs (rank 0 " + root_hash.substr(0, 12) + ", some rank differs); check the file on every node");

  const int P = static_cast<int>(cfg.parallel.pipeline_stages);
  if (rt.world % P != 0)
    throw InputError("<config>", "parallel.pipeline_stages",
                     std::to_string(P) + " stages do not divide " + std::to_string(rt.world) + " ranks (ranks = replicas x stages)");
  rt.n_stages = P;
  rt.n_replicas = rt.world / P;
  rt.stage = rt.rank % P;
  rt.replica = rt.rank / P;
  rt.pipeline = rt.world_comm.split(rt.replica, rt.stage);
  rt.replicas = rt.world_comm.split(rt.stage, rt.replica);
  rt.node = rt.world_comm.split_shared();
  rt.local_rank = rt.node.rank();
  rt.local_size = rt.node.size();

  // Threads beyond the node's hardware threads only thrash (and a typo of 1000000 would hang starting
  // them): the most any rank's node allows, agreed so that every rank fails alike.
  const int64_t hardware = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  const int64_t fewest = -rt.world_comm.allreduce_max(-hardware);
  if (cfg.run.threads > fewest)
    throw InputError("<config>", "run.threads", std::to_string(cfg.run.threads) + " is more than the " + std::to_string(fewest) + " hardware threads of a node");
  if (cfg.run.threads > 0) at::set_num_threads(static_cast<int>(cfg.run.threads));
  if (cfg.model.device == "cpu") {
    rt.device = c10::Device(c10::DeviceType::CPU);
  } else {
    if (!torch::cuda::is_available()) throw InputError("<config>", "model.device", "CUDA requested but no CUDA device is available");
    const int n = static_cast<int>(torch::cuda::device_count());
    rt.device = cfg.model.device == "cuda" ? c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(rt.local_rank % n))
                                           : c10::Device(cfg.model.device);
  }
  if (rt.device.is_cuda() && P > 1) {
#ifdef THINKSTEER_HAVE_NCCL
    rt.pipeline_nccl = std::make_shared<NcclComm>(rt.pipeline, rt.device.index(), cfg.parallel.timeout_seconds);
#else
    throw InputError("<config>", "parallel.pipeline_stages", "pipeline stages on CUDA need NCCL; this build has none");
#endif
  }
  spdlog::debug("runtime: rank {}/{} replica {}/{} stage {}/{} local {}/{} device {}", rt.rank, rt.world, rt.replica, rt.n_replicas,
                rt.stage, rt.n_stages, rt.local_rank, rt.local_size, rt.device.str());
  return rt;
}

}  // namespace ts
