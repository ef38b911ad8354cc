#!/usr/bin/env bash
# Configure and build thinksteer into build/ (Release, Ninja). Extra args go to the build step.
# Usage: scripts/build.sh [targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
if [[ ! -f build/build.ninja ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build -j "$JOBS" ${1:+--target "$@"}
