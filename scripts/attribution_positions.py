#!/usr/bin/env python3
"""Where attribution's score comes from (docs/algorithms.md §A.6, the echoing thinker). For each demo behaviour X, at
every position the reference's per-span attribution scores for X (the token before a span of another label, §A.7), the
effect |f̂_X[l] · ∂m/∂resid_post[l]| with m the paper's metric at that position (-Σ stopgrad(y)·y / V, y = log_softmax
of its logits), for every layer l < L - 1: HF transformers on the checkpoint, fp32, one backward per position. The
positions are split by what precedes them: the end of an X span (where a choice "another X sentence?" is made) or
anything else. The mean over all positions is the per-span attribution pooled over positions rather than per trace.

Usage: scripts/attribution_positions.py RUN_DIR MODEL_DIR [--traces 50] [--behaviour X ...]   (a run of
scripts/steer_demo.sh; about 15 s for 50 traces of the toy thinker). Prints per behaviour and position kind the number
of positions and the mean effect per layer, then the reference: the mean effect of eight seeded random unit directions
and the gradient's mean norm, at every scored position (a vector at chance alignment scores about the random row)."""
import argparse

import numpy as np
import torch
from transformers import AutoModelForCausalLM

from thinksteer_analysis.generations import load_generations
from thinksteer_analysis.spans import load_spans
from thinksteer_analysis.vectors import load_vectors

BEHAVIOURS = ("backtracking", "example-testing", "uncertainty-estimation")


def position_grads(model, ids, p):
    """∂m/∂resid_post[l] at position p for l < L - 1 (hidden_states[l + 1]), m the paper's metric at p."""
    out = model(input_ids=torch.tensor(ids[:p + 1])[None], output_hidden_states=True)
    for h in out.hidden_states:
        h.retain_grad()
    y = torch.log_softmax(out.logits[0, p], -1)
    (-(y.detach() * y).sum() / y.numel()).backward()
    return [h.grad[0, p] for h in out.hidden_states[1:-1]]


def main(run, model_dir, n_traces, behaviours):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    for q in model.parameters():
        q.requires_grad_(False)
    model.model.embed_tokens.register_forward_hook(lambda m, a, o: o.detach().requires_grad_(True))
    g, sp, vectors = load_generations(run), load_spans(run), load_vectors(run)
    ids_of = g.trace_ids()
    n_layer = model.config.num_hidden_layers
    fhat = {}
    for x in behaviours:
        v = np.stack([vectors.vector(x, l) for l in range(n_layer - 1)])
        fhat[x] = torch.tensor(v / np.linalg.norm(v, axis=-1, keepdims=True))
    effects = {x: {"end of X": [], "other": []} for x in behaviours}
    # The reference every vector is read against: eight seeded Gaussian directions, unit norm per layer, and the
    # gradient's norm, at every scored position (a vector at chance alignment scores about their mean).
    rng = torch.Generator().manual_seed(0)
    rhat = torch.randn(8, n_layer - 1, model.config.hidden_size, generator=rng)
    rhat /= rhat.norm(dim=-1, keepdim=True)
    random_effects, norms = [], []
    for i in range(min(n_traces, len(sp.trace_id))):
        ids, rows = ids_of[str(sp.trace_id[i])], list(sp.rows(i))
        for j, r in enumerate(rows):
            p = int(sp.token_begin[r]) - 1
            if p < 0 or p >= len(ids):
                continue
            grads = torch.stack(position_grads(model, ids, p))  # [L - 1, D]
            random_effects.append((rhat * grads).sum(-1).abs().mean(0).tolist())
            norms.append(grads.norm(dim=-1).tolist())
            for x in behaviours:
                k = sp.label_index(x)
                if sp.label[r] == k:
                    continue
                kind = "end of X" if j > 0 and sp.label[rows[j - 1]] == k else "other"
                effects[x][kind].append((fhat[x] * grads).sum(-1).abs().tolist())
    np.set_printoptions(precision=3, suppress=True, linewidth=160)
    print(f"mean |f̂·g| per layer 0..{n_layer - 2}")
    for x in behaviours:
        for kind, e in [*effects[x].items(), ("all", effects[x]["end of X"] + effects[x]["other"])]:
            print(f"{x:23} {kind:9} {len(e):5d} positions  {np.array(e).mean(0) if e else '-'}")
    if norms:
        print(f"{'random directions (8)':33} {len(norms):5d} positions  {np.array(random_effects).mean(0)}")
        print(f"{'gradient norm ‖g‖':33} {len(norms):5d} positions  {np.array(norms).mean(0)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("model")
    ap.add_argument("--traces", type=int, default=50)
    ap.add_argument("--behaviour", action="append", choices=BEHAVIOURS)
    a = ap.parse_args()
    torch.set_num_threads(2)
    main(a.run, a.model, a.traces, a.behaviour or list(BEHAVIOURS))
