#!/usr/bin/env python3
"""How far a steering push moves the thinker's own choices (docs/algorithms.md §A.6 "Soft gates, cues and random
pushes"). For each demo behaviour X, at every position where the model's greedy trace starts an X span (the choice
"X now"), the change in log P(X starts) = log of the probability mass on the first tokens X spans start with in this run,
when c * v_X[l] (the run's vector at attribute's first pick l) or a same-norm Gaussian direction (five, seeds 1000-1004)
is added to resid_post[l] at every position: HF transformers on the checkpoint, fp32, forward hooks. A push that moves
X's choices moves this number; the acceptance rule (docs/algorithms.md "Steering acceptance") needs the vector to move
it much further than the random directions do.

Usage: scripts/decision_shift.py RUN_DIR MODEL_DIR [--traces N] [--layer L ...] [--behaviour X ...] [--split]
(a run of scripts/steer_demo.sh; about 30 s per layer). --layer: push at these layers instead of attribute's first pick
(repeatable). --split: one row for the choices that start a run of X, one for the echoes (the span before is X too).
Prints per behaviour and layer: the number of choices, the mean P(X starts) there, and per c in +-1.5, +-3 the mean
change of its log for the vector and the five random directions' range."""
import argparse
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM

from thinksteer_analysis.acceptance import first_picks
from thinksteer_analysis.generations import load_generations
from thinksteer_analysis.spans import load_spans
from thinksteer_analysis.vectors import load_vectors

BEHAVIOURS = ("backtracking", "example-testing", "uncertainty-estimation")


def log_mass(model, rows, layer, push):
    """rows: (ids, position, target ids); log of the probability mass on the targets at the position."""
    x = torch.zeros(len(rows), max(len(r[0]) for r in rows), dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, :len(r[0])] = torch.tensor(r[0])  # right padding: causal attention never looks ahead
    hook = None
    if push is not None:
        hook = model.model.layers[layer].register_forward_hook(
            lambda m, inp, out: (out[0] + push,) + tuple(out[1:]) if isinstance(out, tuple) else out + push)
    with torch.no_grad():
        lp = torch.log_softmax(model(x).logits.float(), -1)
    if hook:
        hook.remove()
    return torch.stack([torch.logsumexp(lp[i, r[1], r[2]], 0) for i, r in enumerate(rows)])


def main(run, model_dir, n_traces=100, layers=None, behaviours=BEHAVIOURS, split=False):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids_of = load_generations(run).trace_ids()
    sp = load_spans(run)
    if sp.token_begin is None:
        sys.exit(f"{run}: spans.h5 has no token ranges (annotate with model.path)")
    vectors = load_vectors(run)
    picks = first_picks(run) or {}
    for behaviour in behaviours:
        if behaviour not in picks:
            print(f"{behaviour}: attribute picked no layer")
            continue
        k = sp.label_index(behaviour)
        starts = []  # (the trace's ids, the token where an X span begins, whether the span before is X too)
        for i in range(min(n_traces, len(sp.trace_id))):
            ids, spans = ids_of[str(sp.trace_id[i])], list(sp.rows(i))
            starts += [(ids, int(sp.token_begin[r]), j > 0 and sp.label[spans[j - 1]] == k) for j, r in enumerate(spans)
                       if sp.label[r] == k and 0 < sp.token_begin[r] < len(ids)]
        if not starts:
            print(f"{behaviour}: no spans")
            continue
        firsts = torch.tensor(sorted({ids[b] for ids, b, _ in starts}))
        groups = {"": starts}
        if split:  # the choice to start a run of X, and to go on with one (an echo)
            groups = {" first": [s for s in starts if not s[2]], " echo": [s for s in starts if s[2]]}
        for layer in layers or [int(picks[behaviour])]:
            for name, group in groups.items():
                if group:
                    rows = [(ids[:b + 1], b - 1, firsts) for ids, b, _ in group]
                    print(f"{behaviour + name:23} layer {layer}  {len(rows)} choices  " + shifts(model, rows, layer, vectors.vector(behaviour, layer)))


def shifts(model, rows, layer, vector):
    """P(X starts) at the choices, and per c the mean change of its log under the vector and five random directions."""
    f = torch.from_numpy(np.array(vector))
    base = log_mass(model, rows, layer, None)
    cells = []
    for c in (1.5, -1.5, 3.0, -3.0):
        vec = float((log_mass(model, rows, layer, c * f) - base).mean())
        rnd = []
        for j in range(5):
            r = torch.randn(f.shape[0], generator=torch.Generator().manual_seed(1000 + j))
            rnd.append(float((log_mass(model, rows, layer, c * r * (f.norm() / r.norm())) - base).mean()))
        cells.append(f"c {c:+g}: vector {vec:+.2f}, random {min(rnd):+.2f}..{max(rnd):+.2f}")
    return f"P(X starts) {float(base.exp().mean()):.2f}  | " + " | ".join(cells)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("model")
    ap.add_argument("--traces", type=int, default=100, help="traces of the run to take the choices from")
    ap.add_argument("--layer", type=int, action="append", help="push at this layer (repeatable; default: attribute's first pick)")
    ap.add_argument("--behaviour", action="append", choices=BEHAVIOURS, help="only this behaviour (repeatable)")
    ap.add_argument("--split", action="store_true", help="separate rows for the first sentence of a run of X and the echoes")
    a = ap.parse_args()
    main(a.run, a.model, a.traces, a.layer, a.behaviour or BEHAVIOURS, a.split)
