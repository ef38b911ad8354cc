#include "stages/basevec_pair.h"

#include "core/error.h"
#include "core/json.h"
#include "core/log.h"

namespace ts::stages {
namespace fs = std::filesystem;

void check_basevec_config(const Config& cfg, bool needs_sae) {
  if (cfg.model.path.empty()) throw InputError("<config>", "model.path", "no thinking-model checkpoint given");
  if (cfg.basevec.base_model.empty()) throw InputError("<config>", "basevec.base_model", "no base-model checkpoint given");
  if (needs_sae && cfg.basevec.sae.empty())
    throw InputError("<config>", "basevec.sae", "no SAE export given (`thinksteer titles` writes <run.dir>/titles/<key>)");
  if (cfg.basevec.layer < 0) throw InputError("<config>", "basevec.layer", "no steering layer given");
  if (cfg.parallel.pipeline_stages != 1)
    throw InputError("<config>", "parallel.pipeline_stages", "the base-vector stages hold both models whole on each rank (data parallel only): set 1");
}

StageModel load_base_model(const Config& cfg, const Runtime& rt) {
  Config c = cfg;
  c.model.path = cfg.basevec.base_model;
  return load_stage_model(c, rt);
}

void check_same_vocabulary(const StageModel& thinking, const StageModel& base, const fs::path& base_dir) {
  const std::string file = (base_dir / "tokenizer.json").string();
  const Tokenizer& a = *thinking.tokenizer;
  const Tokenizer& b = *base.tokenizer;
  if (thinking.config.n_vocab != base.config.n_vocab)
    throw InputError((base_dir / "config.json").string(), "vocab_size",
                     std::to_string(base.config.n_vocab) + " differs from the thinking model's " + std::to_string(thinking.config.n_vocab) +
                         " (the pair must share the vocabulary 1:1)");
  if (a.vocab_size() != b.vocab_size())
    throw InputError(file, "vocabulary", std::to_string(b.vocab_size()) + " ids against the thinking model's " + std::to_string(a.vocab_size()));
  // The model vocabularies must agree id for id. Special tokens may be named differently (Llama-3.1's
  // reserved tokens are R1-Distill-Llama's <think> and </think>): counted and reported, since every
  // rollout's tokens are compared after alignment anyway (basevec/align.h) and a rollout whose tokens
  // differ is skipped.
  int64_t special_differences = 0;
  for (int64_t id = 0; id < a.vocab_size(); ++id) {
    const auto i = static_cast<int32_t>(id);
    std::string ta, tb;
    try { ta = a.id_to_token(i); } catch (const std::out_of_range&) {}
    try { tb = b.id_to_token(i); } catch (const std::out_of_range&) {}
    if (ta == tb && a.is_special(i) == b.is_special(i)) continue;
    if (a.is_special(i) || b.is_special(i)) {
      ++special_differences;
      continue;
    }
    throw InputError(file, "vocabulary", "id " + std::to_string(id) + " is '" + tb + "' here and '" + ta + "' in the thinking model's tokenizer (the pair must share the vocabulary 1:1)");
  }
  if (special_differences > 0)
    spdlog::warn("basevec: {} special-token ids differ in name or kind between the two tokenizers ({}); rollouts whose tokens then differ are skipped",
                 special_differences, file);
}

std::string basevec_prompt_template(const std::string& name) {
  if (name == "qa_instr") return "Answer the following question:\nQ: {question}\nA:";
  if (name == "v1") return "Task: Answer the question below. Explain your reasoning step by step.\n\n\n\nQuestion:\n{question}\n\nStep by step answer:\n";
  return name;
}

fs::path basevec_sae_dir(const Config& cfg) {
  if (cfg.basevec.sae != "selected") return cfg.basevec.sae;
  const fs::path index = artifacts::titles_root(cfg.run.dir) / "index.json";
  if (!fs::is_regular_file(index)) throw InputError(index.string(), "basevec.sae", "basevec.sae = selected needs `thinksteer titles` run in this run directory first");
  const json j = json_read_file(index);
  if (!j.contains("tasks") || !j["tasks"].is_array() || j["tasks"].empty() || !j["tasks"][0].contains("dir") || !j["tasks"][0]["dir"].is_string())
    throw InputError(index.string(), "tasks", "lists no export (basevec.sae = selected takes the first)");
  return artifacts::titles_root(cfg.run.dir) / j["tasks"][0]["dir"].get<std::string>();
}

artifacts::SaeExport open_basevec_sae(const Config& cfg, const ModelConfig& thinking) {
  const fs::path dir = basevec_sae_dir(cfg);
  const artifacts::SaeExport sae = artifacts::read_sae_export(dir, "basevec.sae");
  const std::string file = (dir / "cfg.json").string();
  if (sae.d_in != thinking.d_model)
    throw InputError(file, "d_in", std::to_string(sae.d_in) + " differs from the thinking model's d_model " + std::to_string(thinking.d_model) + ": an SAE of another model");
  if (sae.layer < 0 || sae.layer >= thinking.n_layer)
    throw InputError(file, "hook_layer", std::to_string(sae.layer) + " is not a layer of the thinking model (" + std::to_string(thinking.n_layer) + " layers)");
  if (sae.hook_name != "blocks." + std::to_string(sae.layer) + ".hook_resid_post")
    throw InputError(file, "hook_name", "'" + sae.hook_name + "': the thinking model's class is read at blocks.{layer}.hook_resid_post");
  if (cfg.basevec.sae_layer >= 0 && sae.layer != cfg.basevec.sae_layer)
    throw InputError(file, "hook_layer", "the SAE is of layer " + std::to_string(sae.layer) + ", basevec.sae_layer says " + std::to_string(cfg.basevec.sae_layer));
  const std::string model = fs::path(cfg.model.path).lexically_normal().filename().string();
  const std::string named = fs::path(cfg.model.path).lexically_normal().parent_path().filename().string();
  if (!sae.model_name.empty() && sae.model_name != model && sae.model_name != named)
    throw InputError(file, "model_name", "'" + sae.model_name + "' is not the thinking model '" + model + "' (model.path): an SAE of another model");
  return sae;
}

at::Tensor device_tensor(const std::vector<float>& v, std::vector<int64_t> shape, const at::Device& device) {
  return at::from_blob(const_cast<float*>(v.data()), shape, at::kFloat).clone().to(device);
}

SaeClassifier::SaeClassifier(const artifacts::SaeExport& sae, const at::Device& device) {
  w_enc = device_tensor(sae.w_enc, {sae.d_sae, sae.d_in}, device), b_enc = device_tensor(sae.b_enc, {sae.d_sae}, device);
  b_dec = device_tensor(sae.b_dec, {sae.d_in}, device), mean = device_tensor(sae.mean, {sae.d_in}, device);
}

at::Tensor SaeClassifier::operator()(const at::Tensor& x) const {
  at::Tensor c = x.to(at::kFloat) - mean;
  c = c / c.norm(2, 1, true).clamp_min(1e-12);
  return (at::matmul(c - b_dec, w_enc.t()) + b_enc).argmax(1);
}

}  // namespace ts::stages
