#!/usr/bin/env bash
# The bad-input suite under AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer included).
# Builds thinksteer-check and two torch-free unit tests in the torch-free sanitized build the fuzz tier
# shares (tests/sanitized_build.sh: clang, ASan + UBSan, coverage instrumentation), runs the safetensors/checkpoint unit tests there,
# then tests/cli/test_bad_input.py against that build's bin/thinksteer-check (--only-check). Any
# sanitizer report aborts the process (abort_on_error / halt_on_error) and fails the run.
#
# Usage: tests/cli/run_asan.sh [--reference DIR] [pytest args...]
# Env:   THINKSTEER_SANITIZED_BUILD_DIR (default <repo>/build-sanitized), THINKSTEER_PYTHON (default <repo>/.venv/bin/python),
#        THINKSTEER_REFERENCE_DIR (default: generated into <build-sanitized>/testdata/reference), JOBS (default 2)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${THINKSTEER_PYTHON:-$ROOT/.venv/bin/python}
REF=${THINKSTEER_REFERENCE_DIR:-}
JOBS=${JOBS:-2}
if [[ "${1:-}" == "--reference" ]]; then
  REF=$2
  shift 2
fi

# shellcheck source=../sanitized_build.sh
source "$ROOT/tests/sanitized_build.sh"  # configures $SANITIZED_BUILD, shared with tests/fuzz/run_fuzz.sh
BUILD=$SANITIZED_BUILD
cmake --build "$BUILD" -j "$JOBS" --target thinksteer-check test_safetensors test_checkpoint_files

if [[ -z "$REF" ]]; then
  REF=$BUILD/testdata/reference
  "$PY" "$ROOT/tests/reference/make_reference.py" --out "$REF"  # a no-op when up to date
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

"$BUILD/tests/unit/test_safetensors" --gtest_brief=1
"$BUILD/tests/unit/test_checkpoint_files" --gtest_brief=1

# pytest exits 5 when it collected nothing: that fails here too (set -e).
"$PY" -m pytest -q -p no:cacheprovider "$ROOT/tests/cli/test_bad_input.py" "$ROOT/tests/cli/test_bad_input_cli.py" \
      --only-check --check-binary "$BUILD/bin/thinksteer-check" --reference "$REF" \
      --basetemp "$BUILD/cli_bad_input_tmp" "$@"
