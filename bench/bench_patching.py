#!/usr/bin/env python3
"""Activation patching benchmark: `thinksteer intervene` (mode patch, every layer) against the same loop written
with HF transformers forward hooks, same model, same prompts, same threads, in one run.

    .venv/bin/python bench/bench_patching.py                 # 12 layers x 32 prompts: a few minutes on 2 cores
    .venv/bin/python bench/bench_patching.py --quick         # 2-layer tiny model, 8 prompts (< 1 minute)
    .venv/bin/python bench/bench_patching.py --threads 1 --json out.json

Model: the ~98M random Qwen2 of bench_engine.py (12 layers, d 768, fp32; bench_engine.make_model caches it in
build/bench/qwen2_100m/), symlinked into build/bench/patching/model_100m/ next to the toy tokenizer (thinksteer
fingerprints a checkpoint by config + tokenizer). --quick uses bench_engine's 2-layer 0.5M-parameter model.

Prompts (build/bench/patching/prompts_N.jsonl, deterministic): id, question ("Alice has 7 apples and buys 5
more. How many apples does she have?"), source (the same sentence with other numbers) and answer (" 12", the
question's sum). For every layer l and every prompt, both sides
  * score the clean run: ids = encode(question) ++ encode(answer), logp = sum of log-softmax of the answer
    tokens (teacher forced);
  * run the source (encode(source) ++ encode(answer)), recording blocks.{l}.hook_resid_post (= the output of HF
    decoder layer l), and score it;
  * rerun the target with the activation at the question's last token replaced by the source's activation at
    the source's last prompt token, and score it.
Batches of --batch prompts in file order, right padding (HF: attention_mask set), tokenizer encode without
special tokens, chat format raw.

  thinksteer  the whole `thinksteer intervene --intervene.modes patch --intervene.positions last
              --intervene.site hook_resid_post --intervene.layers 0,...,L-1` process (plan, one task per layer,
              reduce; model loaded once), into a fresh run directory; and the same with one layer. The
              per-layer cost is the slope (all - one) / (L - 1): process start, model load and the reduce cancel.
  HF          in this process, the model loaded once (not timed), torch.set_num_threads(threads),
              torch.inference_mode(): per layer and batch a clean forward, a source forward with a forward hook
              on model.model.layers[l] that keeps its output, and a target forward with a forward hook there
              that writes the kept vectors at each row's last prompt position. Logits: model(ids).logits at
              every position (--hf-logits all, what model(ids) returns) or the lm_head on the answer rows only
              (--hf-logits answer, as thinksteer does). Per layer: total / L.

Printed: seconds of each, the ratios HF / thinksteer (> 1: thinksteer faster) for the whole process and per
layer, and the check: thinksteer's per-prompt logp, logp_clean and logp_source of every layer against HF's,
max |diff|, exit 1 above --tol (1e-3). One run, no rounds: the timings are single measurements.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_engine  # noqa: E402  (make_model, shapes, OMP wait policy; imports no torch at load time)

BIN = ROOT / "build" / "bin" / "thinksteer"
WORK = ROOT / "build" / "bench" / "patching"
SITE = "hook_resid_post"

NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Oscar"]
OBJECTS = ["apples", "pears", "books", "coins", "stamps", "marbles", "pencils", "shells"]


sh, timed = bench_engine.sh, bench_engine.timed  # a process, checked; timed (wall, CPU)


def make_prompts(n: int, seed: int) -> Path:
    """N word problems; the source is the same sentence with other numbers (splitmix64 of (seed, i, k))."""
    path = WORK / f"prompts_{n}_seed{seed}.jsonl"

    def draw(i: int, k: int, lo: int, hi: int) -> int:
        return lo + bench_engine._splitmix64((seed * 1000003 + i * 101 + k) & bench_engine.MASK64) % (hi - lo + 1)

    def sentence(name: str, obj: str, a: int, b: int) -> str:
        pron = "she" if name in ("Alice", "Carol", "Erin", "Grace", "Heidi", "Judy", "Mallory") else "he"
        return f"{name} has {a} {obj} and buys {b} more. How many {obj} does {pron} have?"

    rows = []
    for i in range(n):
        name, obj = NAMES[i % len(NAMES)], OBJECTS[(i // len(NAMES) + i) % len(OBJECTS)]
        a, b = draw(i, 0, 2, 40), draw(i, 1, 2, 40)
        sa, sb = draw(i, 2, 2, 400), draw(i, 3, 2, 40)  # other numbers, sometimes of another token length
        rows.append(dict(id=f"p{i:03d}", question=sentence(name, obj, a, b), source=sentence(name, obj, sa, sb), answer=f" {a + b}"))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def model_dir(a) -> tuple[Path, int, dict]:
    """bench_engine's random Qwen2 (+ the toy tokenizer) under build/bench/patching/model_{tiny,100m}."""
    model, n_params, shape = bench_engine.model_with_toy_tokenizer(WORK, a.quick)
    return model, n_params, shape


