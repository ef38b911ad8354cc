// The intervention kind of sweep (sweep.kind = intervene; docs/directions.md "Interventions"): layer
// ablation (zero, mean, Gaussian noise), activation patching from a source run (another prompt, or another
// model on the same prompt) and directional ablation at every layer, each scored by the teacher-forced
// log-probability of the prompt's answer and whether every answer token is the model's argmax.
// stages/intervene_sweep.cpp is the SweepKind (plan, task ids, summary); stages/intervene_task.cpp runs
// one manifest row.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/config.h"
#include "core/json.h"
#include "dist/rank_model.h"
#include "dist/runtime.h"
#include "stages/directions_inputs.h"

namespace ts::stages {

// One manifest row.
struct IntervenePoint {
  int64_t task = 0;
  std::string key, dataset, mode;  // mode: an InterveneMode name
  int64_t layer = -1;              // -1: every layer (mode direction)
  json to_json() const;
  static IntervenePoint from_json(const json& row, const std::string& where);
};

// What every task of a process shares, loaded once (prepare()).
struct InterveneEnv {
  StageModel model;
  std::unique_ptr<StageModel> source;  // intervene.source_model
  std::optional<ChosenDirection> direction;
  std::string inputs;                  // identities of the checkpoints and the direction, for task hashes
  // The clean run's scores of each batch (dataset and prompt ids), shared by every task of this process: the
  // tasks of one dataset run the same batches, so a cached score is the one a recomputation would give.
  std::map<std::string, std::pair<std::vector<double>, std::vector<uint8_t>>> clean;
};
InterveneEnv load_intervene_env(const Config& cfg, Runtime& rt);
// The checkpoints' and direction's identities (without loading them).
std::string intervene_inputs(const Config& cfg);
std::string intervene_task_hash(const Config& cfg, const IntervenePoint& p, const std::string& inputs);
// COLLECTIVE: runs the row unless its task file is complete; false when it was.
bool run_intervene_task(const Config& cfg, Runtime& rt, const IntervenePoint& p, InterveneEnv& env);

}  // namespace ts::stages
