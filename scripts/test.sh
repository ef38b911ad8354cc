#!/usr/bin/env bash
# The whole test suite from a fresh machine: set-up, build, then every ctest tier
# (unit, reference parity against HF, cli/bad input, ASan run of the bad-input cases, fuzzing); the
# sanitized tree of the last two is built before ctest (scripts/build_sanitized.sh).
# Usage: scripts/test.sh [ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
scripts/build_sanitized.sh   # the fuzz and ASan tiers' build, compiled here rather than inside their tests
cd build
ctest --output-on-failure --timeout 900 "$@"
