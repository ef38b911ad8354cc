#!/usr/bin/env bash
# Builds the torch-free sanitized tree that the fuzz tier and the ASan tier of the bad-input cases share
# (tests/sanitized_build.sh: clang, ASan + UBSan, coverage instrumentation; <repo>/build-sanitized), with
# every target the two tiers run. scripts/test.sh calls it before ctest, so the suite's time is the tests'
# (the tiers' own build steps are then no-ops; run alone, each tier still builds what it needs).
# Env: THINKSTEER_SANITIZED_BUILD_DIR, JOBS (default 2).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tests/sanitized_build.sh
source "$ROOT/tests/sanitized_build.sh"
mapfile -t fuzz < <(cd "$SANITIZED_BUILD" && ctest -N -L fuzz | sed -n 's/^ *Test *#[0-9]*: *//p')
cmake --build "$SANITIZED_BUILD" -j "${JOBS:-2}" --target "${fuzz[@]}" thinksteer-check test_safetensors test_checkpoint_files
