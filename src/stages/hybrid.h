// The hybrid kind of sweep (stages/sweep_kind.h; sweep.kind = hybrid, `thinksteer hybrid`): the base
// model steered where the thinking model disagrees (hybrid/lockstep.h; docs/algorithms.md "The hybrid
// model"), with its ablations, over datasets × steering layers × coefficient rules × ablations × seeds.
// Per dataset the plan holds the base model alone and the thinking model alone first (the two ends of the
// gap), then the hybrid rows; randpos rows come last, since with hybrid.randpos_fraction = -1 they read the
// steered share of the matching hybrid row. A task's prompts are shared over the ranks; its output is
// <run.dir>/hybrid/tasks/<key>.h5 (artifacts/hybrid_task.h); `reduce` writes the accuracies, the gap
// recovered and each ablation's paired difference from the hybrid (artifacts/hybrid_summary.h).
// Plan and summary: stages/hybrid_sweep.cpp; a task: stages/hybrid_task.cpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "artifacts/basevec_task.h"
#include "artifacts/hybrid_task.h"
#include "core/config.h"
#include "core/json.h"
#include "dist/rank_model.h"
#include "dist/runtime.h"
#include "hybrid/lockstep.h"
#include "stages/basevec_pair.h"

namespace ts::stages {

struct HybridPoint {
  int64_t task = 0, layer = -1, seed = 0;
  std::string key, dataset;
  std::string role;      // base | thinking | hybrid
  std::string rule;      // fixed | mlp | guardrail (hybrid rows; "" otherwise)
  std::string ablation;  // none | only-bias | randcat | randvec | randvec-randcat | randpos (hybrid rows)
  json to_json() const;
  static HybridPoint from_json(const json& row, const std::string& where);
  // The hybrid row (ablation none) whose steered share a randpos row with randpos_fraction -1 uses.
  HybridPoint source() const;
};

// The vectors file hybrid.vectors names (selected: <run.dir>/basevec/selected.json's set for hybrid.method).
std::filesystem::path hybrid_vectors_path(const Config& cfg);
// The vector set against the rules asked for (mlp needs its coefficient MLP); InputError naming the file.
void check_hybrid_vectors(const Config& cfg, const artifacts::BasevecTask& v, const std::filesystem::path& file);
// The plan's rows (vectors_layer: the layer the set was trained at, for hybrid.layers empty).
std::vector<HybridPoint> hybrid_points(const Config& cfg, int64_t vectors_layer);

// What every task of a process uses, loaded and checked once (COLLECTIVE).
struct HybridEnv {
  StageModel thinking, base;
  std::unique_ptr<SaeClassifier> sae;
  int64_t sae_layer = 0;
  std::filesystem::path vectors_file;
  std::string vectors_hash;
  std::string sweep_inputs;  // hybrid_sweep_inputs, computed once
  artifacts::BasevecTask vectors;
  hybrid::SteeringSet set;
  int32_t think_close = -1;
  bool open_thinking = false;  // the chat format's prompt does not open <think>: "<think>\n" is appended to it
  std::vector<int32_t> answer_prefix;
};
HybridEnv load_hybrid_env(const Config& cfg, Runtime& rt);

// What every task of the sweep depends on besides its point and prompts: the vectors' content hash, both
// checkpoints, the SAE and the base prompt (read from disk once per sweep, not once per row).
std::string hybrid_sweep_inputs(const Config& cfg, const std::string& vectors_hash);
// The hash a task's done marker holds (its point, its prompts, `sweep_inputs`, the settings; a randpos row with
// the measured fraction also its source row's hash).
std::string hybrid_task_hash(const Config& cfg, const HybridPoint& p, const std::string& sweep_inputs);

// COLLECTIVE: runs one row unless its task file is complete; false when it was.
bool run_hybrid_task(const Config& cfg, Runtime& rt, const HybridPoint& p, const HybridEnv& env);

// The config a row's prompts load with: data.prompts = the dataset, data.limit = hybrid.limit when set.
Config hybrid_dataset_config(const Config& cfg, const std::string& dataset);

// hybrid.answer_prefix without its surrounding double quotes (if any) and with its escapes (\n, \t, \\) resolved.
std::string hybrid_answer_prefix(const Config& cfg);

}  // namespace ts::stages
