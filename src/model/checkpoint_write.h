// Writing an HF checkpoint directory that transformers' from_pretrained and our own loader read:
// config.json, model.safetensors, generation_config.json and any extra files (tokenizer files,
// provenance). The fused q/k/v matrix of the engine is split back into q_proj/k_proj/v_proj here,
// the inverse of weights_load. The directory appears whole or not at all: everything is written to
// "<dir>.partial" and renamed over <dir> (a previous <dir> is removed first).
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>

#include "core/json.h"
#include "model/weights.h"

namespace ts {

// config.json for `c` (Qwen2ForCausalLM or LlamaForCausalLM), with torch_dtype = `dtype_name`.
json model_config_to_json(const ModelConfig& c, const std::string& dtype_name);

// The checkpoint's tensors by HF name, converted to `dtype` on the CPU (contiguous).
std::map<std::string, at::Tensor> checkpoint_tensors(const ModelWeights& w, c10::ScalarType dtype);

struct CheckpointWrite {
  c10::ScalarType dtype = c10::ScalarType::Float;   // stored dtype: Float or BFloat16
  json generation_config = json::object();          // generation_config.json (bos/eos filled in if absent)
  std::map<std::string, std::string> files;         // extra files: name -> content
  std::map<std::string, std::string> metadata;      // safetensors header __metadata__
};

// Writes the full model `w` (all layers, embeddings and head). Throws std::runtime_error on I/O errors.
void checkpoint_write(const std::filesystem::path& dir, const ModelWeights& w, const CheckpointWrite& opts);

}  // namespace ts
