#!/usr/bin/env bash
# One-shot set-up for a fresh Debian 12 machine: system libraries through apt, Python
# dependencies into the project venv (.venv). Idempotent: a second run only checks.
# Usage: scripts/setup.sh            (needs root or sudo for apt)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  openmpi-bin libopenmpi-dev            # ranks
  libhdf5-openmpi-dev hdf5-tools        # parallel HDF5 (MPI-IO)
  libboost-program-options-dev          # CLI + INI configs
  libspdlog-dev libfmt-dev              # logs
  libgtest-dev libgmock-dev             # tests
  libpcre2-dev                          # tokenizer pre-tokenizer regexes
  nlohmann-json3-dev                    # config.json / tokenizer.json / safetensors headers
  libutf8proc-dev                       # NFC normalizer
  libcurl4-openssl-dev                  # llm annotator: OpenAI-compatible endpoints
  clang libclang-rt-14-dev              # libFuzzer + AddressSanitizer targets
  python3-venv
  slurm-wlm munge                       # sweeps as array jobs; tests/slurm/cluster.sh runs a one-node cluster
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] apt: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "[setup] creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "[setup] pip: installing scripts/requirements.txt (torch wheel is large; first run takes minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q --progress-bar off -r scripts/requirements.txt
  echo "$want" > "$stamp"
fi
# analysis/ (the thinksteer_analysis package and its `thinksteer-analysis` command) into the venv,
# editable: the checkout's sources are what runs, and a new module needs no reinstall. Built with the
# venv's setuptools (scripts/requirements.txt), no index: nothing is downloaded. Redone when
# analysis/pyproject.toml or the checkout's place changes, or when the install went missing.
analysis_stamp=.venv/.analysis.sha256
analysis_want=$( (cat analysis/pyproject.toml; pwd) | sha256sum | cut -d' ' -f1)
if [[ ! -f $analysis_stamp || $(cat "$analysis_stamp") != "$analysis_want" || ! -x .venv/bin/thinksteer-analysis ]] ||
   ! .venv/bin/python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("thinksteer_analysis") is None)'; then
  echo "[setup] pip: installing analysis/ (editable)"
  PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q --no-deps --no-build-isolation --no-index -e analysis
  echo "$analysis_want" > "$analysis_stamp"
fi
echo "[setup] ok: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"
