#!/usr/bin/env bash
# Reproduces the shipped planted-truth models models/toy-thinker, models/toy-base, models/toy-base-knows and
# models/toy-thinker-thorough from their recipes configs/toy/{thinker,base,base-knows,thinker-thorough}.ini: the toy tokenizer (trained on the thinker
# corpus, shared by both), then `toy train` for each style, then a copy of each HF checkpoint into
# models/. Deterministic: same commit, same config -> same weights on the same CPU build.
# Usage: scripts/make_toy_models.sh [RANKS]   (data-parallel ranks under mpiexec; default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${1:-1}
scripts/build.sh thinksteer
launch=(build/bin/thinksteer)
if [[ $ranks -gt 1 ]]; then
  if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
  launch=(mpiexec --oversubscribe -n "$ranks" build/bin/thinksteer)
fi
# The tokenizer is trained on the digit-gate thinker corpus (toy.thinker_gates = digits, the default; said
# here so that a coin-gate recipe shares it: configs/toy/thinker-coins.ini).
build/bin/thinksteer toy tokenizer --config configs/toy/thinker.ini --toy.thinker_gates digits
for style in thinker base base-knows thinker-thorough; do  # thinker-thorough fine-tunes models/toy-thinker
  "${launch[@]}" toy train --config configs/toy/$style.ini
  rm -rf models/toy-$style.new
  cp -r runs/toy-$style/train/model models/toy-$style.new
  rm -rf models/toy-$style
  mv models/toy-$style.new models/toy-$style
  echo "models/toy-$style: $(du -sh models/toy-$style | cut -f1)"
done
