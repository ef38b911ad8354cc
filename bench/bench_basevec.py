#!/usr/bin/env python3
"""Correction-vector training benchmark, in one run: `thinksteer basevec train` (docs/algorithms.md
§B.10; src/stages/basevec_correction.cpp) against the same loop written in PyTorch with HF
transformers' Qwen2ForCausalLM (models/toy-base, `from_pretrained`, fp32), on the same records, the
same batches in the same order and the same thread count.

Setup (in the work directory; every stage skips itself when its output is up to date): toy-thinker
rollouts of held-out toy problems, a taxonomy SAE over them (`generate annotate sentences taxonomy
titles` with configs/toy/taxonomy.ini: K 6, SAE, seed 0, layer 1), then `basevec collect` with
models/toy-base as the base model at layer 3.

Per step, both sides take `basevec.batch_size` training rollouts (each cut after its last disagreement
position, right padded to the longest), add α(h, c)·V[c] to the base model's residual after decoder
layer 3 at every disagreement position of the rollouts (α = softplus(w2[c]·gelu(W1 h + b1) + b2[c]) on
the detached residual h), compute logits only at those positions (final norm + lm_head on the selected
rows), the top-3 cross-entropy against the thinking model's renormalised top-3 (mean over positions),
backward, clip the MLP's gradient at 1 and take an Adam step (L2 weight decay 0.01; lr 1e-2 for V, 1e-3
for the MLP). All positions are used (positions_per_category 1e6, no sampling). Printed: training
positions per second of each (the optimizer loop only; thinksteer's rate is its own line `basevec:
correction training: ...`, which excludes evaluations) and the ratio thinksteer / PyTorch (median of
rounds that alternate which side goes first). At V = 0 the shift is zero whatever the MLP,
so the first step's loss is the unsteered base model's and must agree between the two sides (|Δ| <
1e-3, exit 1 otherwise).

    .venv/bin/python bench/bench_basevec.py              # 300 rollouts, 2 epochs, 3 rounds, 2 threads (~2 min + setup)
    .venv/bin/python bench/bench_basevec.py --quick      # smoke run: 100 rollouts, 1 epoch, 1 round
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import apply_omp_wait_policy  # noqa: E402  (OMP_WAIT_POLICY by machine load, shared with the engine benchmark)
BIN = ROOT / "build" / "bin" / "thinksteer"
RATE = re.compile(r"basevec: correction training: (\d+) steps in ([\d.]+) s, (\d+) positions \(([\d.]+) positions/s")
STEP = re.compile(r"epoch (\d+)/\d+ step (\d+)/(\d+) train loss ([\d.]+)")
THINKER, BASE = ROOT / "models" / "toy-thinker", ROOT / "models" / "toy-base"
LAYER, SEED = 3, 42


# --- setup ---------------------------------------------------------------------------------------

def run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"{what} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stderr


def sae_export(work: Path) -> Path:
    exports = [p for p in (work / "titles").iterdir() if p.is_dir()]
    if len(exports) != 1:
        sys.exit(f"expected one SAE export under {work / 'titles'}, found {exports}")
    return exports[0]


def common_flags(work: Path, threads: int) -> list[str]:
    return ["--model.path", str(THINKER), "--run.dir", str(work), "--basevec.base_model", str(BASE),
            "--basevec.sae", str(sae_export(work)), "--basevec.layer", str(LAYER), "--run.threads", str(threads)]


def setup(work: Path, rollouts: int, threads: int) -> None:
    """Rollouts, an SAE export and the records. Every stage runs each time: a stage whose output is up
    to date for its inputs, config and binary skips itself, and one that is stale (e.g. after a rebuild
    that changed a format) runs again, and so do those after it."""
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    env_flags = ["--config", "configs/toy/taxonomy.ini", "--run.threads", str(threads), "--toy.seed", "0", "--run.dir", str(work),
                 "--sentences.reference", str(work / "annotate" / "spans.h5"), "--taxonomy.clusters", "6", "--taxonomy.methods", "sae",
                 "--taxonomy.seeds", "0", "--taxonomy.layers", "1", "--data.limit", str(rollouts)]
    for stage in ["generate", "annotate", "sentences", "taxonomy", "titles"]:
        run([str(BIN), stage, *env_flags], stage)
    run([str(BIN), "basevec", "collect", *common_flags(work, threads)], "basevec collect")
    print(f"setup: {rollouts} rollouts, SAE export and records in {work} ({time.perf_counter() - t0:.0f} s)", flush=True)


# --- thinksteer ----------------------------------------------------------------------------------

def thinksteer_train(work: Path, epochs: int, threads: int, batch: int) -> dict:
    shutil.rmtree(work / "basevec" / "tasks", ignore_errors=True)  # a finished task would be skipped
    # The per-step progress line (which gives the first step's loss) is written outside the timed
    # region of the loop, so logging every step does not change the rate.
    err = run([str(BIN), "basevec", "train", *common_flags(work, threads), "--basevec.seeds", str(SEED),
               "--basevec.epochs", str(epochs), "--basevec.evals_per_epoch", "1", "--basevec.batch_size", str(batch),
               "--basevec.positions_per_category", "1000000", "--basevec.random_controls", "0",
               "--log.progress_seconds", "1e-9"], "basevec train")
    match = RATE.search(err)
    if not match:
        sys.exit("no final timing line in:\n" + err[-4000:])
    steps = [(int(e), int(s), float(l)) for e, s, _, l in STEP.findall(err)]
    first = next((l for e, s, l in steps if e == 1 and s == 1), None)
    epoch_mean = [l for (e, s, l), nxt in zip(steps, steps[1:] + [(0, 0, 0.0)]) if nxt[0] != e]
    return {"steps": int(match.group(1)), "seconds": float(match.group(2)), "positions": int(match.group(3)),
            "rate": int(match.group(3)) / float(match.group(2)), "first_loss": first, "epoch_loss": epoch_mean}


# --- the batch order: std::shuffle of libstdc++ (GCC >= 11) with std::mt19937_64 -------------------

class MT19937_64:
    def __init__(self, seed: int):
        self.mt = [seed & 0xFFFFFFFFFFFFFFFF]
        for i in range(1, 312):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & 0xFFFFFFFFFFFFFFFF)
        self.i = 312

    def __call__(self) -> int:
        if self.i >= 312:
            mt = self.mt
            for k in range(312):
                y = (mt[k] & 0xFFFFFFFF80000000) | (mt[(k + 1) % 312] & 0x7FFFFFFF)
                mt[k] = mt[(k + 156) % 312] ^ (y >> 1) ^ (0xB5026F5AA96619E9 if y & 1 else 0)
            self.i = 0
        y = self.mt[self.i]
        self.i += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        return y ^ (y >> 43)


def uniform_int(g: MT19937_64, a: int, b: int) -> int:
    """std::uniform_int_distribution<uint64_t>{a, b}(g) for a 64-bit engine (Lemire's method)."""
    r = b - a + 1
    product = g() * r
    low = product & 0xFFFFFFFFFFFFFFFF
    if low < r:
        threshold = ((1 << 64) - r) % r
        while low < threshold:
            product = g() * r
            low = product & 0xFFFFFFFFFFFFFFFF
    return (product >> 64) + a


def cpp_shuffle(items: list, seed: int) -> list:
    x, g, n = list(items), MT19937_64(seed), len(items)
    if n < 2:
        return x
    i = 1
    if n % 2 == 0:
        j = uniform_int(g, 0, 1)
        x[i], x[j] = x[j], x[i]
        i += 1
    while i != n:  # two swap positions from one draw
        r = i + 1
        v = uniform_int(g, 0, r * (r + 1) - 1)
        for j in (v // (r + 1), v % (r + 1)):
            x[i], x[j] = x[j], x[i]
            i += 1
    return x


def stream_seed(seed: int, what: str, a: int = 0, b: int = 0) -> int:
    return int(hashlib.sha256(f"{what} {seed} {a} {b}".encode()).hexdigest()[:16], 16)


# --- PyTorch + HF --------------------------------------------------------------------------------

def torch_train(work: Path, epochs: int, threads: int, batch: int, hidden: int = 512) -> dict:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F
    from transformers import Qwen2ForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with h5py.File(work / "basevec" / "records.h5", "r") as f:
        tokens = f["/tokens"][:].astype(np.int64)
        offset = f["/examples/token_offset"][:]
        split = f["/examples/split"][:]
        c_ex, c_pos, c_cat = (f[f"/corrections/{k}"][:] for k in ("example", "position", "category"))
        topk_ids = torch.from_numpy(f["/corrections/topk_ids"][:, :3].astype(np.int64))
        topk_logp = torch.from_numpy(f["/corrections/topk_logp"][:, :3].astype(np.float32))
        n_cat = int(f.attrs["n_categories"])
    model = Qwen2ForCausalLM.from_pretrained(BASE, dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    final_norm, lm_head = model.model.norm, model.lm_head
    model.model.norm = torch.nn.Identity()  # applied below to the selected rows only
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else model.config.eos_token_id
    d = model.config.hidden_size

    # Items: training rollouts with a record, all their records; length = last record position + 1;
    # stable sort by length, longest first; chunks of `batch` (src/stages/basevec_correction.cpp plan()).
    by_example: dict[int, list[int]] = {}
    for i, e in enumerate(c_ex.tolist()):
        by_example.setdefault(e, []).append(i)
    items = [(e, recs, int(c_pos[recs].max()) + 1) for e, recs in sorted(by_example.items()) if split[e] == 0]
    items.sort(key=lambda it: -it[2])
    batches = [items[k:k + batch] for k in range(0, len(items), batch)]

    def make_batch(chunk):  # inside the timed step, as thinksteer's batch_logits builds its tokens there
        T = max(n for _, _, n in chunk)
        ids = torch.full((len(chunk), T), pad, dtype=torch.long)
        rows, recs = [], []
        for b, (e, rr, n) in enumerate(chunk):
            ids[b, :n] = torch.from_numpy(tokens[offset[e]:offset[e] + n])
            rows += [b * T + int(c_pos[i]) for i in rr]
            recs += rr
        return ids, torch.tensor(rows), torch.from_numpy(c_cat[recs]), torch.tensor(recs)

    V = torch.zeros(n_cat, d, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    w1 = torch.nn.init.xavier_uniform_(torch.empty(hidden, d), generator=g).requires_grad_(True)
    w2 = torch.nn.init.xavier_uniform_(torch.empty(n_cat, hidden), generator=g).requires_grad_(True)
    b1, b2 = torch.full((hidden,), 0.5, requires_grad=True), torch.full((n_cat,), 0.5, requires_grad=True)
    mlp = [w1, b1, w2, b2]
    opt = torch.optim.Adam([{"params": [V], "lr": 1e-2}, {"params": mlp, "lr": 1e-3}], weight_decay=0.01)
    shift: dict = {}

    def hook(module, args, output):
        x = output[0] if isinstance(output, tuple) else output
        flat = x.reshape(-1, x.size(-1))
        rows, cat = shift["rows"], shift["cat"]
        h = flat.index_select(0, rows).detach()
        alpha = F.softplus((F.gelu(F.linear(h, w1, b1)) * w2.index_select(0, cat)).sum(-1) + b2.index_select(0, cat))
        y = flat.index_add(0, rows, V.index_select(0, cat) * alpha.unsqueeze(1)).reshape(x.shape)
        return (y, *output[1:]) if isinstance(output, tuple) else y

    handle = model.model.layers[LAYER].register_forward_hook(hook)
    first_loss, epoch_loss, positions, seconds, cpu_seconds, steps = None, [], 0, 0.0, 0.0, 0
    for epoch in range(epochs):
        order = cpp_shuffle(list(range(len(batches))), stream_seed(SEED, "order", epoch))
        loss_sum, loss_n = 0.0, 0
        cpu0, start = time.process_time(), time.perf_counter()
        for b in order:
            ids, rows, cat, recs = make_batch(batches[b])
            shift["rows"], shift["cat"] = rows, cat
            hidden_state = model.model(input_ids=ids).last_hidden_state
            logits = lm_head(final_norm(hidden_state.reshape(-1, d).index_select(0, rows)))
            teacher = topk_logp[recs]
            teacher = (teacher - teacher.logsumexp(1, keepdim=True)).exp()
            student = logits.gather(1, topk_ids[recs]).log_softmax(1)
            loss = -(teacher * student).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(mlp, 1.0)
            opt.step()
            value = loss.item()
            if first_loss is None:
                first_loss = value
            loss_sum, loss_n = loss_sum + value * len(recs), loss_n + len(recs)
            steps += 1
        seconds += time.perf_counter() - start
        cpu_seconds += time.process_time() - cpu0
        positions += loss_n
        epoch_loss.append(loss_sum / loss_n)
    handle.remove()
    return {"steps": steps, "seconds": seconds, "positions": positions, "rate": positions / seconds, "first_loss": first_loss,
            "epoch_loss": epoch_loss, "batches": len(batches), "rollouts": len(items),
            "busy": cpu_seconds / (seconds * threads)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rollouts", type=int, default=300, help="toy-test problems generated for the records (data.limit)")
    ap.add_argument("--batch-size", type=int, default=8, help="basevec.batch_size: rollouts per step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of both sides, alternating which goes first")
    ap.add_argument("--quick", action="store_true", help="100 rollouts, 1 epoch, 1 round")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench" / "basevec")
    ap.add_argument("--omp-wait-policy", choices=["auto", "inherit", "passive", "active"], default="auto",
                    help="OMP_WAIT_POLICY for both sides. inherit: leave the environment as it is; auto: inherit on an "
                         "idle machine, PASSIVE when other work is running (as bench_engine.py; README)")
    args = ap.parse_args()
    apply_omp_wait_policy(args.omp_wait_policy)
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: build it first (scripts/build.sh thinksteer)")
    rollouts, epochs, rounds = (100, 1, 1) if args.quick else (args.rollouts, args.epochs, args.rounds)
    work = (args.work / f"rollouts-{rollouts}").resolve()
    setup(work, rollouts, args.threads)
    load = os.getloadavg()[0]
    results = []
    for r in range(rounds):
        sides = {}
        for side in (["thinksteer", "torch"] if r % 2 == 0 else ["torch", "thinksteer"]):
            sides[side] = (thinksteer_train if side == "thinksteer" else torch_train)(work, epochs, args.threads, args.batch_size)
        results.append((sides["thinksteer"], sides["torch"]))
        print(f"round {r + 1}: thinksteer {sides['thinksteer']['rate']:8.1f} positions/s, PyTorch {sides['torch']['rate']:8.1f} positions/s, "
              f"ratio {sides['thinksteer']['rate'] / sides['torch']['rate']:.2f}x", flush=True)
    load_after = os.getloadavg()[0]
    median = lambda xs: sorted(xs)[len(xs) // 2] if len(xs) % 2 else sum(sorted(xs)[len(xs) // 2 - 1:len(xs) // 2 + 1]) / 2
    ours, theirs = results[0]
    print(f"records: {theirs['rollouts']} training rollouts in {theirs['batches']} batches of <= {args.batch_size}, "
          f"{theirs['positions'] // epochs} positions per epoch; {epochs} epoch(s) = {theirs['steps']} steps per round, {rounds} round(s), "
          f"{args.threads} thread(s); base models/toy-base, layer {LAYER}")
    for name, k in (("thinksteer basevec train", 0), ("PyTorch + HF Qwen2      ", 1)):
        rates = [res[k]["rate"] for res in results]
        print(f"{name} : {median(rates):8.1f} positions/s (median; rounds: " + ", ".join(f"{x:.1f}" for x in rates) + ")")
    print(f"ratio thinksteer / PyTorch: {median([a['rate'] / b['rate'] for a, b in results]):.2f}x (median of per-round ratios)")
    print(f"load average (1 min) before/after: {load:.2f} / {load_after:.2f} on {os.cpu_count()} CPUs; PyTorch busy "
          + ", ".join(f"{b['busy']:.2f}" for _, b in results) + f" (CPU time / (wall x {args.threads})); "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    ok = all(a["steps"] == b["steps"] and a["positions"] == b["positions"] for a, b in results)
    if not ok:
        print("MISMATCH in steps or positions: " + "; ".join(f"{a['steps']}/{b['steps']} steps, {a['positions']}/{b['positions']} positions" for a, b in results))
    if ours["first_loss"] is None:
        print("first-step loss: not found in thinksteer's log")
        ok = False
    else:
        diff = abs(ours["first_loss"] - theirs["first_loss"])
        agree = diff < 1e-3
        ok = ok and agree
        print(f"first-step loss (V = 0, the unsteered base): thinksteer {ours['first_loss']:.4f}, PyTorch {theirs['first_loss']:.4f}, "
              f"|diff| {diff:.1e}: {'agree' if agree else 'DISAGREE'} (tolerance 1e-3; thinksteer logs 4 decimals)")
    print("mean train loss per epoch: thinksteer " + ", ".join(f"{x:.4f}" for x in ours["epoch_loss"])
          + " | PyTorch " + ", ".join(f"{x:.4f}" for x in theirs["epoch_loss"]) + " (the MLP inits differ)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
