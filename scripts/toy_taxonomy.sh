#!/usr/bin/env bash
# The taxonomy's planted-truth run on the shipped toy thinker (configs/toy/taxonomy.ini; README "The
# taxonomy"): 1000 held-out greedy traces of problem seed SEED, toy-annotator labels as the reference,
# sentence activations at every layer, SAEs and k-means over K 4..10 x seeds 0-2 x every layer, titles,
# then the table. About 85 s on 2 cores after the build.
# Usage: scripts/toy_taxonomy.sh [SEED (0)] [RUN_DIR (runs/toy-taxonomy-SEED)] [--section.key value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-0}
dir=${2:-runs/toy-taxonomy-$seed}
shift $(( $# < 2 ? $# : 2 ))
scripts/build.sh thinksteer
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1
for stage in generate annotate sentences taxonomy titles; do
  mpiexec --oversubscribe -n 2 build/bin/thinksteer "$stage" --config configs/toy/taxonomy.ini --run.threads 1 --toy.seed "$seed" \
          --run.dir "$dir" --sentences.reference "$dir/annotate/spans.h5" "$@"
done
.venv/bin/thinksteer-analysis taxonomy "$dir"
