#!/usr/bin/env bash
# The reasoning-direction analyses end to end on one node (docs/directions.md; docs/algorithms.md §A.8, §D, §E):
#   RUN/traces   the thinking model's traces of data.prompts (`generate`), their behaviour spans (`annotate`), each span
#                token's activations (`collect`, positions span_tokens) and the difference-of-means vectors (`vectors`)
#   RUN/base     the base model ([intervene] source_model) on the same prompts, annotated the same way (§A.8), and
#                RUN/base-on-traces: the base's activations on the thinker's own tokens (for CKA across the models)
#   RUN/reason, RUN/control   last-token activations of the prompts and of builtin:control (the §E contrast)
#   RUN/directions  contrast (with cosines to RUN/traces' vectors), probes (behaviour labels of the thinker's
#                tokens), logit lens, CKA thinker x base, the orthogonalised checkpoint of the contrast at
#                DIRECTION_LAYER
#   RUN/intervene   the intervention sweep (ablation per layer, patching from the base, directional ablation) on
#                the answer after the thinker's own reasoning (RUN/answers.jsonl: each trace up to \boxed{)
#   RUN/strength, RUN/ablation/{original,orthogonalized}   steering sweeps with the contrast direction: §E's strengths
#                (STRENGTHS, default -8,-2,2,8, at every layer) and the directional ablation as weights
# then `thinksteer-analysis directions RUN` and `compare RUN/traces RUN/base`. Every sweep is an ordinary sweep:
# on a cluster submit the same commands with slurm/submit.sh sweep. Finished stages and tasks are skipped.
# Usage: scripts/directions.sh PRESET.ini [RUN_DIR] [--section.key value ...]
#   RANKS (default 2) ranks; THREADS (default 1) torch threads per rank; DIRECTION_LAYER (default 4);
#   STEER_LIMIT (default 100) problems per steering sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:?usage: scripts/directions.sh PRESET.ini [RUN_DIR] [--section.key value ...]}
shift
key() { awk -F' *= *' -v s="[$1]" -v k="$2" '$0==s{r=1;next} /^\[/{r=0} r&&$1==k{print $2}' "$preset"; }
dir=$(key run dir)
if [[ $# -gt 0 && $1 != --* ]]; then dir=$1; shift; fi
base=$(key intervene source_model)
layer=${DIRECTION_LAYER:-4}
scripts/build.sh thinksteer >/dev/null
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=${THREADS:-1}
run() { mpiexec --oversubscribe -n "${RANKS:-2}" build/bin/thinksteer "$@" --config "$preset" --run.threads "${THREADS:-1}"; }
acts() { echo "$dir/$1/collect/activations.h5"; }
post=$(seq -s, -f 'blocks.%g.hook_resid_post' 0 $(( $(python3 -c "import json;print(json.load(open('$(key model path)/config.json'))['num_hidden_layers'])") - 1 )))
# Traces of both models, annotated by the same annotator (§A.8).
for who in traces base; do
  model=() && [[ $who == base ]] && model=(--model.path "$base")
  run generate --run.dir "$dir/$who" "${model[@]}" "$@"
  run annotate --run.dir "$dir/$who" "${model[@]}" "$@"
done
run collect --run.dir "$dir/traces" --collect.source generations --collect.positions span_tokens "$@"
run vectors --run.dir "$dir/traces" "$@"
run collect --run.dir "$dir/base-on-traces" --model.path "$base" --collect.source generations --collect.input "$dir/traces/generate/generations.jsonl" \
    --collect.spans "$dir/traces/annotate/spans.h5" --collect.positions span_tokens "$@"
# The §E contrast: the prompts' last token against the control questions'.
run collect --run.dir "$dir/reason" --collect.source prompts --collect.positions last "$@"
run collect --run.dir "$dir/control" --collect.source prompts --collect.positions last --data.prompts builtin:control "$@"
run directions contrast --run.dir "$dir" --directions.a "$(acts reason)" --directions.b "$(acts control)" --directions.hooks "$post" \
    --directions.compare "$dir/traces/vectors/vectors.h5" "$@"
run directions probe --run.dir "$dir" --directions.a "$(acts traces)" "$@"
run directions lens --run.dir "$dir" --directions.a "$(acts traces)" "$@"
run directions cka --run.dir "$dir" --directions.a "$(acts traces)" --directions.b "$(acts base-on-traces)" "$@"
direction=(--directions.direction "$dir/directions/contrast.h5" --directions.layer "$layer")
run directions orthogonalize --run.dir "$dir" "${direction[@]}" "$@"
# Interventions on the answer after the thinker's own reasoning.
.venv/bin/python - "$dir" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
out = []
for line in (run / "traces/generate/generations.jsonl").read_text().splitlines():
    g = json.loads(line)
    text = g["text"]
    cut = text.find("\\boxed{")
    end = text.find("}", cut)
    if cut < 0 or end < 0:
        continue
    out.append({"id": g["id"], "question": g["prompt_text"] + text[:cut + 7], "answer": text[cut + 7:end]})  # "}." is one token: the number alone
(run / "answers.jsonl").write_text("".join(json.dumps(o) + "\n" for o in out))
PY
run intervene --run.dir "$dir" --data.prompts "$dir/answers.jsonl" --data.limit 100 --generate.chat_format raw "${direction[@]}" "$@"
# Generation under the direction (steering sweeps: accuracy and behaviour fractions of the annotator): §E's strength axis
# (strength * unit direction added at every layer), and the directional ablation as the orthogonalised checkpoint
# against the original (baselines only).
steer=(--steer.vectors "$dir/directions/contrast.h5" --sweep.datasets "$(key data prompts)" --sweep.controls none --sweep.positions all
       --data.limit "${STEER_LIMIT:-100}")
run steer --run.dir "$dir/strength" "${steer[@]}" --sweep.vectors contrast --sweep.layers all --sweep.coefficients="${STRENGTHS:--8,-2,2,8}" "$@"
run steer --run.dir "$dir/ablation/original" "${steer[@]}" --sweep.vectors "" "$@"
run steer --run.dir "$dir/ablation/orthogonalized" "${steer[@]}" --sweep.vectors "" --model.path "$dir/directions/orthogonalized" "$@"
for s in strength ablation/original ablation/orthogonalized; do echo "## steering sweep $s" && .venv/bin/thinksteer-analysis summary "$dir/$s"; done
.venv/bin/thinksteer-analysis directions "$dir"
.venv/bin/thinksteer-analysis compare "$dir/traces" "$dir/base" --labels thinker,base --out "$dir/figures"
