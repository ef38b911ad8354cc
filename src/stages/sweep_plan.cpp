// Stage `sweep plan`: the manifest of a sweep of the kind sweep.kind names (stages/sweep_kind.h), one
// row per Slurm array task (docs/decisions.md "Sweeps are Slurm array tasks").
//   in : the kind's axes ([sweep] for steering, [taxonomy] for the taxonomy) and inputs
//   out: <run.dir>/<sweep dir>/manifest.jsonl (artifacts/sweep_manifest.h), plan.json; stdout: one line
//        "--array=0-<N-1>" for sbatch
#include <iostream>

#include "core/log.h"
#include "stages/sweep_kind.h"

namespace ts::stages::sweep_plan {

void run(const Config& cfg, Runtime& rt) {
  const std::unique_ptr<SweepKind> kind = make_sweep_kind(cfg);
  const std::vector<json> rows = plan_and_write(*kind, cfg, rt);
  if (rt.rank == 0) {
    const std::string array = "0-" + std::to_string(rows.size() - 1);
    spdlog::info("sweep plan: submit with  slurm/submit.sh sweep {}   (or sbatch --array={} slurm/sweep.sbatch ...)",
                 cfg.config_file.empty() ? "<config>" : cfg.config_file, array);
    std::cout << "--array=" << array << std::endl;
  }
}

}  // namespace ts::stages::sweep_plan
