#!/usr/bin/env bash
# Configures and builds the libFuzzer build (clang, torch-free, everything under ASan + UBSan and
# coverage instrumentation) in build-fuzz, then runs every fuzz-labelled test there: each fuzzer runs
# THINKSTEER_FUZZ_SECONDS (default 10) from its seed corpus; new inputs go to
# build-fuzz/tests/.../<name>_corpus. Any crash, sanitizer report or escaped exception fails.
#
# Usage: tests/fuzz/run_fuzz.sh [ctest args, e.g. -R fuzz_model_config]
# Env:   THINKSTEER_FUZZ_BUILD_DIR (default <repo>/build-fuzz), THINKSTEER_FUZZ_SECONDS, JOBS (default 2)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${THINKSTEER_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
JOBS=${JOBS:-2}
SECONDS_EACH=${THINKSTEER_FUZZ_SECONDS:-10}

configure=(-S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
           -DTHINKSTEER_ENGINE=OFF -DTHINKSTEER_FUZZ=ON -DTHINKSTEER_ASAN=ON
           "-DTHINKSTEER_FUZZ_SECONDS=$SECONDS_EACH"
           # The parsers themselves need coverage instrumentation, not just the fuzzer's main file.
           "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link")
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  configure+=(-DCMAKE_C_COMPILER="${CC:-clang}" -DCMAKE_CXX_COMPILER="${CXX:-clang++}")
fi
cmake "${configure[@]}" >/dev/null

# Build the fuzz targets only (each fuzz test is named after its target).
mapfile -t targets < <(cd "$BUILD" && ctest -N -L fuzz | sed -n 's/^ *Test *#[0-9]*: *//p')
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "run_fuzz.sh: no fuzz tests registered in $BUILD" >&2
  exit 1
fi
cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
cd "$BUILD"
ctest -L fuzz --output-on-failure "$@"
