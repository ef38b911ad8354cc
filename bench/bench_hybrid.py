#!/usr/bin/env python3
"""Hybrid-model benchmark: thinksteer's KV-cached, batched lockstep (build/bin/bench_hybrid, the
algorithm of src/hybrid/lockstep.h) against two reference loops written with HF transformers, in one
run, fp32 on CPU, the same thread count (at::set_num_threads / torch.set_num_threads) and the same
inputs.

The hybrid (rule `fixed`, no EOS, no </think>: every row writes exactly N tokens), per step and row:
y_T = greedy token of the thinking model T, s = T's residual after decoder layer S at the last position
(HF hidden_states[S+1]), category k = argmax(classifier @ s); y_B = greedy token of the base model B.
y_B == y_T: emit it; else B's step is recomputed with delta = coef * vectors[k] added to the output of
B's decoder layer L (HF: a forward hook on model.model.layers[L]) at the LAST position only, and its
argmax is emitted. The emitted token goes to both models. Earlier positions are never steered.

  thinksteer  bench_hybrid: both models with their own KV cache, one token per step; a steered step
              reruns only B's layers after L and restores the unsteered keys/values of the slot.
  (a) v1      per token, BOTH models on the whole current sequence without a cache (T with
              output_hidden_states; B plain; on disagreement B again on the whole sequence with the
              hook adding delta at the last position). Batch 1, 256 new tokens. Goal: >= 10x.
  (b) kv      each model with its own DynamicCache, one new token per step, B's forward records layer
              L's output at the last position; on disagreeing rows B's step is rerun (cache cropped
              to the previous length) with delta at those rows only, then the unsteered keys/values of
              the slot are put back. Batch 1 and batch 16 (left padding, attention_mask, position_ids),
              512 new tokens. Goal: >= 1.5x.

Pairs: `toy` = models/toy-thinker (T) + models/toy-base (B), L 3, S 1, toy word problems in the
DeepSeek-R1 chat format; `random` = two random ~100M-parameter Qwen2 checkpoints made with
bench_engine.make_model (thinking seed 0, base seed 1, same vocab), L = n_layer/2, S = n_layer/2 - 1,
random prompts of 24-40 tokens. Steering inputs (INPUTS.safetensors): "vectors" [6, d_B], random unit
directions times --vec-scale x the median residual norm of B at layer L over the prompts, and
"classifier" [6, d_T], both seeded; the Python loops use the same tensors.

Timing: generation only (model loading excluded on both sides). thinksteer's figure per round is the
faster of --ts-repeat runs in one process (the first warms up); each Python loop is warmed up once with
a 2-token run before the rounds. Rounds alternate which side goes first; the ratio is the median of the
per-round ratios. All outputs (and thinksteer's outputs across settings, on shared prompts, as
prefixes) must be identical token for token, and the steered counts equal: otherwise the first
mismatch is printed and the exit status is 1.

    .venv/bin/python bench/bench_hybrid.py                 # both pairs, 3 rounds (tens of minutes on 2 cores)
    .venv/bin/python bench/bench_hybrid.py --pairs toy      # the toy pair only
    .venv/bin/python bench/bench_hybrid.py --quick          # smoke run: tiny models and token counts, 1 round
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import FULL_SHAPE, QUICK_SHAPE, apply_omp_wait_policy, make_model, prompt_ids  # noqa: E402

BIN = ROOT / "build" / "bin" / "bench_hybrid"
THINKER, BASE = ROOT / "models" / "toy-thinker", ROOT / "models" / "toy-base"
N_CAT = 6
# --quick's random pair: bench_engine's tiny shape with 4 layers, where the two seeds disagree at a fair share
# of positions (with 2 layers both models mostly repeat the last token, so nothing would be steered).
QUICK_PAIR_SHAPE = dict(QUICK_SHAPE, num_hidden_layers=4)
R1 = "<｜begin▁of▁sentence｜><｜User｜>{}<｜Assistant｜><think>\n"  # chat_format.cpp, deepseek_r1, no system


# --- pairs, prompts and steering inputs -----------------------------------------------------------

def toy_questions(n: int, seed: int) -> list[str]:
    """n toy word problems in the toy corpus's style (seeded)."""
    g = random.Random(seed)
    people = [("Mia", "she"), ("Liam", "he"), ("Omar", "he"), ("Emma", "she"), ("Chen", "he"), ("Priya", "she")]
    items = ["apples", "pens", "notebooks", "cookies", "oranges", "stickers"]
    out = []
    for i in range(n):
        name, he = g.choice(people)
        a, b, c = g.randint(2, 9), g.randint(2, 9), g.randint(2, 6)
        kind = i % 4
        if kind == 0:
            out.append(f"{name} reads {a + 10} pages every day for {c} days. How many pages does {he} read?")
        elif kind == 1:
            out.append(f"{name} buys {a} {g.choice(items)} at {b} dollars each. How many dollars does {he} spend?")
        elif kind == 2:
            out.append(f"A bus travels {a * 10} km and then another {b * 10} km. How many km does it travel in total?")
        else:
            out.append(f"{name} has {a} bags with {c * b} candies each and shares all the candies equally among "
                       f"{c} friends. How many candies does each friend get?")
    return out


