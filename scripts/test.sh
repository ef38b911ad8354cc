#!/usr/bin/env bash
# The whole test suite from a fresh machine: set-up, build, then every ctest tier
# (unit, reference parity against HF, cli/bad input, ASan run of the bad-input cases, fuzzing).
# Usage: scripts/test.sh [ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
ctest --output-on-failure --timeout 900 "$@"
