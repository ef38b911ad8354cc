#include "dist/rank_model.h"

#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "model/checkpoint_files.h"

namespace ts {
namespace fs = std::filesystem;

StageModel load_stage_model(const Config& cfg, const Runtime& rt) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no checkpoint directory given");
  StageModel m;
  m.dir = cfg.model.path;
  m.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_file(m.dir / "tokenizer.json"));
  // Validate the whole inventory once (cheap, headers only), then map only this stage's tensors.
  const ModelConfig full = checkpoint_open(m.dir).config;
  if (rt.n_stages > full.n_layer)
    throw InputError("<config>", "parallel.pipeline_stages",
                     std::to_string(rt.n_stages) + " stages for a model with " + std::to_string(full.n_layer) + " layers");
  m.layers = rt.layers(full.n_layer);
  CheckpointFiles ck = checkpoint_open(m.dir, m.layers.begin, m.layers.end, rt.first_stage(), rt.last_stage());
  if (rt.rank == 0)
    for (const auto& name : ck.unexpected) spdlog::warn("checkpoint tensor {} is not used by the model", name);
  m.config = ck.config;
  LoadOptions load;
  load.device = rt.device;
  load.dtype = dtype_resolve(cfg.model.dtype, ck.config, rt.device);
  load.layer_begin = m.layers.begin;
  load.layer_end = m.layers.end;
  load.with_embed = rt.first_stage();
  load.with_head = rt.last_stage();
  m.dtype = load.dtype;
  m.model = std::make_unique<Transformer>(weights_load(ck, load));
  spdlog::info("model {}: layers [{}, {}) of {}{}{}, d_model {}, {} heads ({} kv), vocab {}: {:.1f} MB resident as {} on {}",
               m.dir.string(), m.layers.begin, m.layers.end, full.n_layer, rt.first_stage() ? " + embeddings" : "",
               rt.last_stage() ? " + head" : "", ck.config.d_model, ck.config.n_head, ck.config.n_kv_head, ck.config.n_vocab,
               static_cast<double>(m.model->weights().parameter_bytes) / 1e6, c10::toString(load.dtype), rt.device.str());

  m.eos_ids = ck.config.eos_token_ids;
  const fs::path gen_config = m.dir / "generation_config.json";
  if (fs::exists(gen_config)) {
    json g = json_read_file(gen_config);
    if (g.contains("eos_token_id") && !g["eos_token_id"].is_null()) m.eos_ids = json_token_ids(g, "eos_token_id", gen_config.string());
  }
  m.pad_id = ck.config.pad_token_id >= 0 ? ck.config.pad_token_id : (m.eos_ids.empty() ? 0 : m.eos_ids[0]);
  return m;
}

void check_context(const Config& cfg, const ModelConfig& model, const std::string& prompt_id, int64_t prompt_tokens) {
  if (model.max_position <= 0 || prompt_tokens + cfg.generate.max_new_tokens <= model.max_position) return;
  throw InputError(cfg.config_file.empty() ? "<config>" : cfg.config_file, "generate.max_new_tokens",
                   std::to_string(cfg.generate.max_new_tokens) + " new tokens after prompt '" + prompt_id + "' (" + std::to_string(prompt_tokens) +
                       " tokens) exceed the model's context of " + std::to_string(model.max_position) + " (config.json max_position_embeddings)");
}

GenerateOptions generate_options(const Config& cfg, const StageModel& m) {
  GenerateOptions gen;
  gen.max_new_tokens = cfg.generate.max_new_tokens;
  gen.sampling = {cfg.generate.temperature, cfg.generate.top_p, cfg.generate.top_k};
  gen.seed = cfg.generate.seed;
  gen.eos_ids = m.eos_ids;
  gen.stop_strings = cfg.generate.stop;
  auto tok = m.tokenizer;
  gen.decode = [tok](std::span<const int32_t> ids) { return tok->decode(ids); };
  gen.pad_id = m.pad_id;
  return gen;
}

}  // namespace ts
