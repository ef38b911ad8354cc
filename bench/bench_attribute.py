#!/usr/bin/env python3
"""Attribution benchmark: `thinksteer attribute` in mode trace (one forward and one backward per batch of
traces) against mode per-span (docs/algorithms.md §A.7's loop: one forward and backward per span),
on the same run directory, model, metric and thread count. Printed: the seconds each spent in forward
and backward passes (the stage's provenance `seconds`, summed over ranks; input reading, model loading
and writing excluded) and the ratio per-span / trace.

The run directory: toy-corpus traces tokenized by the model's tokenizer after an R1 prompt (rows as
`generate` writes them), lexicon spans (`annotate`) and difference-of-means vectors (`vectors`).

    .venv/bin/python bench/bench_attribute.py                        # shipped toy thinker, 50 examples
    .venv/bin/python bench/bench_attribute.py --model DIR --examples 20
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "build" / "bin" / "thinksteer"
R1_PROMPT = "<｜begin▁of▁sentence｜><｜User｜>{}<｜Assistant｜><think>\n"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")


def stage(binary, run_dir, name, *extra, ranks=1, check=True):
    """Runs one stage (under mpiexec with ranks > 1); returns the CompletedProcess."""
    cmd = [str(binary), *name.split(), "--run.dir", str(run_dir), "--log.progress_seconds", "1000", *map(str, extra)]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=ENV, timeout=900)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def make_run(binary, model: Path, run_dir: Path, n_problems: int) -> Path:
    """generations.jsonl of toy-corpus traces in the model's tokenizer, lexicon spans and vectors."""
    from tokenizers import Tokenizer
    run_dir.mkdir(parents=True, exist_ok=True)
    corpus = run_dir / "corpus"
    stage(binary, corpus, "toy corpus", "--toy.n_problems", n_problems)
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    gens = []
    for line in (corpus / "toy" / "corpus.jsonl").read_text().splitlines():
        r = json.loads(line)
        ids = tok.encode(r["text"][len("<think>\n"):], add_special_tokens=False).ids
        gens.append({"id": r["id"], "prompt": r["question"], "prompt_text": R1_PROMPT.format(r["question"]), "token_ids": ids,
                     "text": tok.decode(ids, skip_special_tokens=False), "thinking_closed": True})
    (run_dir / "generate").mkdir(exist_ok=True)
    (run_dir / "generate" / "generations.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
    stage(binary, run_dir, "annotate", "--model.path", model)
    stage(binary, run_dir, "vectors", "--model.path", model)
    return run_dir


def attribution_seconds(binary, model: Path, run_dir: Path, mode: str, metric: str, examples: int, threads: int) -> float:
    shutil.rmtree(run_dir / "attribute", ignore_errors=True)  # a finished run would be skipped
    stage(binary, run_dir, "attribute", "--model.path", model, "--attribute.mode", mode, "--attribute.metric", metric,
          "--attribute.n_examples", examples, "--run.threads", threads)
    return json.loads((run_dir / "attribute" / "provenance.json").read_text())["seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--thinksteer", default=str(BIN))
    ap.add_argument("--model", default=str(ROOT / "models" / "toy-thinker"))
    ap.add_argument("--work", default=str(ROOT / "build" / "bench_attribute"))
    ap.add_argument("--examples", type=int, default=50)
    ap.add_argument("--metric", default="logprob", choices=["paper", "logprob"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    model, work = Path(args.model), Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    make_run(args.thinksteer, model, work, max(args.examples, 8))
    t_trace = attribution_seconds(args.thinksteer, model, work, "trace", args.metric, args.examples, args.threads)
    t_span = attribution_seconds(args.thinksteer, model, work, "per-span", args.metric, args.examples, args.threads)
    print(f"attribute ({model.name}, {args.examples} examples, metric {args.metric}, {args.threads} thread(s)): "
          f"trace {t_trace:.3f} s, per-span {t_span:.3f} s, speed-up per-span / trace = {t_span / t_trace:.1f}x")


if __name__ == "__main__":
    main()
