#!/usr/bin/env bash
# Acceptance of the shipped toy models: greedy generation with thinksteer on 200 held-out
# problems (builtin:toy-test) for models/toy-thinker and models/toy-base, then `toy eval`, which
# writes runs/toy-<style>/toy/eval.json: closed-</think> and parseable rates, accuracy, and each
# behaviour's sentence share in the generated traces against the training corpus.
# Usage: scripts/toy_acceptance.sh [--section.key value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh thinksteer
for style in thinker base; do
  build/bin/thinksteer generate --config configs/toy/$style.ini "$@"
  build/bin/thinksteer toy eval --config configs/toy/$style.ini "$@"
done
.venv/bin/python - <<'PY'
import json
r = {s: json.load(open(f"runs/toy-{s}/toy/eval.json")) for s in ("thinker", "base")}
for s, e in r.items():
    print(f"{s:8} n={e['n']} closed={e['closed_rate']:.1%} parseable={e['parseable_rate']:.1%} accuracy={e['accuracy']:.1%} "
          f"largest behaviour difference={e['max_abs_diff_pp']:.1f} pp")
    for label, x in e["labels"].items():
        print(f"         {label:24} generated {x['generated_share']:6.1%}  corpus {x['corpus_share']:6.1%}  ({x['diff_pp']:+.1f} pp)")
ok = all(e["closed_rate"] >= 0.95 and e["parseable_rate"] >= 0.95 and e["max_abs_diff_pp"] <= 5 for e in r.values())
ok = ok and r["thinker"]["accuracy"] >= 0.80 and r["base"]["accuracy"] <= r["thinker"]["accuracy"] - 0.10
print("acceptance:", "PASS" if ok else "FAIL")
raise SystemExit(0 if ok else 1)
PY
