#include "core/runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

namespace ts {

Runtime runtime_init(const Config& cfg) {
  Runtime rt;
  rt.rank = env_rank();
  rt.world = env_world_size();
  if (cfg.run.threads > 0) at::set_num_threads(static_cast<int>(cfg.run.threads));
  if (cfg.model.device == "cpu") {
    rt.device = c10::Device(c10::DeviceType::CPU);
  } else {
    if (!torch::cuda::is_available()) throw InputError("<config>", "model.device", "CUDA requested but no CUDA device is available");
    rt.device = cfg.model.device == "cuda" ? c10::Device(c10::DeviceType::CUDA, 0) : c10::Device(cfg.model.device);
  }
  return rt;
}

}  // namespace ts
