// An HF checkpoint directory opened and validated without touching torch:
// config.json + model.safetensors, or model.safetensors.index.json + its shards (docs/conventions.md §5.1-5.2).
// Every expected tensor must be present exactly once with the shape config.json implies.
#pragma once
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "model/model_config.h"
#include "model/safetensors.h"

namespace ts {

struct CheckpointFiles {
  std::filesystem::path dir;
  ModelConfig config;
  std::vector<SafetensorsFile> shards;
  struct Entry {
    size_t shard = 0;
    const TensorInfo* info = nullptr;
  };
  std::map<std::string, Entry> tensors;    // every tensor in every shard
  std::vector<std::string> unexpected;     // present but not used by the model (warned about)

  bool has(const std::string& name) const { return tensors.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const;
  std::span<const std::byte> bytes(const std::string& name) const;
  const std::filesystem::path& shard_path(const std::string& name) const;
};

// Opens and validates `dir` for layers [layer_begin, layer_end) (layer_end < 0: all layers).
// Throws InputError naming the file and field at fault.
CheckpointFiles checkpoint_open(const std::filesystem::path& dir, int64_t layer_begin = 0, int64_t layer_end = -1,
                                bool with_embed = true, bool with_head = true);

}  // namespace ts