# ---------------------------------------------------------------------------------------------
# thinksteer

def run_thinksteer(a, env, model: Path, prompts: Path, layers: list[int], name: str) -> dict:
    import h5py

    run = WORK / name
    shutil.rmtree(run, ignore_errors=True)
    s, cpu = timed(BIN, "intervene", "--model.path", model, "--run.dir", run, "--data.prompts", prompts,
                   "--data.prompt_field", "question", "--data.answer_field", "answer", "--generate.chat_format", "raw",
                   "--intervene.modes", "patch", "--intervene.source_field", "source", "--intervene.positions", "last",
                   "--intervene.site", SITE, "--intervene.layers", ",".join(map(str, layers)),
                   "--intervene.batch_size", a.batch, "--run.threads", a.threads, "--log.level", "warn", env=env)
    by_layer = {}
    for f in sorted((run / "intervene" / "tasks").glob("*.h5")):
        with h5py.File(f) as h:
            layer = int(h.attrs["layer"])
            ids = [x.decode() if isinstance(x, bytes) else x for x in h["prompt_id"][:]]
            by_layer[layer] = {k: dict(zip(ids, map(float, h[k][:]))) for k in ("logp", "logp_clean", "logp_source")}
    if sorted(by_layer) != sorted(layers):
        sys.exit(f"{run}: task files for layers {sorted(by_layer)}, expected {layers}")
    return dict(s=s, cpu=cpu, run=str(run), by_layer=by_layer)


# ---------------------------------------------------------------------------------------------
# HF transformers

