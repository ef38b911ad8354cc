#!/usr/bin/env bash
# The main job on the embedded default, from a fresh machine: set-up, build, then the whole steering
# chain on the shipped toy thinker (models/toy-thinker, trained by thinksteer on the planted-truth
# corpus; nothing is downloaded) on 2 MPI ranks: generate -> annotate -> collect -> vectors ->
# attribute -> steer sweep (plan, tasks, reduce) -> figures, and the acceptance table (at attribute's
# first pick, +c raises each behaviour and -c lowers it beyond every same-norm random direction's
# interval; bootstrap 95% intervals over 200 held-out problems; docs/algorithms.md "Steering
# acceptance"); then a small taxonomy sweep of the same traces (sentences -> SAEs and k-means at K = 6
# over every layer -> titles) and its table; then the hybrid (README "The hybrid model"): correction vectors for
# models/toy-base-knows from 200 thinker rollouts, and the base steered where the thinker disagrees on 200 held-out
# problems, with its ablations, and its table (configs/pairs/toy-knows.ini at reduced size, in <run.dir>/hybrid-pair);
# then ThinkEdit (README "ThinkEdit") on models/toy-thinker-thorough and its tables (configs/thinkedit/toy.ini, in
# <run.dir>/thinkedit).
# Everything lands in runs/demo/ (see configs/demo.ini), or in the --run.dir given.
# Usage: scripts/run_demo.sh [--section.key value ...]   (extra options override configs/demo.ini)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh thinksteer
# MPI as root, one torch thread per rank: as in scripts/steer_demo.sh, for the stages run here after it.
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1
run_dir=runs/demo   # or the --run.dir given
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do [[ ${args[i]} == --run.dir ]] && run_dir=${args[i+1]}; done
start=$(date +%s)
scripts/steer_demo.sh "$@"   # generate ... steer, figures, the acceptance table
for stage in sentences taxonomy titles; do
  mpiexec --oversubscribe -n 2 build/bin/thinksteer "$stage" --config configs/demo.ini --run.threads 1 \
          --sentences.reference "$run_dir/annotate/spans.h5" "$@"
done
.venv/bin/thinksteer-analysis figures "$run_dir"   # again: the taxonomy's figures
echo
.venv/bin/thinksteer-analysis taxonomy "$run_dir"
echo
scripts/basevec_pair.sh configs/pairs/toy-knows.ini "$run_dir/hybrid-pair" --data.limit 200 --basevec.seeds 42 \
                        --hybrid.ablations none,randcat,randvec,randpos | sed -n '/^# Hybrid sweep/,$p'
echo
# ThinkEdit on the thorough toy thinker (docs/thinkedit.md): direction, heads, edit, the α and layer-wise sweeps, the
# sampled evaluation; the tables up to the length-threshold curve (figures in $run_dir/thinkedit/figures).
scripts/thinkedit.sh configs/thinkedit/toy.ini "$run_dir/thinkedit" | sed -n '/^# ThinkEdit/,/^### /p' | sed '$d'
echo
echo "chain finished in $(( $(date +%s) - start )) s; outputs in $run_dir/ (sweep/summary.h5, summary.csv, figures/*.png)"
