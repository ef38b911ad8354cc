#!/usr/bin/env bash
# Configures and builds the libFuzzer build (clang, torch-free, everything under ASan + UBSan and
# coverage instrumentation; tests/sanitized_build.sh, the build the ASan tier shares) in build-sanitized,
# then runs every fuzz-labelled test there: each fuzzer runs THINKSTEER_FUZZ_SECONDS (default 5) from
# its seed corpus; new inputs go to build-sanitized/tests/.../<name>_corpus. Any crash, sanitizer report or escaped exception fails.
#
# Usage: tests/fuzz/run_fuzz.sh [ctest args, e.g. -R fuzz_model_config]
# Env:   THINKSTEER_SANITIZED_BUILD_DIR (default <repo>/build-sanitized), THINKSTEER_FUZZ_SECONDS, JOBS (default 2)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
JOBS=${JOBS:-2}
# shellcheck source=../sanitized_build.sh
source "$ROOT/tests/sanitized_build.sh"  # configures $SANITIZED_BUILD, shared with tests/cli/run_asan.sh
BUILD=$SANITIZED_BUILD

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
