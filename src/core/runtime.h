// What a stage runs with besides its Config: rank layout, device, threads. The distributed runtime
// (MPI communicators, NCCL) extends this in the distributed-runtime issue; for now ranks come from
// the launcher's environment and each rank works alone.
#pragma once
#include <c10/core/Device.h>

namespace ts {

struct Config;

struct Runtime {
  int rank = 0;
  int world = 1;
  c10::Device device = c10::Device(c10::DeviceType::CPU);
};

// Builds the runtime from the config (device, threads) and the environment (rank). Throws InputError.
Runtime runtime_init(const Config& cfg);

}  // namespace ts