def toy_prompts(n: int, seed: int) -> list[list[int]]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(THINKER / "tokenizer.json"))  # the base model's tokenizer is the same file
    return [tok.encode(R1.format(q), add_special_tokens=False).ids for q in toy_questions(n, seed)]


def random_checkpoint(model_dir: Path, shape: dict, seed: int) -> int:
    """A random Qwen2 checkpoint (bench_engine.make_model: config.json + model.safetensors) of this seed."""
    marker = model_dir / "bench_seed.json"
    if not (marker.exists() and json.loads(marker.read_text()).get("seed") == seed):
        (model_dir / "bench_params.json").unlink(missing_ok=True)  # make_model would reuse another seed's weights
    n = make_model(model_dir, shape, seed)
    marker.write_text(json.dumps({"seed": seed}))
    return n


def setup_pair(name: str, a) -> dict:
    """Checkpoints, layers and prompts of a pair (the prompts for the largest setting; settings use prefixes)."""
    n_prompts = max(a.v1_prompts, a.b1_prompts, a.batch)
    if name == "toy":
        cfg = json.loads((BASE / "config.json").read_text())
        return dict(name=name, thinking=THINKER, base=BASE, layer=3, sae_layer=1, n_layer=cfg["num_hidden_layers"],
                    prompts=toy_prompts(n_prompts, a.seed), desc="models/toy-thinker + models/toy-base")
    shape = QUICK_PAIR_SHAPE if a.quick else FULL_SHAPE
    tag = "qwen2_tiny4" if a.quick else "qwen2_100m"
    t0 = time.perf_counter()
    thinking, base = a.work / f"{tag}_seed0", a.work / f"{tag}_seed1"
    n_params = random_checkpoint(thinking, shape, 0)
    random_checkpoint(base, shape, 1)
    print(f"random pair: {n_params:,} parameters each ({thinking.name}, {base.name}; {time.perf_counter() - t0:.0f} s)", flush=True)
    half = shape["num_hidden_layers"] // 2
    g = random.Random(a.seed)
    prompts = [prompt_ids(a.seed, i, g.randint(24, 40), shape["vocab_size"]) for i in range(n_prompts)]
    return dict(name=name, thinking=thinking, base=base, layer=half, sae_layer=half - 1, n_layer=shape["num_hidden_layers"],
                prompts=prompts, desc=f"random Qwen2 x2, {n_params / 1e6:.1f}M parameters each, seeds 0/1")


def write_inputs(path: Path, hf: "HfPair", prompts: list[list[int]], a) -> float:
    """INPUTS.safetensors: seeded vectors (norm = vec_scale x median residual norm of B at layer L) and
    classifier. Returns that median norm."""
    import torch
    from safetensors.torch import save_file

    norms = []
    keep = lambda _m, _i, out: norms.extend((out[0] if isinstance(out, tuple) else out)[0].norm(dim=-1).tolist())
    handle = hf.base.model.layers[hf.layer].register_forward_hook(keep)
    with torch.inference_mode():
        for p in prompts:
            hf.base(input_ids=torch.tensor([p]), logits_to_keep=1)
    handle.remove()
    typical = statistics.median(norms)
    g = torch.Generator().manual_seed(a.seed)
    d_b, d_t = hf.base.config.hidden_size, hf.thinking.config.hidden_size
    vectors = torch.randn(N_CAT, d_b, generator=g)
    vectors = vectors / vectors.norm(dim=1, keepdim=True) * (a.vec_scale * typical)
    classifier = torch.randn(N_CAT, d_t, generator=g)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"vectors": vectors.contiguous(), "classifier": classifier.contiguous()}, str(path))
    return typical


