// This rank's part of the model: the layers of its pipeline stage (embeddings on the first stage,
// final norm and lm_head on the last), read from the checkpoint and nothing else, with its tokenizer
// and generation settings.
#pragma once
#include <c10/core/ScalarType.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "core/config.h"
#include "dist/runtime.h"
#include "model/generate.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"

namespace ts {

struct StageModel {
  std::filesystem::path dir;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::unique_ptr<Transformer> model;
  ModelConfig config;
  Range layers;
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::vector<int64_t> eos_ids;  // generation_config.json's, else config.json's
  int64_t pad_id = 0;
};
// The checkpoint of model.path, in model.dtype on rt.device. Throws InputError.
StageModel load_stage_model(const Config& cfg, const Runtime& rt);

// A prompt of `prompt_tokens` tokens plus generate.max_new_tokens must fit the model's context
// (config.json max_position_embeddings): checked before any work. Throws InputError naming the prompt.
void check_context(const Config& cfg, const ModelConfig& model, const std::string& prompt_id, int64_t prompt_tokens);

// Generation options from [generate] and the model (EOS, pad, stop strings through the tokenizer).
GenerateOptions generate_options(const Config& cfg, const StageModel& m);

}  // namespace ts
