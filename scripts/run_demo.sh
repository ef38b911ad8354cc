#!/usr/bin/env bash
# The main job on the embedded default, from a fresh machine: set-up, build, then on the shipped toy
# thinker (models/toy-thinker, trained by thinksteer on the planted-truth corpus; no download):
# greedy thinking traces for 50 held-out word problems into runs/demo/generate/, `toy eval` scoring
# them against the planted truth (runs/demo/toy/eval.json), and `collect` of the generated tokens'
# activations at every layer on 2 MPI ranks into runs/demo/collect/activations.h5.
# Usage: scripts/run_demo.sh [--section.key value ...]   (extra options override configs/demo.ini)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh thinksteer
build/bin/thinksteer generate --config configs/demo.ini "$@"
build/bin/thinksteer toy eval --config configs/demo.ini "$@"
# Open MPI refuses to run as root unless told; oversubscribe lets 2 ranks share a small machine.
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mpiexec --oversubscribe -n 2 build/bin/thinksteer collect --config configs/demo.ini "$@"
echo
echo "traces: runs/demo/generate/generations.jsonl (+ generations.h5); scores: runs/demo/toy/eval.json"
.venv/bin/python - <<'PY'
import json
row = json.loads(open("runs/demo/generate/generations.jsonl").readline())
print("first problem:", row["prompt"])
print(row["text"][:700])
PY
PYTHONPATH=analysis .venv/bin/python -c "import sys; from thinksteer_analysis.activations import main; sys.exit(main(['runs/demo']))"
