// Stage `sweep run`: one manifest row of a sweep of any kind (stages/sweep_kind.h), the work of one
// Slurm array task.
//   in : the manifest row --task-id N (or $SLURM_ARRAY_TASK_ID), and what the kind's tasks read
//   out: <run.dir>/<sweep dir>/tasks/<key>.h5 (+ .done), the kind's task file
// A rerun skips a finished row; a stop request (SIGUSR1 from Slurm's --signal, SIGTERM) ends the
// task with exit 75, and the requeued task continues it (or starts it over: the kind says which).
#include <cstdlib>

#include "core/error.h"
#include "stages/sweep_kind.h"

namespace ts::stages::sweep_run {

void run(const Config& cfg, Runtime& rt) {
  int64_t task = cfg.sweep.task_id;
  if (task < 0) {
    const char* env_id = std::getenv("SLURM_ARRAY_TASK_ID");
    if (env_id == nullptr) throw InputError("<command line>", "--task-id", "give the manifest row to run (--task-id N), or run inside a Slurm array task");
    try {
      task = std::stoll(env_id);
    } catch (const std::exception&) {
      throw InputError("$SLURM_ARRAY_TASK_ID", "value", std::string("not an integer: '") + env_id + "'");
    }
  }
  const std::unique_ptr<SweepKind> kind = make_sweep_kind(cfg);
  const std::vector<json> rows = artifacts::read_sweep_manifest_rows(cfg, kind->layout());
  if (task >= static_cast<int64_t>(rows.size()))
    throw InputError(kind->layout().manifest(cfg).string(), "task",
                     "task " + std::to_string(task) + " is not in the manifest (" + std::to_string(rows.size()) + " tasks)");
  kind->prepare(cfg, rt);
  kind->run(cfg, rt, rows[static_cast<size_t>(task)], static_cast<size_t>(task));
}

}  // namespace ts::stages::sweep_run
