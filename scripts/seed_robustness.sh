#!/usr/bin/env bash
# The steering acceptance on seeds the demo was not developed on (docs/algorithms.md "Steering
# acceptance"). For each problem seed P (`toy.seed`: the problems whose traces give the vectors and the
# held-out problems the sweep steers) the demo's steering chain (scripts/steer_demo.sh) runs in runs/seeds/p<P>; for each control seed C
# (`sweep.seeds`: five random directions, seeds 100*C..100*C+4) the sweep adds only the new random
# directions (baseline and vector tasks are reused) and the acceptance table is saved as
# runs/seeds/p<P>/acceptance-c<C>.txt. Prints one verdict line per (P, C); exit 1 if any fails.
# Usage: scripts/seed_robustness.sh [PROBLEM_SEEDS [CONTROL_SEEDS]] [-- --section.key value ...]
#   e.g. scripts/seed_robustness.sh "101 202 303" "11 12 13"   (the defaults; about 25 min on 2 cores)
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh thinksteer
problem_seeds=${1:-"101 202 303"}
control_seeds=${2:-"11 12 13"}
shift $(( $# < 2 ? $# : 2 ))
[[ ${1:-} == -- ]] && shift
mkdir -p runs/seeds
status=0
summary=()
for p in $problem_seeds; do
  for c in $control_seeds; do
    dir=runs/seeds/p$p
    start=$(date +%s)
    if ! scripts/steer_demo.sh --toy.seed "$p" --sweep.seeds "$c" --run.dir "$dir" "$@" > "$dir.c$c.log" 2>&1; then
      summary+=("problem seed $p, control seed $c: the chain failed (see $dir.c$c.log)"); status=1; continue
    fi
    .venv/bin/thinksteer-analysis acceptance "$dir" > "$dir/acceptance-c$c.txt"
    rc=$?
    [[ $rc -ne 0 ]] && status=1
    verdicts=$(grep -E ': (PASS|FAIL)' "$dir/acceptance-c$c.txt" | sed 's/ at layer.*//; s/ (no row.*//' | tr '\n' ' ')
    summary+=("problem seed $p, control seed $c ($(( $(date +%s) - start )) s): $verdicts")
  done
done
printf '%s\n' "${summary[@]}"
exit $status
