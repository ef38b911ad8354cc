#!/usr/bin/env bash
# Configures the one torch-free sanitized build that the fuzz tier (tests/fuzz/run_fuzz.sh) and the ASan
# tier of the bad-input cases (tests/cli/run_asan.sh) share: clang, -DTHINKSTEER_ENGINE=OFF, ASan + UBSan
# everywhere and libFuzzer's coverage instrumentation (-fsanitize=fuzzer-no-link), so thinksteer_formats
# is compiled once for both tiers. Sourced; sets SANITIZED_BUILD. Both callers pass the same options, so
# neither reconfigures what the other built.
# Env: THINKSTEER_SANITIZED_BUILD_DIR (default <repo>/build-sanitized), THINKSTEER_PYTHON, THINKSTEER_FUZZ_SECONDS (5).
SANITIZED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SANITIZED_BUILD=${THINKSTEER_SANITIZED_BUILD_DIR:-$SANITIZED_ROOT/build-sanitized}
sanitized_configure=(-S "$SANITIZED_ROOT" -B "$SANITIZED_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
                     -DTHINKSTEER_ENGINE=OFF -DTHINKSTEER_FUZZ=ON -DTHINKSTEER_ASAN=ON
                     "-DTHINKSTEER_FUZZ_SECONDS=${THINKSTEER_FUZZ_SECONDS:-5}"
                     "-DTHINKSTEER_PYTHON=${THINKSTEER_PYTHON:-$SANITIZED_ROOT/.venv/bin/python}"
                     # The parsers themselves need coverage instrumentation, not just the fuzzer's main file.
                     "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link")
if [[ ! -f "$SANITIZED_BUILD/CMakeCache.txt" ]]; then
  sanitized_configure+=(-DCMAKE_C_COMPILER="${CC:-clang}" -DCMAKE_CXX_COMPILER="${CXX:-clang++}")
fi
cmake "${sanitized_configure[@]}" >/dev/null