class HfPatching:
    def __init__(self, model: Path, a):
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModelForCausalLM

        self.torch, self.a = torch, a
        torch.set_num_threads(a.threads)
        t0 = time.perf_counter()
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
        self.load_s = time.perf_counter() - t0
        self.tok = Tokenizer.from_file(str(model / "tokenizer.json"))
        self.n_layer = self.model.config.num_hidden_layers

    def items(self, prompts: Path) -> list[dict]:
        """thinksteer's token streams: encode(prompt) ++ encode(answer), no special tokens (chat format raw)."""
        out = []
        for line in prompts.read_text().splitlines():
            r = json.loads(line)
            enc = lambda s: self.tok.encode(s, add_special_tokens=False).ids  # noqa: E731
            ans = enc(r["answer"])
            q, s = enc(r["question"]), enc(r["source"])
            out.append(dict(id=r["id"], ids=q + ans, n_prefix=len(q), src=s + ans, n_src=len(s), n_answer=len(ans)))
        return out

    def _batch(self, part: list[dict], source: bool):
        torch = self.torch
        key, nkey = ("src", "n_src") if source else ("ids", "n_prefix")
        T = max(len(it[key]) for it in part)
        ids = torch.zeros(len(part), T, dtype=torch.long)  # right padding (pad id 0: masked out)
        mask = torch.zeros(len(part), T, dtype=torch.long)
        rows, pos, tgt, owner = [], [], [], []
        for i, it in enumerate(part):
            seq = it[key]
            ids[i, :len(seq)] = torch.tensor(seq)
            mask[i, :len(seq)] = 1
            for t in range(it[nkey] - 1, len(seq) - 1):  # the positions that predict the answer tokens
                rows.append(i), pos.append(t), tgt.append(seq[t + 1]), owner.append(i)
        last = torch.tensor([it[nkey] - 1 for it in part])
        return dict(ids=ids, mask=mask, rows=torch.tensor(rows), pos=torch.tensor(pos), tgt=torch.tensor(tgt),
                    owner=torch.tensor(owner), last=last, n=len(part))

    def _logp(self, b) -> "list[float]":
        torch, model = self.torch, self.model
        if self.a.hf_logits == "all":
            logits = model(input_ids=b["ids"], attention_mask=b["mask"], use_cache=False).logits  # [B, T, V]
            sel = logits[b["rows"], b["pos"]]
        else:
            h = model.model(input_ids=b["ids"], attention_mask=b["mask"], use_cache=False).last_hidden_state
            sel = model.lm_head(h[b["rows"], b["pos"]])
        lp = torch.log_softmax(sel.double(), -1).gather(1, b["tgt"].unsqueeze(1)).squeeze(1)
        return torch.zeros(b["n"], dtype=torch.double).index_add_(0, b["owner"], lp).tolist()

    def run(self, items: list[dict], layers: list[int]) -> dict:
        torch, model, B = self.torch, self.model, self.a.batch
        batches = [(items[i:i + B], self._batch(items[i:i + B], False), self._batch(items[i:i + B], True))
                   for i in range(0, len(items), B)]
        by_layer = {}
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            for l in layers:
                layer = model.model.layers[l]
                res = {"logp": {}, "logp_clean": {}, "logp_source": {}}
                for part, tb, sb in batches:
                    clean = self._logp(tb)
                    kept = {}

                    def keep(_m, _i, out, kept=kept, sb=sb):
                        h = out[0] if isinstance(out, tuple) else out
                        kept["v"] = h[torch.arange(sb["n"]), sb["last"]].clone()  # [B, D] at the source's last prompt token

                    handle = layer.register_forward_hook(keep)
                    try:
                        source = self._logp(sb)
                    finally:
                        handle.remove()

                    def patch(_m, _i, out, kept=kept, tb=tb):
                        h = out[0] if isinstance(out, tuple) else out
                        h[torch.arange(tb["n"]), tb["last"]] = kept["v"]
                        return out

                    handle = layer.register_forward_hook(patch)
                    try:
                        hit = self._logp(tb)
                    finally:
                        handle.remove()
                    for it, x, y, z in zip(part, hit, clean, source):
                        res["logp"][it["id"]], res["logp_clean"][it["id"]], res["logp_source"][it["id"]] = x, y, z
                by_layer[l] = res
        return dict(s=time.perf_counter() - t0, cpu=time.process_time() - c0, by_layer=by_layer)

    def warm_up(self, items: list[dict]) -> None:
        with self.torch.inference_mode():
            self._logp(self._batch(items[:self.a.batch], False))


# ---------------------------------------------------------------------------------------------

