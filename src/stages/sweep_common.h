// What `sweep run` / `steer` (stages/sweep.cpp) and `reduce` (stages/reduce.cpp) share: where a
// sweep's files live, the annotator that measures behaviours, and the hash that says a task file is
// finished for this config (its done marker).
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "annotate/annotator.h"
#include "core/config.h"
#include "steer/sweep_plan.h"

namespace ts::stages {

std::filesystem::path sweep_dir(const Config& cfg);                   // <run.dir>/sweep
// <run.dir>/sweep/tasks/<key>.h5: named by the point's key, not its row, so a re-plan that adds axis
// values (and shifts rows) still finds every finished point.
std::filesystem::path task_file(const Config& cfg, const SweepPoint& p);
std::filesystem::path steer_vectors_path(const Config& cfg);          // steer.vectors or <run.dir>/vectors/vectors.h5

// The annotator of annotate.annotator: lexicon, toy, or llm on an endpoint.
std::unique_ptr<Annotator> make_sweep_annotator(const Config& cfg);

// Identity of a task's inputs besides the point and the config sections.
struct TaskInputs {
  std::string vectors_file, vectors_sha, checkpoint_id, annotator_identity;
};
TaskInputs task_inputs(const Config& cfg, const Annotator& annotator);
std::string task_hash(const Config& cfg, const SweepPoint& p, const TaskInputs& in);

}  // namespace ts::stages
