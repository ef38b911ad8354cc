// What the sweep stages share (stages/sweep_plan.cpp, stages/sweep_run.cpp, stages/steer.cpp): the
// plan of a sweep and the running of one of its tasks on the current ranks.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "annotate/annotator.h"
#include "artifacts/sweep_task.h"
#include "core/config.h"
#include "dist/rank_model.h"
#include "dist/runtime.h"
#include "io/vectors.h"
#include "steer/sweep_plan.h"

namespace ts::stages {

// The sweep's points from [sweep] (layers auto | selected resolved through attribute's output); rank 0
// writes the manifest and plan.json when they change. COLLECTIVE.
std::vector<SweepPoint> plan_sweep(const Config& cfg, Runtime& rt);

// Everything a process needs to run tasks, loaded once.
struct TaskEnv {
  StageModel model;
  VectorSet vectors;
  std::string vectors_file;
  artifacts::TaskInputs inputs;
  std::unique_ptr<Annotator> annotator;
  std::optional<int32_t> think_close;
};
TaskEnv load_task_env(const Config& cfg, Runtime& rt);

// Runs one task on every rank of rt (COLLECTIVE). Returns false when it was already finished.
bool run_task(const Config& cfg, Runtime& rt, const SweepPoint& p, const TaskEnv& env);

}  // namespace ts::stages
