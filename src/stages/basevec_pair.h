// What the base-vector stages share (docs/algorithms.md §B.8, §B.10): the pair of models (the thinking
// model of model.path, the base model of basevec.base_model), checked to share the vocabulary and
// special tokens, and the SAE of the thinking model (basevec.sae), checked to be of that model and
// layer. Not a stage: a helper of stages/basevec_*.cpp.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <vector>

#include "artifacts/taxonomy_export.h"
#include "core/config.h"
#include "dist/rank_model.h"
#include "dist/runtime.h"

namespace ts::stages {

// The [basevec] keys that must be set for a stage, and no pipeline (both models run whole on a rank).
void check_basevec_config(const Config& cfg, bool needs_sae);

// The base model of basevec.base_model, loaded like model.path (dtype, device).
StageModel load_base_model(const Config& cfg, const Runtime& rt);

// The thinking and base tokenizers have the same model vocabulary id for id and the models the same
// vocab_size; else InputError naming the base checkpoint's file and the first id that differs.
// Special tokens that differ are counted in a warning (the per-rollout alignment checks the tokens).
void check_same_vocabulary(const StageModel& thinking, const StageModel& base, const std::filesystem::path& base_dir);

// The base model's prompt template of basevec.base_prompt: §B.10's qa_instr and §B.8's v1 by name, else
// the template as given (with {question}). `same` is the caller's (the thinking model's own prompt).
std::string basevec_prompt_template(const std::string& name);

// The SAE export directory basevec.sae names: a directory, or `selected`: the first export listed in
// <run.dir>/titles/index.json (`titles` of the taxonomy sweep's choice in this run directory).
std::filesystem::path basevec_sae_dir(const Config& cfg);

// The SAE export of basevec.sae, checked against the thinking model (d_model, layer, name) and
// basevec.sae_layer. Throws InputError naming cfg.json's field.
artifacts::SaeExport open_basevec_sae(const Config& cfg, const ModelConfig& thinking);

// A float vector as a [shape] float32 tensor on `device` (a copy: the vector may go away).
at::Tensor device_tensor(const std::vector<float>& v, std::vector<int64_t> shape, const at::Device& device);

// The SAE's classifier on raw residuals: argmax of W_enc((x − μ)/‖x − μ‖ − b_dec) + b_enc.
struct SaeClassifier {
  at::Tensor w_enc, b_enc, b_dec, mean;  // float32 on the device
  explicit SaeClassifier(const artifacts::SaeExport& sae, const at::Device& device);
  at::Tensor operator()(const at::Tensor& x) const;  // [N, d] -> [N] int64
};

}  // namespace ts::stages
