#!/usr/bin/env bash
# The base-vector chain of a pair preset on one node (configs/pairs/NAME.ini; docs/algorithms.md §B.8-§B.10):
# thinking-model rollouts, (reference labels when the preset asks for them), §B.3 sentence activations at the
# SAE layer, the taxonomy sweep, the chosen SAE's export, the disagreement records, and the base-vector sweep
# (seeds, best of seeds), then the table and figures of `thinksteer-analysis basevec`; a preset with a [hybrid]
# section then runs the hybrid sweep (`thinksteer hybrid`) and `thinksteer-analysis hybrid`. Finished stages are
# skipped on a rerun. On a cluster run the same stages through slurm/submit.sh (each preset lists them).
# Usage: scripts/basevec_pair.sh CONFIG.ini [RUN_DIR] [--section.key value ...]
#   RANKS (default 2) ranks under mpiexec; THREADS (default 1) torch threads per rank.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: scripts/basevec_pair.sh CONFIG.ini [RUN_DIR] [--section.key value ...]}
shift
extra=()
if [[ $# -gt 0 && $1 != --* ]]; then
  extra+=(--run.dir "$1")
  grep -q '^reference_spans' "$config" && extra+=(--basevec.reference_spans "$1/annotate/spans.h5")
  shift
fi
scripts/build.sh thinksteer
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=${THREADS:-1}
run() { mpiexec --oversubscribe -n "${RANKS:-2}" build/bin/thinksteer "$@" --config "$config" --run.threads "${THREADS:-1}" "${extra[@]}"; }
stages=(generate)
grep -q '^reference_spans' "$config" && stages+=(annotate)
for stage in "${stages[@]}" sentences; do run "$stage" "$@"; done
run taxonomy --sweep.kind taxonomy "$@"
run titles "$@"
run basevec collect "$@"
run basevec train --sweep.kind basevec "$@"
grep -q '^\[hybrid\]' "$config" && run hybrid --sweep.kind hybrid "$@"
dir=$(awk -F' *= *' '/^\[run\]/{r=1;next} /^\[/{r=0} r&&$1=="dir"{print $2}' "$config")
for ((i = 0; i < ${#extra[@]}; i++)); do [[ ${extra[i]} == --run.dir ]] && dir=${extra[i+1]}; done
.venv/bin/thinksteer-analysis basevec "$dir"
if grep -q '^\[hybrid\]' "$config"; then echo; .venv/bin/thinksteer-analysis hybrid "$dir"; fi
