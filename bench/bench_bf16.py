#!/usr/bin/env python3
"""bfloat16 on the CPU: thinksteer computing in bf16 (model.dtype = bfloat16) against thinksteer in fp32 (the CPU
default, the reference here), on the random ~100M Qwen2 of bench_engine.py, same threads, in one run.

    .venv/bin/python bench/bench_bf16.py [--threads 2] [--repeats 3] [--quick]

Measured (build/bin/bench_engine --serve, one process per dtype, interleaved rounds alternating which goes first):
  * prefill + record: [4, 256] forward recording blocks.{l}.hook_resid_post at every layer, no logits (what
    `collect` runs); target bf16 >= 3x fp32; with the bf16/fp32 ratio of its linears alone (torch's GEMMs, from
    `profile prefill` in the same rounds), which bounds the prefill's ratio on the CPU at hand (no AMX: about 2x);
  * steered decode at batch 8 (and --steer-batches): greedy generate_batch with 4 * a unit vector added at the middle
    layer's resid_post at every position (a steered sweep point); target bf16 >= 2x fp32;
  * decode at batch 1: tokens/s and the weight-read bandwidth it implies (weight bytes x tokens/s), against a plain
    read of a buffer 4x the fp32 weights by the same threads (`bandwidth` of bench_engine: AVX-512 loads) measured in
    each round right before the decodes (this VM's bandwidth drifts between 39 and 70 GB/s), with the CPU model and
    its AMX / AVX512-BF16 flags;
  * the same share measured step by step (`paired` of bench_engine): --paired-steps batch-1 decode steps, each
    followed by a plain read of as many bytes as the weights (windows of a buffer 4x that), the share per pair being
    read time / step time; a pair's halves are milliseconds apart, so the drift cancels. Target for fp32: >= 93%. The same
    for the step's linears alone (`kernels` of bench_engine): what the decode kernel reads without the step's other ops.
The exit status is 1 when a target is missed (not with --quick).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import FULL_SHAPE, QUICK_SHAPE, ROOT, make_model  # noqa: E402


class Worker:
    def __init__(self, binary: Path, model: Path, a, dtype: str, steer_layer: int):
        cmd = [str(binary), "--serve", "--model", str(model), "--threads", str(a.threads), "--prefill-batch", "4",
               "--prefill-len", str(a.prefill_len), "--new-tokens", str(a.new_tokens), "--prompt-len", str(a.prompt_len),
               "--prefill-logits", "none", "--dtype", dtype, "--steer-layer", str(steer_layer)]
        self.dtype = dtype
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.header = self.read()

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"bench_engine ({self.dtype}) exited with {self.proc.wait()}")
        out = json.loads(line)
        if "error" in out:
            sys.exit(f"bench_engine ({self.dtype}): {out['error']}")
        return out

    def cmd(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def cpu_description() -> tuple[str, list[str]]:
    model, flags = "unknown CPU", []
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and model == "unknown CPU":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            have = set(line.split(":", 1)[1].split())
            flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16") if f in have]
    return model, flags


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steer-batches", default="8,16")
    ap.add_argument("--quick", action="store_true", help="tiny model, few tokens: a smoke run")
    ap.add_argument("--paired-steps", type=int, default=60, help="batch-1 steps per round in the paired bandwidth measurement")
    ap.add_argument("--binary", type=Path, default=ROOT / "build" / "bin" / "bench_engine")
    a = ap.parse_args()
    a.prefill_len, a.new_tokens, a.prompt_len = (32, 8, 16) if a.quick else (256, 64, 128)
    shape = QUICK_SHAPE if a.quick else FULL_SHAPE
    model = ROOT / "build" / "bench" / ("qwen2_tiny" if a.quick else "qwen2_100m")
    n_params = make_model(model, shape)
    steer_layer = shape["num_hidden_layers"] // 2
    workers = {d: Worker(a.binary, model, a, d, steer_layer) for d in ("float32", "bfloat16")}
    batches = [int(x) for x in a.steer_batches.split(",")]
    cpu, flags = cpu_description()
    read_mb = max(64, 4 * n_params * 4 >> 20)
    print(f"{cpu}; flags {' '.join(flags) or 'none of avx2/avx512/amx'}; {a.threads} threads; model {n_params / 1e6:.1f}M parameters",
          flush=True)

    runs = {d: {"prefill": [], **{f"decode{b}": [] for b in [1, *batches]}} for d in workers}
    reads, shares = [], {d: [] for d in workers}  # plain read per round; batch-1 weight reads / that round's plain read
    paired = {d: [] for d in workers}  # per round: the median over steps of (plain read time / step time)
    kernels = {d: [] for d in workers}  # the same for the step's linears alone (bench_engine `kernels`)
    paired_read = []  # per round: the plain read's GB/s in fp32's paired steps (the VM's regime)
    gemm = {d: [] for d in workers}  # per round: ms of the prefill's linears (torch's GEMMs) alone, from `profile prefill`
    for d, w in workers.items():  # warm-up
        w.cmd("prefill record")
        w.cmd("decode 1")
    for r in range(a.repeats):
        order = list(workers) if r % 2 == 0 else list(reversed(workers))
        for d in order:
            runs[d]["prefill"].append(4 * a.prefill_len / workers[d].cmd("prefill record")["s"])
            ops = workers[d].cmd("profile prefill 2")["ops"]
            gemm[d].append(sum(o["ms_per_step"] for o in ops if o["op"] == "aten::linear"))
        for b in [1, *batches]:
            if b == 1:  # the plain read right before the batch-1 decodes it is compared with (the VM's bandwidth drifts)
                reads.append(workers["float32"].cmd(f"bandwidth {read_mb}")["gb_s"])
            for d in order:
                out = workers[d].cmd(f"decode {b}")
                runs[d][f"decode{b}"].append(b * (a.new_tokens - 1) / out["decode_s"])
                if b == 1:
                    shares[d].append(runs[d]["decode1"][-1] * n_params * (4 if d == "float32" else 2) / 1e9 / reads[-1])
        for d in order:  # batch-1 steps alternated with plain reads of the same bytes (bench_engine `paired`)
            out = workers[d].cmd(f"paired {a.paired_steps} {n_params * (4 if d == 'float32' else 2)}")
            paired[d].append(out["share"])
            if d == "float32":
                paired_read.append(out["read_gb_s"])
            kernels[d].append(workers[d].cmd(f"kernels {a.paired_steps} {n_params * (4 if d == 'float32' else 2)}")["share"])
    for w in workers.values():
        w.close()

    med = {d: {k: statistics.median(v) for k, v in rs.items()} for d, rs in runs.items()}
    ok = True
    print(f"\n{'measurement':<34}{'fp32 tok/s':>12}{'bf16 tok/s':>12}{'bf16/fp32':>11}  target   (tok/s: medians; ratio: median of the rounds' ratios)")
    rows = [("prefill+record [4, %d], no logits" % a.prefill_len, "prefill", 3.0)]
    rows += [(f"steered greedy decode, batch {b}", f"decode{b}", 2.0 if b >= 8 else None) for b in batches]
    rows += [("greedy decode, batch 1", "decode1", None)]
    for name, key, target in rows:
        f, h = med["float32"][key], med["bfloat16"][key]
        # the median of the rounds' ratios: each round measures both dtypes back to back, so the VM's bandwidth drift
        # between rounds cancels (a ratio of medians mixes rounds run at different bandwidths)
        ratio = statistics.median(b / a for a, b in zip(runs["float32"][key], runs["bfloat16"][key]))
        met = target is None or ratio >= target
        ok = ok and met
        print(f"{name:<34}{f:>12.1f}{h:>12.1f}{ratio:>10.2f}x  {'>= %.1fx %s' % (target, 'met' if met else 'MISSED') if target else ''}")
    for name, key, _ in rows:
        per = [b / a for a, b in zip(runs["float32"][key], runs["bfloat16"][key])]
        print(f"  {name}: bf16/fp32 per round {', '.join(f'{x:.2f}' for x in per)}")
    # The prefill is torch's GEMMs for the most part; their own bf16/fp32 speed-up on this CPU bounds the whole prefill's
    # (with AMX it is 4.8-5.7x; with AVX-512 BF16 alone a vdpbf16ps does twice the flops of an fp32 FMA: about 2x).
    ceiling = [f / b for f, b in zip(gemm["float32"], gemm["bfloat16"])]
    share = statistics.median(g / 1e3 / (4 * a.prefill_len / t) for g, t in zip(gemm["float32"], runs["float32"]["prefill"]))
    print(f"  the prefill's linears alone (torch's GEMMs, {100 * share:.0f}% of the fp32 prefill): bf16/fp32 per round "
          f"{', '.join(f'{x:.2f}' for x in ceiling)} (median {statistics.median(ceiling):.2f}x): what this CPU allows the prefill")
    print(f"plain read of {read_mb} MiB, {a.threads} threads, per round: {', '.join(f'{r:.1f}' for r in reads)} GB/s")
    for d, bytes_per in (("float32", 4), ("bfloat16", 2)):
        gb = med[d]["decode1"] * n_params * bytes_per / 1e9
        print(f"batch-1 decode, {d}: {gb:.1f} GB/s of weights read; per round {', '.join(f'{100 * x:.0f}%' for x in shares[d])} "
              f"of that round's plain read (median {100 * statistics.median(shares[d]):.0f}%)")
        print(f"  paired with a plain read of the same bytes after every step: per round {', '.join(f'{100 * x:.0f}%' for x in paired[d])} "
              f"(median {100 * statistics.median(paired[d]):.0f}%)" + (" target >= 93%" if d == "float32" else "") +
              (f"; plain read per round {', '.join(f'{x:.0f}' for x in paired_read)} GB/s" if d == "float32" else ""))
        print(f"  the step's linears alone, paired the same way: per round {', '.join(f'{100 * x:.0f}%' for x in kernels[d])} "
              f"(median {100 * statistics.median(kernels[d]):.0f}%)")
    ok = ok and statistics.median(paired["float32"]) >= 0.93
    return 0 if ok or a.quick else 1


if __name__ == "__main__":
    sys.exit(main())
