// Stage `steer`: a whole steering sweep on these ranks: `sweep plan`, every task not yet finished
// (`sweep run`'s work, skipping finished ones), then `reduce`. The same files as the Slurm route.
#include "core/log.h"
#include "stages/sweep.h"

namespace ts::stages {

namespace reduce {
void run(const Config& cfg, Runtime& rt);
}  // namespace reduce

namespace steer {

void run(const Config& cfg, Runtime& rt) {
  const std::vector<SweepPoint> points = plan_sweep(cfg, rt);
  const TaskEnv env = load_task_env(cfg, rt);
  int64_t ran = 0;
  for (const SweepPoint& p : points) ran += run_task(cfg, rt, p, env) ? 1 : 0;
  spdlog::info("steer: {} of {} tasks run, {} were finished before", ran, points.size(), static_cast<int64_t>(points.size()) - ran);
  reduce::run(cfg, rt);
}

}  // namespace steer

}  // namespace ts::stages
