#!/usr/bin/env python3
"""Peak resident memory of one taxonomy sweep task (an SAE of `thinksteer sweep run`) against its budget
taxonomy.memory_mb: the same task held in memory (budget above the layer's vectors) and streamed from the
sentences file (budget 0, every minibatch read from HDF5), with the wall time of each and whether the two
task files hold the same values.

    ninja -C build thinksteer
    .venv/bin/python bench/bench_taxonomy_memory.py              # N 200000, d 256: 195 MB of vectors per layer
    .venv/bin/python bench/bench_taxonomy_memory.py --n 20000    # a smoke run

The sentences file is tests/taxonomy/planted_sentences.py's (six planted directions at layer 5), written once
to build/bench/. The task: layer 5, K 10, 2 epochs (patience above them), batch 512, 1 thread, 1 rank."""
import argparse
import pathlib
import subprocess
import sys
import time

import h5py
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "taxonomy"))
from planted_sentences import PLANTED, write_planted_sentences  # noqa: E402


def run_task(binary: pathlib.Path, sentences: pathlib.Path, run_dir: pathlib.Path, budget_mb: int) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of `sweep run` of the one task, after its `sweep plan`."""
    common = ["--run.dir", str(run_dir), "--taxonomy.sentences", str(sentences), "--sweep.kind", "taxonomy", "--taxonomy.layers", str(PLANTED),
              "--taxonomy.clusters", "10", "--taxonomy.methods", "sae", "--taxonomy.max_epochs", "2", "--taxonomy.patience", "10",
              "--run.threads", "1", "--taxonomy.memory_mb", str(budget_mb)]
    subprocess.run([str(binary), "sweep", "plan", *common], check=True, capture_output=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(binary), "sweep", "run", "--task-id", "0", *common], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # The child's own high-water mark (VmHWM), read until it exits: ru_maxrss of a forked child can count
    # pages it shared with this (large) Python process before exec.
    peak_kb = 0
    while proc.poll() is None:
        try:
            status = pathlib.Path(f"/proc/{proc.pid}/status").read_text()
            peak_kb = max(peak_kb, int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]))
        except (OSError, StopIteration):
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"sweep run failed (status {proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
    return peak_kb / 1024.0, seconds


def task_values(run_dir: pathlib.Path) -> dict[str, np.ndarray]:
    [path] = (run_dir / "taxonomy" / "tasks").glob("*.h5")
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in ("assign", "sae/w_enc", "sae/w_dec", "loss")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--d", type=int, default=256)
    args = ap.parse_args()
    binary = ROOT / "build" / "bin" / "thinksteer"
    out = ROOT / "build" / "bench" / f"taxonomy_memory_{args.n}_{args.d}"
    sentences = out / "sentences.h5"
    if not sentences.exists():
        out.mkdir(parents=True, exist_ok=True)
        write_planted_sentences(sentences, n=args.n, d=args.d)
    layer_mb = args.n * args.d * 4 / 2**20
    results = {}
    for name, budget in (("in memory", int(layer_mb) + 64), ("streamed", 0)):
        run_dir = out / name.replace(" ", "_")
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        results[name] = (*run_task(binary, sentences, run_dir, budget), budget, run_dir)
    print(f"one SAE task, N {args.n} x d {args.d}: {layer_mb:.0f} MB of vectors at the layer")
    print(f"{'':12} {'budget MB':>10} {'peak RSS MB':>12} {'seconds':>8}")
    for name, (rss, sec, budget, _) in results.items():
        print(f"{name:12} {budget:10d} {rss:12.0f} {sec:8.1f}")
    a, b = (task_values(results[k][3]) for k in results)
    same = all(np.array_equal(a[k], b[k]) for k in a)
    print(f"streamed - in memory: {results['streamed'][0] - results['in memory'][0]:+.0f} MB; task files equal: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