# --- the HF reference loops -----------------------------------------------------------------------

class HfPair:
    """Both models in HF transformers (fp32), the steering hook on B's layer L, and loops (a) and (b)."""

    def __init__(self, pair: dict, coef: float):
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        load = lambda p: AutoModelForCausalLM.from_pretrained(p, dtype=torch.float32).eval()
        self.thinking, self.base = load(pair["thinking"]), load(pair["base"])
        self.layer, self.sae_layer, self.coef = pair["layer"], pair["sae_layer"], coef
        # hidden_states[S + 1] is layer S's raw output only below the last layer (the last one is normed).
        assert self.sae_layer + 1 < self.thinking.config.num_hidden_layers
        self.rows = self.delta = self.last = None
        self.record = False
        self.base.model.layers[self.layer].register_forward_hook(self._hook)

    def set_inputs(self, path: Path) -> None:
        from safetensors.torch import load_file

        t = load_file(str(path))
        self.vectors, self.classifier = t["vectors"], t["classifier"]

    def _hook(self, _module, _args, output):
        x = output[0] if isinstance(output, tuple) else output
        if self.record:
            self.last = x[:, -1].clone()  # B's layer-L output at the last position
        if self.delta is None:
            return None
        y = x.clone()
        y[self.rows, -1] += self.delta
        return (y, *output[1:]) if isinstance(output, tuple) else y

    @contextlib.contextmanager
    def steering(self, rows, delta):
        self.rows, self.delta = rows, delta
        try:
            yield
        finally:
            self.rows = self.delta = None

    def _deltas(self, s):
        """[m, d_T] activations of T -> [m, d_B] shifts coef * vectors[argmax(classifier @ s)]."""
        k = (s @ self.classifier.t()).argmax(-1)
        return self.coef * self.vectors.index_select(0, k)

    def v1(self, prompt: list[int], n: int) -> tuple[list[int], int, int]:
        """(a): per token, both models on the whole sequence, no cache. -> (tokens, steered, changed)."""
        torch = self.torch
        seq, steered, changed = list(prompt), 0, 0
        self.record = False
        with torch.inference_mode():
            for _ in range(n):
                ids = torch.tensor([seq])
                o_t = self.thinking(input_ids=ids, use_cache=False, output_hidden_states=True, logits_to_keep=1)
                y_t = int(o_t.logits[0, -1].argmax())
                y_b = int(self.base(input_ids=ids, use_cache=False, logits_to_keep=1).logits[0, -1].argmax())
                y = y_b
                if y_b != y_t:
                    delta = self._deltas(o_t.hidden_states[self.sae_layer + 1][:, -1])
                    with self.steering(torch.tensor([0]), delta):
                        y = int(self.base(input_ids=ids, use_cache=False, logits_to_keep=1).logits[0, -1].argmax())
                    steered, changed = steered + 1, changed + (y != y_b)
                seq.append(y)
        return seq[len(prompt):], steered, changed

    def _rerun(self, cache, rows, delta, **step):
        """B's last step again with delta at `rows` (cache cropped to its previous length); then the
        unsteered keys/values of the step are put back. -> argmax per row."""
        saved = [(l.keys, l.values) for l in cache.layers]  # the unsteered tensors (crop only slices them)
        cache.crop(-step["input_ids"].shape[1])
        with self.steering(rows, delta):
            logits = self.base(past_key_values=cache, use_cache=True, logits_to_keep=1, **step).logits[:, -1]
        for l, (k, v) in zip(cache.layers, saved):
            l.keys, l.values = k, v
        return logits.argmax(-1)

    def kv(self, prompts: list[list[int]], n: int) -> tuple[list[list[int]], int, int]:
        """(b): both models KV-cached, one batch of left-padded prompts. -> (tokens per row, steered, changed)."""
        torch = self.torch
        from transformers import DynamicCache

        B, P = len(prompts), max(len(p) for p in prompts)
        ids = torch.zeros(B, P, dtype=torch.long)
        mask = torch.zeros(B, P, dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, P - len(p):], mask[i, P - len(p):] = torch.tensor(p), 1
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        cache_t, cache_b = DynamicCache(config=self.thinking.config), DynamicCache(config=self.base.config)
        out = torch.empty(B, n, dtype=torch.long)
        steered, changed = 0, 0
        self.record = True
        with torch.inference_mode():
            for t in range(n):
                step = dict(input_ids=ids, attention_mask=mask, position_ids=pos)
                o_t = self.thinking(past_key_values=cache_t, use_cache=True, output_hidden_states=True, logits_to_keep=1, **step)
                y_t = o_t.logits[:, -1].argmax(-1)
                y = self.base(past_key_values=cache_b, use_cache=True, logits_to_keep=1, **step).logits[:, -1].argmax(-1)
                rows = (y != y_t).nonzero().flatten()
                if rows.numel():
                    delta = self._deltas(o_t.hidden_states[self.sae_layer + 1][:, -1].index_select(0, rows))
                    y_s = self._rerun(cache_b, rows, delta, **step).index_select(0, rows)
                    steered, changed = steered + rows.numel(), changed + int((y_s != y.index_select(0, rows)).sum())
                    y = y.clone()
                    y[rows] = y_s
                out[:, t] = y
                ids, pos = y.unsqueeze(1), pos[:, -1:] + 1
                mask = torch.cat([mask, torch.ones(B, 1, dtype=torch.long)], 1)
        self.record = False
        return out.tolist(), steered, changed


