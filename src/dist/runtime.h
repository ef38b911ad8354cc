// What a stage runs with besides its Config: the rank layout, communicators and the device.
//
// ranks = D data-parallel replicas x P pipeline stages (parallel.pipeline_stages). World rank
// r = replica * P + stage, so a replica's stages are neighbours (same node when ranks fill nodes in
// order). Each replica takes a contiguous share of the prompts (dist/partition.h); each stage holds a
// contiguous range of decoder layers. Communicators (all private duplicates or splits of
// MPI_COMM_WORLD):
//   world    : every rank (stop agreement, output files)
//   pipeline : the P stages of this replica, ordered by stage (hidden states, sampled tokens)
//   replicas : the D ranks holding the same stage, ordered by replica
//   node     : the ranks on this node (MPI_Comm_split_type SHARED): local rank -> CUDA device
// On CUDA with P > 1, hidden states move over an NCCL communicator of the pipeline (dist/nccl.h).
#pragma once
#include <c10/core/Device.h>

#include <memory>

#include "dist/mpi.h"
#include "dist/partition.h"

namespace ts {

struct Config;
class NcclComm;

struct Runtime {
  int rank = 0, world = 1;
  int local_rank = 0, local_size = 1;
  int stage = 0, n_stages = 1;      // pipeline position
  int replica = 0, n_replicas = 1;  // data-parallel position
  c10::Device device = c10::Device(c10::DeviceType::CPU);
  mpi::Comm world_comm, pipeline, replicas, node;
  std::shared_ptr<NcclComm> pipeline_nccl;  // CUDA and P > 1 only

  bool first_stage() const { return stage == 0; }
  bool last_stage() const { return stage == n_stages - 1; }
  // The decoder layers this rank holds.
  Range layers(int64_t n_layer) const { return pipeline_layer_ranges(n_layer, n_stages)[static_cast<size_t>(stage)]; }

  Runtime() = default;
  Runtime(Runtime&&) = default;
  Runtime& operator=(Runtime&&) = default;
  ~Runtime();
};

// COLLECTIVE over MPI_COMM_WORLD (MPI must be initialised, see mpi::Env). Builds the layout from
// parallel.pipeline_stages, picks the device (cuda: local rank modulo the visible devices), sets
// threads, and checks that every rank resolved the same config (hash agreement), so a node with a
// different file fails at once instead of desynchronising later. Throws InputError.
Runtime runtime_init(const Config& cfg);

}  // namespace ts
