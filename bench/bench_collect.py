#!/usr/bin/env python3
"""Distributed-runtime benchmark, in one run:

  * `thinksteer collect` throughput (tokens/s) with 1 and with 2 data-parallel ranks (1 thread each)
    on a random 97.7M-parameter Qwen2 (the model of bench_engine.py), hook_resid_post at every layer,
    every token stored in fp32: the scaling efficiency tp(2) / (2 tp(1)), and the share of the batch
    loop spent in the collective HDF5 writes (target <= 10% of the forward time);
  * parallel HDF5 write bandwidth (build/bin/bench_h5store, the write pattern of `collect`) against a
    plain sequential pwrite() of the same bytes by one process, both with fsync, at 1 and 2 ranks,
    median over rounds (target: HDF5 >= 80% of the plain write).

    .venv/bin/python bench/bench_collect.py            # ~3 minutes on 2 cores
    .venv/bin/python bench/bench_collect.py --quick    # smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench_engine import FULL_SHAPE, QUICK_SHAPE, make_model  # noqa: E402

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
LINE = re.compile(r"\[r(\d+)/\d+\] \[info\] collect: (\d+) tokens in ([\d.]+) s on this rank "
                  r"\(([\d.]+) s forward, ([\d.]+) s blocked on writes; ([\d.]+) s of writes")


def make_inputs(work: Path, quick: bool) -> tuple[Path, Path]:
    model = work / ("collect_model_quick" if quick else "collect_model")
    base = work / ("qwen2_quick" if quick else "qwen2_100m")
    n_params = make_model(base, QUICK_SHAPE if quick else FULL_SHAPE)
    model.mkdir(parents=True, exist_ok=True)
    for f in base.iterdir():
        if f.suffix in (".json", ".safetensors") and not (model / f.name).exists():
            (model / f.name).symlink_to(f.resolve())
    demo = ROOT / "build" / "testdata" / "demo-model"
    if not (demo / "tokenizer.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_model.py"), "--out", str(demo)], check=True)
    shutil.copy(demo / "tokenizer.json", model / "tokenizer.json")  # ids < 555 <= the model's vocab
    rng = random.Random(0)
    words = "the of and a to in is you that it he was for on are as with his they at be this have from".split()
    prompts = work / "collect_prompts.jsonl"
    n, length = (8, 200) if quick else (48, 1500)
    with prompts.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"p{i}", "question": " ".join(rng.choice(words) for _ in range(length // 4))}) + "\n")
    print(f"model: {n_params / 1e6:.1f}M parameters, {n} prompts", flush=True)
    return model, prompts


def collect(binary: Path, ranks: int, model: Path, prompts: Path, run_dir: Path) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = ["mpiexec", "-n", str(ranks), str(binary), "collect", "--model.path", str(model), "--data.prompts", str(prompts),
           "--run.dir", str(run_dir), "--run.threads", "1", "--generate.chat_format", "raw", "--collect.batch_size", "4",
           "--collect.hooks", "blocks.*.hook_resid_post", "--collect.positions", "all", "--log.progress_seconds", "600"]
    t = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    wall = time.monotonic() - t
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    ranks_seen = [tuple(map(float, m.groups()[1:])) for m in LINE.finditer(proc.stderr)]
    tokens = sum(r[0] for r in ranks_seen)
    loop = max(r[1] for r in ranks_seen)
    forward = sum(r[2] for r in ranks_seen)
    writing = sum(r[3] for r in ranks_seen)
    io = sum(r[4] for r in ranks_seen)
    size = (run_dir / "collect" / "activations.h5").stat().st_size
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"ranks": ranks, "tokens": tokens, "loop_s": loop, "tok_s": tokens / loop, "write_share": writing / forward, "io_share": io / forward,
            "wall_s": wall, "file_MB": size / 1e6}


def h5_bandwidth(binary: Path, ranks: int, work: Path, quick: bool, plain_first: bool) -> dict:
    rows = "4096" if quick else "16384"
    proc = subprocess.run(["mpiexec", "-n", str(ranks), str(binary), "--rows", rows, "--cols", "768", "--datasets", "12",
                           "--rounds", "8", "--dir", str(work), "--plain-first", "1" if plain_first else "0"],
                          capture_output=True, text=True, env=ENV)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    work = ROOT / "build" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    model, prompts = make_inputs(work, a.quick)
    binary = ROOT / "build" / "bin" / "thinksteer"

    runs = {1: [], 2: []}
    for _ in range(1 if a.quick else 2):
        for ranks in (1, 2):
            r = collect(binary, ranks, model, prompts, work / f"collect_np{ranks}")
            runs[ranks].append(r)
            print(f"collect, {ranks} rank(s): {r['tokens']:.0f} tokens, {r['tok_s']:.0f} tok/s, blocked on writes {100 * r['write_share']:.1f}% "
                  f"of forward time (the writes themselves: {100 * r['io_share']:.1f}%, in the background), {r['file_MB']:.0f} MB", flush=True)
    tp = {k: max(x["tok_s"] for x in v) for k, v in runs.items()}
    share = max(x["write_share"] for v in runs.values() for x in v)
    eff = tp[2] / (2 * tp[1])

    bw = {1: [], 2: []}
    for _ in range(1 if a.quick else a.rounds):
        for ranks in (1, 2):
            r = h5_bandwidth(ROOT / "build" / "bin" / "bench_h5store", ranks, work, a.quick, plain_first=len(bw[ranks]) % 2 == 1)
            bw[ranks].append(r)
            print(f"hdf5 write, {ranks} rank(s): {r['hdf5_GBps']:.2f} GB/s vs plain {r['plain_GBps']:.2f} GB/s (ratio {r['ratio']:.2f})", flush=True)

    print("\n== summary ==")
    print(f"collect throughput: 1 rank {tp[1]:.0f} tok/s, 2 ranks {tp[2]:.0f} tok/s: scaling efficiency {100 * eff:.0f}%")
    print(f"time blocked on writes / forward time (worst run): {100 * share:.1f}%  (target <= 10%: {'met' if share <= 0.10 else 'NOT MET'})")
    for ranks in (1, 2):
        ratio = statistics.median(x["ratio"] for x in bw[ranks])
        print(f"parallel HDF5 / plain write, {ranks} rank(s): median {ratio:.2f}  (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT MET'})")


if __name__ == "__main__":
    main()
