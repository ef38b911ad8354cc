#!/usr/bin/env bash
# The main job on the embedded default, from a fresh machine: set-up, build, create the demo
# checkpoint, generate thinking traces for configs/prompts/demo.jsonl into runs/demo/.
# Usage: scripts/run_demo.sh [--section.key value ...]   (extra options override configs/demo.ini)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh thinksteer
.venv/bin/python scripts/make_demo_model.py --out build/demo-model
build/bin/thinksteer generate --config configs/demo.ini "$@"
echo
echo "traces: runs/demo/generate/generations.jsonl"
head -c 600 runs/demo/generate/generations.jsonl; echo
