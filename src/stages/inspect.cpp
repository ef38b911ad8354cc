// Stage `inspect`: validates a checkpoint directory (config.json, safetensors headers, tensor
// inventory and shapes, tokenizer.json) without loading weights, and prints what it found.
#include <iostream>

#include "core/error.h"
#include "core/log.h"
#include "model/checkpoint_files.h"
#include "stages/stage.h"
#include "model/checkpoint_summary.h"

namespace ts::stages::inspect {

void run(const Config& cfg, Runtime& /*rt*/) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  const std::filesystem::path dir = cfg.model.path;
  CheckpointFiles ck = checkpoint_open(dir);
  for (const auto& name : ck.unexpected) spdlog::warn("checkpoint tensor {} is not used by the model", name);
  std::cout << checkpoint_summary(ck);
}

}  // namespace ts::stages::inspect
