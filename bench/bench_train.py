#!/usr/bin/env python3
"""Training benchmark, in one run: `thinksteer toy train` against the same training loop written in
PyTorch with HF transformers' Qwen2ForCausalLM, on the same model shape, data and thread count.

Both sides train the toy-thinker recipe (configs/toy/thinker.ini: d_model 128, 4 layers, GQA 4/2,
d_mlp 384, vocab 1024, batch 32, AdamW, grad clip 1) for the same number of steps on the same
examples: the R1 chat prompt + trace + EOS of the toy corpus's train split, tokenized with the toy
tokenizer (HF tokenizers reads the same tokenizer.json), batched the same way (length-sorted groups of
16 batches, so padding is alike), loss on the trace tokens only. Printed: trace (target) tokens per
second of each and the ratio thinksteer / PyTorch. thinksteer's rate is the one its final progress
line reports (the optimizer loop only, no corpus generation or checkpoint writing); PyTorch's is
timed around its loop the same way.

    .venv/bin/python bench/bench_train.py              # ~3 minutes on 2 cores
    .venv/bin/python bench/bench_train.py --quick      # smoke run
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "build" / "bin" / "thinksteer"
RATE = re.compile(r"toy train: (\d+) steps in ([\d.]+) s, (\d+) target tokens")
MODEL = dict(d_model=128, n_layer=4, n_head=4, n_kv_head=2, d_mlp=384)


def thinksteer_train(work: Path, steps: int, threads: int, n_problems: int) -> tuple[float, Path]:
    shutil.rmtree(work / "train", ignore_errors=True)  # a finished run would be skipped
    common = ["--run.dir", str(work), "--toy.n_problems", str(n_problems), "--run.threads", str(threads),
              "--log.progress_seconds", "1000"]
    subprocess.run([str(BIN), "toy", "corpus", *common], check=True, capture_output=True)
    subprocess.run([str(BIN), "toy", "tokenizer", *common], check=True, capture_output=True)
    args = [f"--train.{k}={v}" for k, v in MODEL.items()]
    proc = subprocess.run([str(BIN), "toy", "train", *common, *args, "--train.steps", str(steps),
                           "--train.save_dtype", "float32"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    match = RATE.search(proc.stderr)
    if not match:
        sys.exit("no final timing line in:\n" + proc.stderr)
    return int(match.group(3)) / float(match.group(2)), work


def torch_train(work: Path, steps: int, threads: int) -> tuple[float, int]:
    import torch
    from tokenizers import Tokenizer
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    tok = Tokenizer.from_file(str(work / "toy" / "tokenizer" / "tokenizer.json"))
    bos, eos = tok.token_to_id("<｜begin▁of▁sentence｜>"), tok.token_to_id("<｜end▁of▁sentence｜>")
    examples = []
    for line in (work / "toy" / "corpus.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["split"] != "train":
            continue
        prompt = f"<｜begin▁of▁sentence｜><｜User｜>{row['question']}<｜Assistant｜><think>\n"
        n_prompt = len(tok.encode(prompt, add_special_tokens=False).ids)
        ids = tok.encode(prompt + row["text"][len("<think>\n"):], add_special_tokens=False).ids + [eos]
        examples.append((ids, n_prompt))
    cfg = Qwen2Config(vocab_size=tok.get_vocab_size(), hidden_size=MODEL["d_model"], intermediate_size=MODEL["d_mlp"],
                      num_hidden_layers=MODEL["n_layer"], num_attention_heads=MODEL["n_head"],
                      num_key_value_heads=MODEL["n_kv_head"], tie_word_embeddings=True, bos_token_id=bos,
                      eos_token_id=eos, max_position_embeddings=1024, attn_implementation="sdpa")
    model = Qwen2ForCausalLM(cfg).train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-3, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(examples), generator=g).tolist()
    batch, group = 32, 16
    batches = []
    for start in range(0, len(order), batch * group):
        chunk = sorted(order[start:start + batch * group], key=lambda i: len(examples[i][0]))
        batches += [chunk[k:k + batch] for k in range(0, len(chunk), batch) if len(chunk[k:k + batch]) == batch]
    targets_seen = 0
    start = time.perf_counter()
    for step in range(steps):
        rows = [examples[i] for i in batches[step % len(batches)]]
        T = max(len(ids) for ids, _ in rows) - 1
        x = torch.full((len(rows), T), eos, dtype=torch.long)
        y = torch.full((len(rows), T), -100, dtype=torch.long)
        for r, (ids, n_prompt) in enumerate(rows):
            n = len(ids) - 1
            x[r, :n] = torch.tensor(ids[:-1])
            y[r, n_prompt - 1:n] = torch.tensor(ids[n_prompt:])
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
        n_target = int((y != -100).sum())
        opt.zero_grad(set_to_none=True)
        (loss / n_target).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        targets_seen += n_target
    return targets_seen / (time.perf_counter() - start), sum(p.numel() for p in model.parameters())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench" / "train")
    args = ap.parse_args()
    steps, n_problems = (10, 600) if args.quick else (args.steps, 4000)
    args.work.mkdir(parents=True, exist_ok=True)
    ours, work = thinksteer_train(args.work / f"run-{n_problems}-{steps}", steps, args.threads, n_problems)
    theirs, n_params = torch_train(work, steps, args.threads)
    print(f"model: Qwen2 {n_params / 1e6:.2f}M parameters, batch 32, {steps} steps, {args.threads} threads")
    print(f"thinksteer toy train : {ours:8.0f} target tok/s")
    print(f"PyTorch + HF Qwen2   : {theirs:8.0f} target tok/s")
    print(f"ratio thinksteer / PyTorch: {ours / theirs:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
