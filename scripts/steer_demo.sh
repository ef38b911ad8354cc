#!/usr/bin/env bash
# The steering part of the demo (scripts/run_demo.sh runs it first): generate -> annotate -> collect -> vectors ->
# attribute -> steer sweep (plan, tasks, reduce) on 2 MPI ranks with configs/demo.ini, then the figures and the
# acceptance table (docs/algorithms.md "Steering acceptance"). Expects a built tree (scripts/build.sh).
# Usage: scripts/steer_demo.sh [--section.key value ...]   (extra options override configs/demo.ini)
# Exit status: the chain's; the acceptance verdict is printed, not returned (scripts/seed_robustness.sh judges it).
set -euo pipefail
cd "$(dirname "$0")/.."
# Open MPI refuses to run as root unless told; oversubscribe lets 2 ranks share a small machine; one
# torch thread per rank keeps the ranks from stalling each other on 2 cores.
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1
run_dir=runs/demo   # or the --run.dir given
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do [[ ${args[i]} == --run.dir ]] && run_dir=${args[i+1]}; done
for stage in generate annotate collect vectors attribute steer; do
  mpiexec --oversubscribe -n 2 build/bin/thinksteer "$stage" --config configs/demo.ini --run.threads 1 "$@"
done
.venv/bin/thinksteer-analysis figures "$run_dir"
echo
.venv/bin/thinksteer-analysis acceptance "$run_dir" || true