def compare(ts: dict, hf: dict) -> dict:
    out = {}
    for k in ("logp", "logp_clean", "logp_source"):
        worst = (0.0, None, None, None, None)
        for l, res in hf.items():
            for pid, v in res[k].items():
                w = ts[l][k][pid]
                d = abs(w - v)
                if d > worst[0] or worst[1] is None:
                    worst = (d, l, pid, w, v)
        out[k] = dict(max_abs_diff=worst[0], layer=worst[1], prompt=worst[2], thinksteer=worst[3], hf=worst[4])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=None, help="default 32 (quick: 8)")
    ap.add_argument("--batch", type=int, default=8, help="prompts per forward batch, both sides (intervene.batch_size)")
    ap.add_argument("--hf-logits", choices=["all", "answer"], default="all",
                    help="HF: model(ids).logits at every position (all), or lm_head on the answer rows only (answer)")
    ap.add_argument("--tol", type=float, default=1e-3, help="max |logp thinksteer - logp HF| (nats)")
    ap.add_argument("--seed", type=int, default=0, help="of the prompts' numbers")
    ap.add_argument("--quick", action="store_true", help="smoke run: the 2-layer 0.5M-parameter model, 8 prompts (< 1 minute)")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw timings and per-prompt scores here")
    ap.add_argument("--omp-wait-policy", choices=["auto", "inherit", "passive", "active"], default="auto",
                    help="as in bench_engine.py (auto: PASSIVE when other work is running)")
    a = ap.parse_args()
    if a.prompts is None:
        a.prompts = 8 if a.quick else 32
    if not BIN.exists():
        sys.exit(f"{BIN} not found: build thinksteer first")
    bench_engine.apply_omp_wait_policy(a.omp_wait_policy)  # before torch is imported
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    WORK.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    t_start = time.perf_counter()

    model, n_params, shape = model_dir(a)
    L = shape["num_hidden_layers"]
    layers = list(range(L))
    prompts = make_prompts(a.prompts, a.seed)
    hf = HfPatching(model, a)
    items = hf.items(prompts)
    n_tok = sorted(len(it["ids"]) for it in items)
    n_src = sorted(len(it["src"]) for it in items)
    print(f"model {model} ({n_params:,} parameters, {L} layers); {len(items)} prompts ({prompts.name}): "
          f"{n_tok[0]}-{n_tok[-1]} tokens, sources {n_src[0]}-{n_src[-1]}, answers "
          f"{min(it['n_answer'] for it in items)}-{max(it['n_answer'] for it in items)} tokens; batch {a.batch}; "
          f"{a.threads} thread(s); HF load {hf.load_s:.2f} s (not timed)", flush=True)

    hf.warm_up(items)
    ts_all = run_thinksteer(a, env, model, prompts, layers, "ts_all")
    print(f"thinksteer intervene, {L} layers: {ts_all['s']:.2f} s", flush=True)
    ts_one = run_thinksteer(a, env, model, prompts, [0], "ts_one")
    print(f"thinksteer intervene, 1 layer: {ts_one['s']:.2f} s", flush=True)
    h = hf.run(items, layers)
    print(f"HF hook loop, {L} layers: {h['s']:.2f} s", flush=True)
    load_after = os.getloadavg()[0]

    hf_layer, hf_layer_cpu = h["s"] / L, h["cpu"] / L
    ts_layer = (ts_all["s"] - ts_one["s"]) / (L - 1)  # <= 0 when start-up noise exceeds the layers' work (--quick)
    ts_layer_cpu = (ts_all["cpu"] - ts_one["cpu"]) / (L - 1)
    ratio_layer = hf_layer / ts_layer if ts_layer > 0 else None
    chk = compare(ts_all["by_layer"], h["by_layer"])
    # the one-layer run must give the all-layer run's layer 0
    one_vs_all = max(abs(ts_one["by_layer"][0][k][p] - ts_all["by_layer"][0][k][p])
                     for k in ("logp", "logp_clean", "logp_source") for p in ts_one["by_layer"][0][k])
    ok = all(c["max_abs_diff"] <= a.tol for c in chk.values())

    n = len(items)
    fwd = 3 * L * -(-n // a.batch)
    print()
    print(f"Activation patching at blocks.{{l}}.{SITE}, last prompt token, every layer 0-{L - 1}: random Qwen2 "
          f"{n_params / 1e6:.1f}M parameters, fp32, CPU; {n} prompts, batch {a.batch} ({fwd} forwards per side), "
          f"{a.threads} thread(s), one run; HF logits: {a.hf_logits}")
    head = f"{'':<52} | {'seconds':>8} | {'CPU s':>7} | {'busy':>5} | {'HF s / thinksteer s':>19} | {'CPU-time ratio':>14}"
    print(head)
    print("-" * len(head))
    ratio_layer_cpu = hf_layer_cpu / ts_layer_cpu if ts_layer_cpu > 0 else None
    rows = [  # name, seconds, CPU seconds, ratio (wall), ratio (CPU); "" = no ratio on this row
        (f"thinksteer intervene, {L} layers (whole process)", ts_all["s"], ts_all["cpu"], h["s"] / ts_all["s"], h["cpu"] / ts_all["cpu"]),
        ("thinksteer intervene, 1 layer (whole process)", ts_one["s"], ts_one["cpu"], "", ""),
        (f"HF hook loop, {L} layers (model loaded)", h["s"], h["cpu"], "", ""),
        ("thinksteer per layer: (all - one) / (L - 1)", ts_layer, ts_layer_cpu, ratio_layer, ratio_layer_cpu),
        ("HF per layer: total / L", hf_layer, hf_layer_cpu, "", ""),
    ]
    fmt_ratio = lambda r: r if r == "" else f"{r:.2f}x" if r else "n/a"  # noqa: E731
    for name, s, cpu, r, rc in rows:
        busy = f"{cpu / (s * a.threads):.2f}" if s > 0 else ""
        print(f"{name:<52} | {s:8.3f} | {cpu:7.2f} | {busy:>5} | {fmt_ratio(r):>19} | {fmt_ratio(rc):>14}")
    start_load = ts_one["s"] - ts_layer
    print(f"thinksteer's fixed cost (1-layer run - per-layer slope: process start, model load, plan, reduce): {start_load:.2f} s")
    print(f"ratio, whole process: {h['s'] / ts_all['s']:.2f}x; ratio, per layer: "
          + (f"{ratio_layer:.2f}x" if ratio_layer else "n/a (the slope is within start-up noise)")
          + "  (HF s / thinksteer s; > 1: thinksteer faster); CPU-time: the same in CPU seconds; busy: CPU s / (wall s x threads)")
    print(f"\nload average before/after: {load_before:.2f} / {load_after:.2f} on {os.cpu_count()} cores; "
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}; done in {time.perf_counter() - t_start:.0f} s")
    for k, c in chk.items():
        print(f"check {k:<11}: max |thinksteer - HF| {c['max_abs_diff']:.3g} over {L} layers x {n} prompts "
              f"(worst: layer {c['layer']}, {c['prompt']}: {c['thinksteer']:.6f} vs {c['hf']:.6f})")
    print(f"check 1-layer run vs the {L}-layer run at layer 0: max |diff| {one_vs_all:.3g}")
    print(f"check: {'OK' if ok else 'MISMATCH'} (tolerance {a.tol:g})")
    if a.json:
        a.json.write_text(json.dumps(dict(
            args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}, n_params=n_params, layers=L,
            prompts=n, thinksteer_all=dict(s=ts_all["s"], cpu=ts_all["cpu"]), thinksteer_one=dict(s=ts_one["s"], cpu=ts_one["cpu"]),
            hf=dict(s=h["s"], cpu=h["cpu"], load_s=hf.load_s), per_layer=dict(thinksteer=ts_layer, hf=hf_layer),
            ratio_whole=h["s"] / ts_all["s"], ratio_per_layer=ratio_layer, ratio_whole_cpu=h["cpu"] / ts_all["cpu"], ratio_per_layer_cpu=ratio_layer_cpu,
            check=chk, one_vs_all=one_vs_all, ok=ok, load_average=[load_before, load_after],
            scores=dict(thinksteer={str(l): v for l, v in ts_all["by_layer"].items()}, hf={str(l): v for l, v in h["by_layer"].items()})),
            indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
