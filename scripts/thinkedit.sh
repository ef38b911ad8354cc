#!/usr/bin/env bash
# ThinkEdit end to end on one node (docs/thinkedit.md; docs/algorithms.md "ThinkEdit"): probe traces
# (`generate` on data.prompts), the reasoning-length direction and head scores (`thinkedit direction`), the
# weight edit (`thinkedit edit`), all-layer steering over [sweep] coefficients (RUN/alpha) and layer-wise
# steering at LAYER_ALPHAS (RUN/layerwise), the original and edited models on EVAL_SEEDS sampled runs
# (RUN/eval/original, RUN/eval/edited), then `thinksteer-analysis thinkedit RUN` (tables and figures).
# Every sweep is an ordinary steering sweep: on a cluster submit the same commands with slurm/submit.sh sweep.
# Finished stages and tasks are skipped on a rerun.
# Usage: scripts/thinkedit.sh PRESET.ini [RUN_DIR] [--section.key value ...]
#   RANKS (default 2) ranks; THREADS (default 1) torch threads per rank; LAYER_ALPHAS (default 1,-1);
#   LAYER_SEEDS (default: the first of [sweep] seeds); EVAL_SEEDS (default 1,2,3,4: samples per problem).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:?usage: scripts/thinkedit.sh PRESET.ini [RUN_DIR] [--section.key value ...]}
shift
dir=$(awk -F' *= *' '/^\[run\]/{r=1;next} /^\[/{r=0} r&&$1=="dir"{print $2}' "$preset")
if [[ $# -gt 0 && $1 != --* ]]; then dir=$1; shift; fi
scripts/build.sh thinksteer >/dev/null
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=${THREADS:-1}
run() { mpiexec --oversubscribe -n "${RANKS:-2}" build/bin/thinksteer "$@" --config "$preset" --run.threads "${THREADS:-1}"; }
seeds=$(awk -F' *= *' '/^\[sweep\]/{r=1;next} /^\[/{r=0} r&&$1=="seeds"{print $2}' "$preset")
direction=(--steer.vectors "$dir/thinkedit/mlp.h5")
common=("${direction[@]}" --sweep.vectors length --sweep.hooks hook_mlp_out --sweep.controls none --sweep.positions all)
run generate --run.dir "$dir" "$@"
run thinkedit direction --run.dir "$dir" "$@"
run thinkedit edit --run.dir "$dir" "$@"
run steer --run.dir "$dir/alpha" "${common[@]}" --sweep.layers all "$@"
run steer --run.dir "$dir/layerwise" "${common[@]}" --sweep.layers each --sweep.coefficients="${LAYER_ALPHAS:-1,-1}" \
    --sweep.seeds "${LAYER_SEEDS:-${seeds%%,*}}" "$@"
run steer --run.dir "$dir/eval/original" "${direction[@]}" --sweep.vectors "" --sweep.seeds "${EVAL_SEEDS:-1,2,3,4}" "$@"
run steer --run.dir "$dir/eval/edited" "${direction[@]}" --sweep.vectors "" --sweep.seeds "${EVAL_SEEDS:-1,2,3,4}" \
    --model.path "$dir/thinkedit/edited" "$@"
.venv/bin/thinksteer-analysis thinkedit "$dir"
