// The edited-checkpoint writer: an HF checkpoint directory rewritten with some tensors replaced (or
// added), every other byte carried over, for the weight edits (ThinkEdit's o_proj projection,
// docs/algorithms.md "ThinkEdit" §C.5; directional ablation's orthogonalised weights, §D/§E).
//
// What it guarantees (docs/thinkedit.md "The edited checkpoint"):
//   * the source's safetensors layout is kept: the same shard files, the same tensor names in the same
//     order, and model.safetensors.index.json rewritten (weight_map, metadata.total_size) when there is one;
//   * a tensor not replaced is copied byte for byte (dtype = source), or converted exactly to float32
//     (dtype = float32: BF16 and F16 widen without rounding);
//   * a replaced tensor is stored in the source tensor's dtype (one rounding from the fp32 values given:
//     round-to-nearest-even for BF16) or in float32;
//   * config.json is the source's with `config_update` merged in (and torch_dtype / dtype "float32" when
//     every float tensor is float32); every other top-level file of the source (tokenizer files,
//     generation_config.json, chat template...) is copied;
//   * `marker` names a file written inside the directory that says who wrote it: an existing output
//     directory without that file is refused (InputError naming `out_key`), never overwritten;
//   * the directory appears whole or not at all: everything is written to "<dir>.partial", fsynced, checked
//     by reopening it (checkpoint_open), and renamed over <dir>.
// Memory: one tensor at a time beyond the memory-mapped source.
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>

#include "core/json.h"
#include "model/checkpoint_files.h"

namespace ts {

struct CheckpointEdit {
  std::map<std::string, at::Tensor> replace;  // HF tensor name -> new values (floating point, the source's shape)
  std::map<std::string, at::Tensor> add;      // tensors the source lacks (e.g. lm_head.weight when untying), stored as
                                              // the source's embedding dtype (or float32), in the last shard
  bool float32 = false;                       // every floating-point tensor stored as F32
  json config_update = json::object();        // merged into config.json
  std::string marker;                         // file name inside the directory naming its writer (required)
  std::string marker_content;
  std::map<std::string, std::string> files;   // more files: name -> content
  std::map<std::string, std::string> metadata;  // added to every shard's __metadata__
};

// Writes `dst` from the checkpoint `src` with `edit` applied. `out_key` names the config key of `dst`
// in messages. Throws InputError (bad names or shapes, a foreign `dst`) before anything is written.
void write_edited_checkpoint(const std::filesystem::path& src, const std::filesystem::path& dst, const CheckpointEdit& edit,
                             const std::string& out_key);

// Refuses (InputError naming `out_key`) a `dst` that is the source itself, or that exists without the
// writer's `marker` file in it. write_edited_checkpoint checks it too; a stage calls it before it claims
// its output, so that bad input fails before anything is touched.
void check_edited_destination(const std::filesystem::path& src, const std::filesystem::path& dst, const std::string& marker, const std::string& out_key);

// The checkpoint's tensor `name` as float32 on the CPU (from BF16, F16 or F32). Throws InputError.
at::Tensor checkpoint_tensor_f32(const CheckpointFiles& ck, const std::string& name);
at::Tensor checkpoint_tensor_f32(const std::filesystem::path& dir, const std::string& name);  // opens the directory

}  // namespace ts
