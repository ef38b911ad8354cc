#include "model/checkpoint_files.h"

#include <set>

#include "core/error.h"
#include "core/json.h"

namespace ts {
namespace fs = std::filesystem;

const TensorInfo& CheckpointFiles::info(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw InputError(dir.string(), name, "tensor not in checkpoint");
  return *it->second.info;
}

std::span<const std::byte> CheckpointFiles::bytes(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw InputError(dir.string(), name, "tensor not in checkpoint");
  return shards[it->second.shard].bytes(*it->second.info);
}

const fs::path& CheckpointFiles::shard_path(const std::string& name) const {
  return shards[tensors.at(name).shard].path();
}

namespace {

// Non-throwing: a path the OS rejects (e.g. a shard name longer than NAME_MAX) counts as absent, so it
// becomes an InputError below instead of an escaping std::filesystem::filesystem_error.
bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

}  // namespace

CheckpointFiles checkpoint_open(const fs::path& dir, int64_t layer_begin, int64_t layer_end, bool with_embed, bool with_head) {
  CheckpointFiles ck;
  ck.dir = dir;
  std::error_code dir_ec;
  if (!fs::is_directory(dir, dir_ec)) throw InputError(dir.string(), "model.path", "not a directory");
  const fs::path config_path = dir / "config.json";
  if (!path_exists(config_path)) throw InputError(config_path.string(), "<file>", "missing config.json in the checkpoint directory");
  ck.config = model_config_read(config_path);
  if (layer_end < 0) layer_end = ck.config.n_layer;
  if (layer_begin < 0 || layer_end > ck.config.n_layer || layer_begin > layer_end)
    throw InputError(config_path.string(), "num_hidden_layers", "layer range [" + std::to_string(layer_begin) + ", " +
                                                                    std::to_string(layer_end) + ") outside the model's layers");

  const fs::path index_path = dir / "model.safetensors.index.json";
  const fs::path single_path = dir / "model.safetensors";
  std::map<std::string, std::string> weight_map;  // tensor -> shard file name (sharded only)
  std::vector<std::string> shard_names;
  if (path_exists(index_path)) {
    json index = json_read_file(index_path);
    const json& wm = json_require(index, "weight_map", index_path.string());
    if (!wm.is_object()) throw InputError(index_path.string(), "weight_map", "must be an object of tensor name -> shard file");
    std::set<std::string> seen;
    for (const auto& [name, shard] : wm.items()) {
      if (!shard.is_string()) throw InputError(index_path.string(), "weight_map." + name, "shard must be a file name string");
      std::string s = shard.get<std::string>();
      if (s.empty() || s.find('/') != std::string::npos || s == "." || s == "..")
        throw InputError(index_path.string(), "weight_map." + name, "shard '" + s + "' must be a plain file name inside the checkpoint directory");
      weight_map[name] = s;
      if (seen.insert(s).second) shard_names.push_back(s);
    }
  } else if (path_exists(single_path)) {
    shard_names.push_back("model.safetensors");
  } else {
    throw InputError(dir.string(), "model.safetensors", "no model.safetensors or model.safetensors.index.json in the checkpoint directory");
  }

  for (const auto& name : shard_names) {
    const fs::path p = dir / name;
    if (!path_exists(p)) throw InputError(index_path.string(), "weight_map", "shard '" + name + "' does not exist");
    ck.shards.emplace_back(p);
  }
  for (size_t s = 0; s < ck.shards.size(); ++s) {
    for (const auto& t : ck.shards[s].header().tensors) {
      auto [it, inserted] = ck.tensors.emplace(t.name, CheckpointFiles::Entry{s, &t});
      if (!inserted)
        throw InputError(ck.shards[s].path().string(), t.name, "tensor also present in " + ck.shards[it->second.shard].path().string());
      if (!weight_map.empty()) {
        auto w = weight_map.find(t.name);
        if (w == weight_map.end()) throw InputError(ck.shards[s].path().string(), t.name, "tensor missing from model.safetensors.index.json weight_map");
        if (w->second != shard_names[s])
          throw InputError(index_path.string(), "weight_map." + t.name, "says '" + w->second + "' but the tensor is in '" + shard_names[s] + "'");
      }
    }
  }
  for (const auto& [name, shard] : weight_map)
    if (!ck.tensors.count(name)) throw InputError((dir / shard).string(), name, "tensor listed in the weight_map is missing from its shard");

  std::set<std::string> used;
  for (const auto& e : model_expected_tensors(ck.config, layer_begin, layer_end, with_embed, with_head)) {
    auto it = ck.tensors.find(e.name);
    if (it == ck.tensors.end()) {
      if (e.optional) continue;
      throw InputError(dir.string(), e.name, "missing tensor (expected shape " + shape_to_string(e.shape) + " from config.json)");
    }
    const TensorInfo& t = *it->second.info;
    const std::string file = ck.shards[it->second.shard].path().string();
    if (t.shape != e.shape)
      throw InputError(file, e.name, "shape " + shape_to_string(t.shape) + " disagrees with config.json, which implies " + shape_to_string(e.shape));
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
      throw InputError(file, e.name + ".dtype", std::string("unsupported weight dtype ") + dtype_name(t.dtype) + " (supported: F32, F16, BF16)");
    used.insert(e.name);
  }
  // Tensors of layers outside the range are expected too when reading a pipeline stage; only report strangers.
  std::set<std::string> all_expected;
  for (const auto& e : model_expected_tensors(ck.config, 0, ck.config.n_layer, true, true)) all_expected.insert(e.name);
  for (const auto& [name, entry] : ck.tensors)
    if (!all_expected.count(name)) ck.unexpected.push_back(name);
  return ck;
}

}  // namespace ts
