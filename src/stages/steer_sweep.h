// The steering kind of sweep (stages/sweep_kind.h; sweep.kind = steer): its plan (the points of
// steer/sweep_plan.h from [sweep], layers auto | selected resolved through attribute's output), the
// running of one point (stages/steer_sweep.cpp) and its summary (stages/steer_summary.cpp).
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
#include "stages/sweep_kind.h"
#include "steer/sweep_plan.h"

namespace ts::stages {

// The sweep's points from [sweep]. COLLECTIVE (every rank reads the vectors and attribution files).
std::vector<SweepPoint> plan_steer_points(const Config& cfg);

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

// Runs one point on every rank of rt (COLLECTIVE). Returns false when it was already finished.
bool run_task(const Config& cfg, Runtime& rt, const SweepPoint& p, const TaskEnv& env);

// The manifest's rows as points (a row whose key does not match its parameters is refused).
std::vector<SweepPoint> steer_points(const Config& cfg, const std::vector<json>& rows, size_t first_index = 0);

// Rank 0: the summary of the finished points (summary.h5 through `out`, summary.csv, the log table).
void write_steer_summary(const Config& cfg, Runtime& rt, StageOutput& out, const std::vector<SweepPoint>& points, const SweepStatus& st);

}  // namespace ts::stages
