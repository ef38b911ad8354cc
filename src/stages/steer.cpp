// Stages `steer` and `taxonomy`: a whole sweep on these ranks, of the steering kind or the taxonomy
// kind (stages/sweep_kind.h): `sweep plan`, every task not yet finished (`sweep run`'s work,
// skipping finished ones), then `reduce`. The same files as the Slurm route.
#include "stages/sweep_kind.h"

namespace ts::stages {

namespace steer {

void run(const Config& cfg, Runtime& rt) { run_whole_sweep(*make_steer_sweep(), cfg, rt); }

}  // namespace steer

namespace taxonomy {

void run(const Config& cfg, Runtime& rt) { run_whole_sweep(*make_taxonomy_sweep(), cfg, rt); }

}  // namespace taxonomy

}  // namespace ts::stages
