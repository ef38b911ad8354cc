#!/usr/bin/env python3
"""Steered generation benchmark: `thinksteer sweep run` (one steered point: generation with c * v added
at blocks.{l}.hook_resid_post, then annotation and measurements) against HF transformers' batched
greedy `generate` with a forward hook on decoder layer l that adds c * v to its output, on the shipped
toy thinker, the same prompts, batch size, new-token limit and threads, in one run.

    .venv/bin/python bench/bench_steer.py [--prompts 200] [--threads 1] [--rounds 3]

Each round times both once, alternating which goes first (load from other work hits both alike), and
prints the median of the per-round ratios HF seconds / thinksteer seconds (> 1: thinksteer faster) and
generated tokens per second of each. thinksteer's time is the whole `sweep run` process (model load,
generation, lexicon annotation, answer checks, HDF5 output); HF's is generation alone, so the ratio is
conservative. Needs a run directory with vectors: the driver makes one (generate -> annotate ->
vectors on 200 training problems) under build/bench/steer/ the first time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "build" / "bin" / "thinksteer"
MODEL = ROOT / "models" / "toy-thinker"
LAYER, COEF, LABEL = 2, 3.0, "backtracking"


def sh(*args, env=None):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=384)
    ap.add_argument("--batch", type=int, default=50)
    a = ap.parse_args()
    work = ROOT / "build" / "bench" / "steer"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    base = ["--config", ROOT / "configs" / "demo.ini", "--run.threads", a.threads, "--generate.max_new_tokens", a.max_new_tokens,
            "--generate.batch_size", a.batch]
    vec_run = work / "vectors_run"
    for stage in ("generate", "annotate", "vectors"):
        sh(BIN, stage, *base, "--run.dir", vec_run, env=env)
    sweep = [*base, "--data.limit", a.prompts, "--steer.vectors", vec_run / "vectors" / "vectors.h5", "--sweep.vectors", LABEL,
             "--sweep.layers", LAYER, "--sweep.coefficients", COEF, "--sweep.controls", "none", "--sweep.positions", "all"]

    import h5py
    import torch
    from tokenizers import Tokenizer
    from transformers import Qwen2ForCausalLM
    torch.set_num_threads(a.threads)
    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    model = Qwen2ForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32).eval()
    eos = json.loads((MODEL / "config.json").read_text())["eos_token_id"]
    with h5py.File(vec_run / "vectors" / "vectors.h5") as f:
        names = [x.decode() for x in f["names"][:]]
        v = torch.tensor(f["vectors"][names.index(LABEL), list(f["layers"][:]).index(LAYER)])
    model.model.layers[LAYER].register_forward_hook(lambda m, i, o: (o[0] + COEF * v,) + tuple(o[1:]) if isinstance(o, tuple) else o + COEF * v)
    # the prompts the sweep task generates for: builtin:toy-test, chat-formatted (generate writes prompt_text)
    ref = work / "prompts_run"
    sh(BIN, "generate", "--config", ROOT / "configs" / "demo.ini", "--run.threads", a.threads, "--run.dir", ref,
       "--data.prompts", "builtin:toy-test", "--data.limit", a.prompts, "--generate.max_new_tokens", 1, env=env)
    prompts = [json.loads(line)["prompt_text"] for line in (ref / "generate" / "generations.jsonl").read_text().splitlines()]
    ids = [tok.encode(p, add_special_tokens=False).ids for p in prompts]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))

    def run_hf():
        t0, new = time.perf_counter(), 0
        for b in range(0, len(order), a.batch):
            rows = [ids[i] for i in order[b:b + a.batch]]
            n = max(map(len, rows))
            x = torch.tensor([[eos] * (n - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (n - len(r)) + [1] * len(r) for r in rows])
            with torch.inference_mode():
                out = model.generate(x, attention_mask=mask, max_new_tokens=a.max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=eos)
            gen = out[:, n:]
            new += int(sum(int((row != eos).sum()) + 1 for row in gen))
        return time.perf_counter() - t0, new

    def run_ts(k):
        d = work / f"ts_round{k}"
        subprocess.run(["rm", "-rf", str(d)])
        sh(BIN, "sweep", "plan", *sweep, "--run.dir", d, env=env)
        t0 = time.perf_counter()
        sh(BIN, "sweep", "run", *sweep, "--run.dir", d, "--task-id", 1, env=env)
        dt = time.perf_counter() - t0
        task = next((d / "sweep" / "tasks").glob("*.h5"))
        with h5py.File(task) as f:
            new = int(f["prompts/new_tokens"][:].sum())
        return dt, new

    ratios, rows = [], []
    for k in range(a.rounds):
        first_ts = k % 2 == 0
        r1 = run_ts(k) if first_ts else run_hf()
        r2 = run_hf() if first_ts else run_ts(k)
        (ts, hf) = (r1, r2) if first_ts else (r2, r1)
        ratios.append(hf[0] / ts[0])
        rows.append((ts, hf))
        print(f"round {k}: thinksteer {ts[0]:.2f} s ({ts[1] / ts[0]:.0f} new tok/s), HF {hf[0]:.2f} s ({hf[1] / hf[0]:.0f} new tok/s), "
              f"ratio {hf[0] / ts[0]:.2f}")
    print(f"steered generation, {a.prompts} prompts, batch {a.batch}, {a.threads} thread(s), c={COEF} at blocks.{LAYER}.hook_resid_post: "
          f"HF/thinksteer time ratio (median of {a.rounds}) = {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