# --- one measurement of each side -----------------------------------------------------------------

def run_thinksteer(pair: dict, inputs: Path, prompts_json: Path, s: dict, a) -> dict:
    cmd = [str(a.binary), str(pair["thinking"]), str(pair["base"]), str(inputs), str(prompts_json), "--batch", str(s["batch"]),
           "--max-new", str(s["new"]), "--layer", str(pair["layer"]), "--sae-layer", str(pair["sae_layer"]),
           "--coef", str(a.coef), "--threads", str(a.threads), "--repeat", str(a.ts_repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench_hybrid failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-4000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"s": r["seconds"], "tokens": r["tokens"], "tok_s": r["tokens_per_s"], "steered": r["steered"], "outputs": r["outputs"]}


def run_reference(hf: HfPair, prompts: list[list[int]], s: dict, n: int | None = None) -> dict:
    n = s["new"] if n is None else n
    outputs, steered, changed = [], 0, 0
    t0 = time.perf_counter()
    for b in range(0, len(prompts), s["batch"]):
        chunk = prompts[b:b + s["batch"]]
        if s["ref"] == "v1":
            assert len(chunk) == 1
            o, st, ch = hf.v1(chunk[0], n)
            o = [o]
        else:
            o, st, ch = hf.kv(chunk, n)
        outputs, steered, changed = outputs + o, steered + st, changed + ch
    sec = time.perf_counter() - t0
    tokens = sum(len(o) for o in outputs)
    return {"s": sec, "tokens": tokens, "tok_s": tokens / sec, "steered": steered, "changed": changed, "outputs": outputs}


def first_mismatch(rows_a: list[list[int]], rows_b: list[list[int]], prefix: bool = False):
    """(row, position, a, b) of the first difference; prefix: compare the common length only."""
    if len(rows_a) != len(rows_b) and not prefix:
        return (min(len(rows_a), len(rows_b)), 0, "<row>", "<none>")
    for r, (x, y) in enumerate(zip(rows_a, rows_b)):
        for i, (u, v) in enumerate(zip(x, y)):
            if u != v:
                return (r, i, u, v)
        if len(x) != len(y) and not prefix:
            return (r, min(len(x), len(y)), "<end>", "<end>")
    return None


def check(pair: str, setting: str, ts: dict, ref: dict, name: str) -> None:
    """Exits 1 on the first difference between thinksteer's and a reference's outputs or steered counts."""
    m = first_mismatch(ts["outputs"], ref["outputs"])
    if m:
        r, i = m[0], m[1]
        near = lambda rows: rows[r][max(0, i - 8):i + 4] if r < len(rows) else []
        print(f"MISMATCH [{pair}, {setting}]: prompt {r}, new token {i}: thinksteer {m[2]} vs {name} {m[3]}")
        for who, rows in (("thinksteer", ts["outputs"]), (name, ref["outputs"])):
            print(f"  {who:>10}, new tokens {max(0, i - 8)}..: {near(rows)}")
        sys.exit(1)
    if ts["steered"] != ref["steered"]:
        print(f"MISMATCH [{pair}, {setting}]: identical tokens but steered steps differ: thinksteer {ts['steered']}, "
              f"{name} {ref['steered']}")
        sys.exit(1)


# --- the rounds of one pair -----------------------------------------------------------------------

def settings(a) -> list[dict]:
    return [dict(name=f"batch 1, {a.new_v1} new", ref="v1", batch=1, new=a.new_v1, n_prompts=a.v1_prompts, goal=10.0),
            dict(name=f"batch 1, {a.new_kv} new", ref="kv", batch=1, new=a.new_kv, n_prompts=a.b1_prompts, goal=1.5),
            dict(name=f"batch {a.batch}, {a.new_kv} new", ref="kv", batch=a.batch, new=a.new_kv, n_prompts=a.batch, goal=1.5)]


def bench_pair(pair: dict, a) -> list[dict]:
    import torch

    torch.set_num_threads(a.threads)
    work = a.work / pair["name"]
    hf = HfPair(pair, a.coef)
    inputs = work / "inputs.safetensors"
    typical = write_inputs(inputs, hf, pair["prompts"], a)
    hf.set_inputs(inputs)
    print(f"[{pair['name']}] {pair['desc']}; L {pair['layer']}, S {pair['sae_layer']} of {pair['n_layer']} layers; "
          f"{len(pair['prompts'])} prompts of {min(map(len, pair['prompts']))}-{max(map(len, pair['prompts']))} tokens; "
          f"median |resid| at L {typical:.2f}, |vector| {a.vec_scale * typical:.2f}, coef {a.coef}", flush=True)
    out = []
    for s in settings(a):
        prompts = pair["prompts"][:s["n_prompts"]]
        prompts_json = work / f"prompts-{s['n_prompts']}.json"
        prompts_json.write_text(json.dumps(prompts))
        run_reference(hf, prompts[:s["batch"]], s, n=2)  # warm-up
        rounds = []
        for r in range(a.rounds):
            res = {}
            for side in (("thinksteer", "ref") if r % 2 == 0 else ("ref", "thinksteer")):
                res[side] = run_thinksteer(pair, inputs, prompts_json, s, a) if side == "thinksteer" else run_reference(hf, prompts, s)
            check(pair["name"], s["name"], res["thinksteer"], res["ref"], s["ref"])
            rounds.append(res)
            print(f"[{pair['name']}] {s['name']} ({s['n_prompts']} prompt(s)), round {r + 1}/{a.rounds}: thinksteer "
                  f"{res['thinksteer']['tok_s']:.1f} tok/s, {s['ref']} {res['ref']['tok_s']:.1f} tok/s, "
                  f"ratio {res['thinksteer']['tok_s'] / res['ref']['tok_s']:.2f}x; outputs identical", flush=True)
        out.append({"setting": s, "rounds": rounds})
    cross_check(pair["name"], out)
    return out


def cross_check(pair: str, results: list[dict]) -> None:
    """thinksteer's outputs for a prompt agree across settings (the shorter run is a prefix): this ties
    (a)'s 256 tokens to (b)'s 512 and batch 1 to batch 16."""
    for x, y in itertools.combinations(results, 2):
        m = first_mismatch(x["rounds"][0]["thinksteer"]["outputs"], y["rounds"][0]["thinksteer"]["outputs"], prefix=True)
        if m:
            print(f"MISMATCH [{pair}]: thinksteer's outputs differ between '{x['setting']['name']}' and "
                  f"'{y['setting']['name']}': prompt {m[0]}, new token {m[1]}: {m[2]} vs {m[3]}")
            sys.exit(1)


# --- report ---------------------------------------------------------------------------------------

def report(all_results: dict, a, load: tuple) -> None:
    med = statistics.median
    head = (f"{'pair':<7} | {'setting':<20} | {'ref':<3} | {'thinksteer':>10} | {'reference':>9} | {'ratio':>7} | "
            f"{'best/best':>9} | {'goal':>5} | {'met':<7} | {'steered':>7} | {'changed':>7}")
    print()
    print(f"tokens/s, median of {a.rounds} round(s); threads {a.threads}; OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}; load average before/after {load[0]:.2f} / {load[1]:.2f}")
    print(head)
    print("-" * len(head))
    for pair, results in all_results.items():
        for r in results:
            s, rounds = r["setting"], r["rounds"]
            ts = [x["thinksteer"]["tok_s"] for x in rounds]
            ref = [x["ref"]["tok_s"] for x in rounds]
            ratio = med([x / y for x, y in zip(ts, ref)])
            last = rounds[-1]
            share = last["thinksteer"]["steered"] / last["thinksteer"]["tokens"]
            changed = last["ref"]["changed"] / max(1, last["ref"]["steered"])
            met = "MET" if ratio >= s["goal"] else "NOT MET"
            print(f"{pair:<7} | {s['name']:<20} | {s['ref']:<3} | {med(ts):>10,.1f} | {med(ref):>9,.1f} | {ratio:6.2f}x | "
                  f"{max(ts) / max(ref):8.2f}x | {s['goal']:4.1f}x | {met:<7} | {share:6.1%} | {changed:6.1%}")
    print("steered: share of emitted tokens at a disagreement (steered step); changed: share of steered steps where the "
          "steering changed B's token. ratio: median of per-round ratios; best/best: best round of each side.")
    print("outputs: identical across thinksteer, v1 and kv (every prompt, every round), steered counts equal")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="toy,random", help="comma-separated: toy, random")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=None, help="rounds alternating which side goes first, default 3 (quick: 1)")
    ap.add_argument("--new-v1", type=int, default=None, help="new tokens in the v1 setting, default 256 (quick: 12)")
    ap.add_argument("--new-kv", type=int, default=None, help="new tokens in the kv settings, default 512 (quick: 16)")
    ap.add_argument("--v1-prompts", type=int, default=1, help="prompts of the v1 setting (batch 1)")
    ap.add_argument("--b1-prompts", type=int, default=2, help="prompts of the batch-1 kv setting")
    ap.add_argument("--batch", type=int, default=16, help="batch (and prompts) of the batched kv setting")
    ap.add_argument("--coef", type=float, default=1.0)
    ap.add_argument("--vec-scale", type=float, default=3.0, help="|vector| = this x median residual norm of B at layer L")
    ap.add_argument("--ts-repeat", type=int, default=2, help="bench_hybrid --repeat: runs per round, the fastest counts")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny random pair, 12/16 new tokens, 1 round")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench" / "hybrid")
    ap.add_argument("--binary", type=Path, default=BIN)
    ap.add_argument("--omp-wait-policy", choices=["auto", "inherit", "passive", "active"], default="auto",
                    help="OMP_WAIT_POLICY for both sides (as bench_engine.py; README)")
    a = ap.parse_args()
    apply_omp_wait_policy(a.omp_wait_policy)
    for k, (quick, full) in dict(rounds=(1, 3), new_v1=(12, 256), new_kv=(16, 512)).items():
        if getattr(a, k) is None:
            setattr(a, k, quick if a.quick else full)
    a.work = a.work.resolve()
    if not a.binary.exists():
        sys.exit(f"{a.binary} not found: build it with `ninja -C build bench_hybrid`")
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(a.threads)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    results = {}
    for name in [p for p in a.pairs.split(",") if p]:
        if name not in ("toy", "random"):
            sys.exit(f"unknown pair {name}")
        results[name] = bench_pair(setup_pair(name, a), a)
    print(f"done in {time.perf_counter() - t0:.0f} s")
    report(results, a, (load_before, os.getloadavg()[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
