#!/usr/bin/env bash
# Acceptance of the shipped toy models: greedy generation with thinksteer on 200 held-out problems
# (builtin:toy-test) for models/toy-thinker and models/toy-base, then `toy eval`, which writes
# eval.json: closed-</think> and parseable rates, accuracy, and each behaviour's sentence share in the
# generated traces against the corpus. Problem seed S draws the problems from the corpus of
# `[toy] seed = S` (the models were trained on seed 0's train split; seed 0's test split and every other
# seed's problems are new to them). Runs land in runs/toy-accept/seed<S>/<style>.
# Usage: scripts/toy_acceptance.sh [PROBLEM_SEED ...] [-- --section.key value ...]   (default seed: 0)
#   TOY_THINKER=thinker-disposed scripts/toy_acceptance.sh 0 101   judges another thinker recipe of configs/toy/ (its
#   [model] and [generate]: the disposed thinker is sampled) beside models/toy-base.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=()
while [[ $# -gt 0 && $1 != -- ]]; do seeds+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
[[ ${#seeds[@]} -eq 0 ]] && seeds=(0)
scripts/build.sh thinksteer
status=0
for seed in "${seeds[@]}"; do
  for style in "${TOY_THINKER:-thinker}" base; do
    dir=runs/toy-accept/seed$seed/$style
    build/bin/thinksteer generate --config configs/toy/$style.ini --toy.seed "$seed" --run.dir "$dir" "$@"
    build/bin/thinksteer toy eval --config configs/toy/$style.ini --toy.seed "$seed" --run.dir "$dir" "$@"
  done
  .venv/bin/python - "$seed" "${TOY_THINKER:-thinker}" <<'PY' || status=1
import json, sys
seed, thinker = sys.argv[1], sys.argv[2]
r = {s: json.load(open(f"runs/toy-accept/seed{seed}/{d}/toy/eval.json")) for s, d in (("thinker", thinker), ("base", "base"))}
print(f"problem seed {seed}")
for s, e in r.items():
    print(f"{s:8} n={e['n']} closed={e['closed_rate']:.1%} parseable={e['parseable_rate']:.1%} accuracy={e['accuracy']:.1%} "
          f"largest behaviour difference={e['max_abs_diff_pp']:.1f} pp")
    for label, x in e["labels"].items():
        print(f"         {label:24} generated {x['generated_share']:6.1%}  corpus {x['corpus_share']:6.1%}  ({x['diff_pp']:+.1f} pp)")
ok = all(e["closed_rate"] >= 0.95 and e["parseable_rate"] >= 0.95 and e["max_abs_diff_pp"] <= 5 for e in r.values())
ok = ok and r["thinker"]["accuracy"] >= 0.80 and r["base"]["accuracy"] <= r["thinker"]["accuracy"] - 0.10
print(f"acceptance (problem seed {seed}):", "PASS" if ok else "FAIL")
raise SystemExit(0 if ok else 1)
PY
done
exit $status
