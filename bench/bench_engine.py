#!/usr/bin/env python3
"""Engine benchmark: thinksteer (build/bin/bench_engine) against HF transformers, in one run, same threads.

On a random Qwen2-shaped model (97.7M parameters, fp32; created once and cached under
build/bench/qwen2_100m/) it measures
  * prefill tokens/s while recording hook_resid_post at every layer (HF: a forward hook on every
    decoder layer that clones its output), and the same prefill without hooks;
  * greedy decode tokens/s at batch 1 and 8 for --new-tokens tokens (HF: model.generate), and the
    prefill+decode total;
then prints the thinksteer/HF ratios, whether the targets are met (recording >= 1.2x HF, decode at
batch 1 >= 2x HF) and whether both engines' greedy tokens agree.

The two engines run interleaved: bench_engine runs as a worker (--serve) and each round times every
measurement once in each engine, back to back, alternating which goes first, so that load from other
work on a shared machine hits both alike. Ratios are the median over rounds of the per-round ratio.

    .venv/bin/python bench/bench_engine.py            # full run (a few minutes on 2 cores)
    .venv/bin/python bench/bench_engine.py --quick    # tiny smoke run (< 60 s)
    .venv/bin/python bench/bench_engine.py --profile  # + where decode steps and the prefill spend their time
    .venv/bin/python bench/bench_engine.py --llamacpp # + llama.cpp rows (build it first: bench/llamacpp.sh)
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
MASK64 = (1 << 64) - 1

FULL_SHAPE = dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                  num_attention_heads=12, num_key_value_heads=2)
QUICK_SHAPE = dict(vocab_size=1024, hidden_size=128, intermediate_size=352, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2)


# ---------------------------------------------------------------------------------------------
# Prompt ids: the same splitmix64 construction as prompt_ids() in bench_engine.cpp.

def sh(*args, env=None) -> subprocess.CompletedProcess:
    """Runs a process (the benchmarks' thinksteer and reference scripts); exits with its stderr when it fails."""
    r = subprocess.run([str(x) for x in args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def timed(*args, env=None) -> tuple[float, float]:
    """Runs a process; returns (wall seconds, CPU seconds of the process and its children)."""
    import resource
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    sh(*args, env=env)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def model_with_toy_tokenizer(work: Path, quick: bool) -> tuple[Path, int, dict]:
    """The random Qwen2 of make_model (tiny or ~100M) linked into work/model_{tiny,100m} with the shipped toy
    tokenizer (ids < 1024 <= the model's vocabulary): a checkpoint thinksteer and HF both load. Returns (dir, n_params,
    shape)."""
    import shutil
    shape = QUICK_SHAPE if quick else FULL_SHAPE
    base = ROOT / "build" / "bench" / ("qwen2_tiny" if quick else "qwen2_100m")
    n_params = make_model(base, shape)
    model = work / ("model_tiny" if quick else "model_100m")
    model.mkdir(parents=True, exist_ok=True)
    for f in base.iterdir():
        if f.suffix in (".json", ".safetensors") and not (model / f.name).exists():
            (model / f.name).symlink_to(f.resolve())
    shutil.copy(ROOT / "models" / "toy-thinker" / "tokenizer.json", model / "tokenizer.json")
    return model, n_params, shape


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def prompt_ids(seed: int, stream: int, length: int, vocab: int) -> list[int]:
    base = _splitmix64((seed * 1000003 + stream) & MASK64)
    return [_splitmix64((base + i) & MASK64) % vocab for i in range(length)]


# ---------------------------------------------------------------------------------------------

def make_model(model_dir: Path, shape: dict, seed: int = 0) -> int:
    """Creates (once) a random fp32 Qwen2ForCausalLM under model_dir; returns its parameter count."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    marker = model_dir / "bench_params.json"
    if marker.exists() and (model_dir / "config.json").exists():
        info = json.loads(marker.read_text())
        if info.get("shape") == shape:
            return int(info["n_params"])
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = Qwen2Config(**shape, max_position_embeddings=4096, rope_theta=1000000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True, hidden_act="silu", bos_token_id=None, eos_token_id=None,
                         pad_token_id=None)
    model = Qwen2ForCausalLM(config).to(torch.float32).eval()
    n_params = sum(p.numel() for p in model.parameters())  # the tied embedding counts once
    model.save_pretrained(model_dir, safe_serialization=True)
    marker.write_text(json.dumps({"shape": shape, "n_params": n_params}))
    return n_params


class ThinksteerWorker:
    """build/bin/bench_engine --serve: one timed run per command, one JSON line per answer."""

    def __init__(self, binary: Path, model_dir: Path, a):
        cmd = [str(binary), "--serve", "--model", str(model_dir), "--threads", str(a.threads),
               "--prefill-batch", str(a.prefill_batch), "--prefill-len", str(a.prefill_len),
               "--new-tokens", str(a.new_tokens), "--prompt-len", str(a.prompt_len), "--seed", str(a.seed),
               "--prefill-logits", a.prefill_logits]
        print("starting:", " ".join(cmd), flush=True)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.header = self._read()
        self.threads = self.header["threads"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench_engine exited (code {self.proc.wait()})")
        out = json.loads(line)
        if "error" in out:
            raise SystemExit(f"bench_engine: {out['error']}")
        return out

    def cmd(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._read()

    def prefill(self, record: bool) -> dict:
        return self.cmd("prefill record" if record else "prefill nohook")

    def decode(self, batch: int) -> dict:
        return self.cmd(f"decode {batch}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


# ---------------------------------------------------------------------------------------------

MEASUREMENTS = ("prefill_record", "prefill_nohook")


def run_interleaved(ts: ThinksteerWorker, hf, a, peer=None) -> dict:  # hf: hf_engine.HfRunner
    """Warm-up, then a.repeats rounds; each round times every measurement once in each engine. With `peer`
    (llamacpp_peer.LlamaCppPeer, --llamacpp), each round then runs the peer once; its rounds go to peer.rounds."""
    names = list(MEASUREMENTS) + [f"decode_{b}" for b in a.decode_batches]

    def once(engine, name):
        time.sleep(0.05)  # let the other engine's OpenMP workers go idle
        if name == "prefill_record":
            return engine.prefill(True)
        if name == "prefill_nohook":
            return engine.prefill(False)
        return engine.decode(int(name.split("_")[1]))

    res = {"thinksteer": {n: [] for n in names}, "hf": {n: [] for n in names}}
    t0 = time.perf_counter()
    for n in names:  # warm-up
        once(ts, n)
        once(hf, n)
    if peer is not None:
        peer.round()
    print(f"warm-up done ({time.perf_counter() - t0:.0f} s)", flush=True)
    for r in range(a.repeats):
        for i, n in enumerate(names):
            order = (("thinksteer", ts), ("hf", hf)) if (r + i) % 2 == 0 else (("hf", hf), ("thinksteer", ts))
            for key, engine in order:
                res[key][n].append(once(engine, n))
        if peer is not None:
            time.sleep(0.05)
            peer.rounds.append(peer.round())
        print(f"round {r + 1}/{a.repeats} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    return res


def summarise(res: dict, a) -> dict:
    """Per engine and measurement: median/best tokens/s, per-round values, CPU utilisation."""
    out: dict = {}
    for eng, per in res.items():
        threads = a.threads
        s: dict = {}
        for name, runs in per.items():
            if name.startswith("prefill"):
                n_tok = a.prefill_batch * a.prefill_len
                rates = [n_tok / r["s"] for r in runs]
                util = [r["cpu_s"] / (r["s"] * threads) for r in runs]
                s[name] = {"tok_s": rates, "cpu_tok_s": [n_tok / r["cpu_s"] for r in runs],
                           "cpu_util": statistics.median(util), "s": [r["s"] for r in runs]}
            else:
                B = runs[0]["batch"]
                s[name] = {
                    "batch": B,
                    "tok_s": [B * (a.new_tokens - 1) / r["decode_s"] for r in runs],
                    "cpu_tok_s": [B * (a.new_tokens - 1) / r["decode_cpu_s"] for r in runs],
                    "total_tok_s": [B * a.new_tokens / r["total_s"] for r in runs],
                    "total_cpu_tok_s": [B * a.new_tokens / r["cpu_s"] for r in runs],
                    "step_ms": [1e3 * r["decode_s"] / (a.new_tokens - 1) for r in runs],
                    "step_cpu_ms": [1e3 * r["decode_cpu_s"] / (a.new_tokens - 1) for r in runs],
                    "cpu_util": statistics.median(r["cpu_s"] / (r["total_s"] * threads) for r in runs),
                    "tokens": runs[-1]["tokens"],
                }
        out[eng] = s
    return out


def first_mismatch(rows_a, rows_b):
    for r, (x, y) in enumerate(zip(rows_a, rows_b)):
        for i, (u, v) in enumerate(zip(x, y)):
            if u != v:
                return r, i, u, v
        if len(x) != len(y):
            return r, min(len(x), len(y)), "<end>", "<end>"
    return None


def report(summ: dict, a, n_params: int, load: tuple) -> bool:
    ts, hf = summ["thinksteer"], summ["hf"]
    med = statistics.median
    rows = []  # (label, key, wall-rate key, cpu-rate key, target)
    P = f"[{a.prefill_batch}x{a.prefill_len}]"
    rows.append((f"prefill + record resid_post, all layers {P}", "prefill_record", "tok_s", "cpu_tok_s", 1.2))
    rows.append((f"prefill, no hooks {P}", "prefill_nohook", "tok_s", "cpu_tok_s", None))
    for b in a.decode_batches:
        k = f"decode_{b}"
        rows.append((f"greedy decode, batch {b}", k, "tok_s", "cpu_tok_s", 2.0 if b == 1 else None))
        rows.append((f"  prefill {a.prompt_len} + {a.new_tokens} new, batch {b}", k, "total_tok_s", "total_cpu_tok_s", None))

    w = max(len(r[0]) for r in rows)
    head = (f"{'tokens/s (median of rounds)':<{w}} | {'thinksteer':>10} | {'HF':>9} | {'ratio':>6} | {'best/best':>9} | "
            f"{'CPU-time':>8} | target")
    print()
    print(f"model: random Qwen2, {n_params:,} parameters, fp32, CPU; threads={a.threads}; {a.repeats} interleaved rounds; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    print(head)
    print("-" * len(head))
    ok = True
    for label, k, rate, cpu_rate, target in rows:
        v_ts, v_hf = ts[k][rate], hf[k][rate]
        ratio = med([x / y for x, y in zip(v_ts, v_hf)])  # per-round ratios: both engines ran back to back
        best = max(v_ts) / max(v_hf)
        cpu_ratio = med([x / y for x, y in zip(ts[k][cpu_rate], hf[k][cpu_rate])])
        t = ""
        if target is not None:
            met = ratio >= target
            ok = ok and met
            t = f">= {target}x: {'MET' if met else 'NOT MET'}"
        print(f"{label:<{w}} | {med(v_ts):>10,.1f} | {med(v_hf):>9,.1f} | {ratio:5.2f}x | {best:8.2f}x | {cpu_ratio:7.2f}x | {t}")
    print(f"{'':<{w}}   ratio: median of per-round ratios (wall clock); CPU-time: the same in tokens per CPU-second")

    print()
    util_min = 1.0
    for name, e in (("thinksteer", ts), ("HF", hf)):
        # Per round (the two prefills ran a few seconds apart), then the median.
        cost = med([x / y for x, y in zip(e["prefill_record"]["s"], e["prefill_nohook"]["s"])]) - 1
        steps = ", ".join(f"batch {b} {med(e[f'decode_{b}']['step_ms']):.2f} ms ({med(e[f'decode_{b}']['step_cpu_ms']):.2f} CPU-ms)"
                          for b in a.decode_batches)
        utils = [e[k]["cpu_util"] for k in e]
        util_min = min(util_min, min(utils))
        print(f"{name:>10}: recording adds {100 * cost:+.1f}% to the prefill; decode step {steps}; "
              f"busy {min(utils):.2f}-{max(utils):.2f} of {a.threads} thread(s)")
    print(f"load average before/after: {load[0]} / {load[1]}"
          + ("  -- busy well below 1: other work shared the cores, wall-clock numbers are unreliable (see README)"
             if util_min < 0.8 else ""))

    print()
    agree = True
    for b in a.decode_batches:
        k = f"decode_{b}"
        m = first_mismatch(ts[k]["tokens"], hf[k]["tokens"])
        if m:
            agree = False
            print(f"greedy tokens, batch {b}: FIRST MISMATCH at row {m[0]}, new token {m[1]}: thinksteer {m[2]} vs HF {m[3]}")
        else:
            print(f"greedy tokens, batch {b}: identical ({b} x {len(ts[k]['tokens'][0])} tokens)")
    print(f"targets {'MET' if ok else 'NOT MET'}; greedy outputs {'agree' if agree else 'DIFFER'}")
    return ok and agree


def report_profile(ts_prof: dict, hf_prof: dict, summ: dict, a) -> None:
    med = statistics.median
    for p in ts_prof.values():
        print()
        print(f"thinksteer, batch-{p['batch']} decode step as a bare forward (context {p['context']}+): {p['step_ms']:.2f} ms "
              f"wall (min {p['step_ms_min']:.2f}), {p['step_cpu_ms']:.2f} CPU-ms; with the op profiler "
              f"{p['step_ms_profiled']:.2f} ms, of which top-level ATen ops {p['top_level_ops_ms']:.2f} ms wall / "
              f"{p['top_level_ops_cpu_ms']:.2f} CPU-ms:")
        for o in p["ops"][:10]:
            print(f"    {o['op']:<38} {o['calls_per_step']:6.1f} calls {o['ms_per_step']:8.3f} ms {o['cpu_ms_per_step']:8.3f} CPU-ms")
    h = hf_prof
    print()
    print(f"HF, batch-1 decode step as a bare forward (DynamicCache, no generate): {h['forward_step_ms']:.2f} ms wall "
          f"(min {h['forward_step_ms_min']:.2f}), {h['forward_step_cpu_ms']:.2f} CPU-ms; under torch.profiler "
          f"{h['profiled_step_ms']:.2f} ms, of which ATen op self time {h['op_self_ms_per_step']:.2f} ms:")
    for o in h["top_ops"]:
        print(f"    {o['op']:<38} {o['calls_per_step']:6.1f} calls {o['self_ms_per_step']:8.3f} ms")

    # Batch-1 step split into weight matmuls and everything else, each engine from its own profile.
    p1 = ts_prof.get("1")
    if p1:
        # Wall ms on both sides (torch.profiler's times are wall times of the calling thread).
        ts_mm = sum(o["ms_per_step"] for o in p1["ops"] if o["op"] == "aten::linear")
        hf_mm = sum(o["self_ms_per_step"] for o in h["top_ops"] if o["op"] in ("aten::mm", "aten::addmm"))
        ts_step, hf_step = p1["step_ms"], h["forward_step_ms"]
        print()
        print(f"batch-1 decode step (bare forward, wall ms)   {'thinksteer':>10} {'HF':>8}")
        print(f"  total                                       {ts_step:10.2f} {hf_step:8.2f}")
        print(f"  weight matmuls (aten::linear | mm+addmm)    {ts_mm:10.2f} {hf_mm:8.2f}")
        print(f"  everything else                             {ts_step - ts_mm:10.2f} {hf_step - hf_mm:8.2f}")
        print("  (matmuls from each engine's profiler, everything else = bare step - matmuls; run at different moments)")
    print()
    for b in a.decode_batches:
        m = h["matmul_floor"][str(b)]
        e_ts, e_hf = summ["thinksteer"][f"decode_{b}"], summ["hf"][f"decode_{b}"]
        print(f"batch {b}: pure weight matmuls of one step ({m['weight_mb']:.0f} MB of weights): fused qkv/gate_up "
              f"{m['fused_ms']:.2f} ms ({m['fused_cpu_ms']:.2f} CPU-ms), HF's separate projections {m['separate_ms']:.2f} ms "
              f"({m['separate_cpu_ms']:.2f} CPU-ms); generate step thinksteer {med(e_ts['step_ms']):.2f} ms, "
              f"HF {med(e_hf['step_ms']):.2f} ms (measured at another moment: compare loosely)")


def report_prefill_profile(p: dict, h: dict) -> None:
    print()
    print(f"prefill [{p['batch']}x{p['len']}], no hooks, by op (median over {p['steps']} runs; wall ms)")
    print(f"  thinksteer: {p['step_ms']:.1f} ms (under its op profiler {p['step_ms_profiled']:.1f}); "
          f"HF under torch.profiler: {h['step_ms']:.1f} ms")
    ts_ops = {o["op"]: o for o in p["ops"]}
    hf_ops = {o["op"]: o for o in h["ops"]}
    # The same work under each engine's op names (thinksteer: top-level ops; HF: self times).
    groups = [("weight matmuls", ["aten::linear"], ["aten::mm", "aten::addmm", "aten::matmul", "aten::linear"]),
              ("attention (sdpa)", ["aten::scaled_dot_product_attention"], ["aten::_scaled_dot_product_flash_attention_for_cpu"]),
              ("silu", ["aten::silu"], ["aten::silu"]),
              ("mul", ["aten::mul"], ["aten::mul"]),
              ("add", ["aten::add"], ["aten::add"]),
              ("cat (rope)", ["aten::cat"], ["aten::cat"])]
    for name, ts_keys, hf_keys in groups:
        t = sum(ts_ops[k]["ms_per_step"] for k in ts_keys if k in ts_ops)
        hh = sum(hf_ops[k]["self_ms_per_step"] for k in hf_keys if k in hf_ops)
        print(f"    {name:<20} thinksteer {t:8.1f} ms   HF {hh:8.1f} ms")


def other_runnable(samples: int = 20, interval: float = 0.05) -> float:
    """Mean number of runnable threads on the machine besides this one (from /proc/stat), 0 if unknown."""
    try:
        counts = []
        for _ in range(samples):
            for line in Path("/proc/stat").read_text().splitlines():
                if line.startswith("procs_running"):
                    counts.append(int(line.split()[1]) - 1)
            time.sleep(interval)
        return statistics.mean(counts) if counts else 0.0
    except OSError:
        return 0.0


def pin_allocator_like_thinksteer() -> None:
    """This Python process's glibc malloc set as src/core/allocator.h sets thinksteer's (mallopt through ctypes)."""
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # malloc.h
    if libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 or libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) != 1:
        sys.exit("mallopt failed: cannot pin HF's allocator")


def apply_omp_wait_policy(policy: str) -> None:
    """Sets OMP_WAIT_POLICY for this process and the processes it starts, before torch (and its OpenMP
    runtime) is loaded. auto: inherit on an idle machine, PASSIVE when other work is running (spinning
    OpenMP threads then stall each other); inherit: leave the environment as it is. Shared with
    bench_basevec.py."""
    if policy == "auto":
        others = other_runnable()
        policy = "passive" if others >= 0.5 and "OMP_WAIT_POLICY" not in os.environ else "inherit"
        print(f"other runnable threads on this machine: {others:.1f} on {os.cpu_count()} cores -> "
              f"OMP_WAIT_POLICY {'PASSIVE' if policy == 'passive' else os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    if policy != "inherit":
        os.environ["OMP_WAIT_POLICY"] = policy.upper()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prefill-batch", type=int, default=None, help="default 4 (quick: 2)")
    ap.add_argument("--prefill-len", type=int, default=None, help="default 256 (quick: 32)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved timed rounds, default 3 (quick: 2)")
    ap.add_argument("--decode-batches", default="1,8")
    ap.add_argument("--new-tokens", type=int, default=None, help="default 128 (quick: 16)")
    ap.add_argument("--prompt-len", type=int, default=None, help="decode prompt length, default 128 (quick: 16)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--prefill-logits", choices=["all", "last", "none"], default="all",
                    help="logits the prefill computes (all: what model(ids) and run_with_cache return)")
    ap.add_argument("--quick", action="store_true", help="tiny model, few tokens: a smoke run (< 60 s)")
    ap.add_argument("--profile", action="store_true", help="also break down a batch-1 decode step in both engines")
    ap.add_argument("--profile-steps", type=int, default=24, help="decode steps per profile")
    ap.add_argument("--prefill-profile-steps", type=int, default=3, help="prefills per profile")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--binary", type=Path, default=ROOT / "build" / "bin" / "bench_engine")
    ap.add_argument("--json", type=Path, default=None, help="also write all raw timings here")
    ap.add_argument("--omp-wait-policy", choices=["auto", "inherit", "passive", "active"], default="auto",
                    help="OMP_WAIT_POLICY for both engines. inherit: leave the environment as it is; auto: inherit on "
                         "an idle machine, PASSIVE when other work is running (spinning OpenMP threads then stall "
                         "each other); see README")
    ap.add_argument("--hf-allocator", choices=["default", "pinned", "both"], default="default",
                    help="HF's process with glibc's default malloc, or with the settings thinksteer pins in code "
                         "(src/core/allocator.h: heap blocks up to 32 MiB, no trim below 1 GiB), or both: every round "
                         "with the default first, then the prefill rounds again after pinning (glibc cannot unpin)")
    ap.add_argument("--llamacpp", action="store_true",
                    help="also time llama.cpp (llama-batched-bench, llama-bench) on the same model as F32 GGUF, same "
                         "threads, once per round; needs bench/llamacpp.sh to have been run (see bench/llamacpp_peer.py)")
    a = ap.parse_args()
    apply_omp_wait_policy(a.omp_wait_policy)
    if a.hf_allocator == "pinned":
        pin_allocator_like_thinksteer()

    q = a.quick
    defaults = dict(prefill_batch=(2, 4), prefill_len=(32, 256), repeats=(2, 3), new_tokens=(16, 128), prompt_len=(16, 128))
    for k, (quick, full) in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, quick if q else full)
    a.decode_batches = [int(x) for x in a.decode_batches.split(",") if x]
    if q:
        a.profile_steps = min(a.profile_steps, 8)
    shape = QUICK_SHAPE if q else FULL_SHAPE
    model_dir = a.model_dir or ROOT / "build" / "bench" / ("qwen2_tiny" if q else "qwen2_100m")
    if not a.binary.exists():
        raise SystemExit(f"{a.binary} not found: build it with `ninja -C build bench_engine`")

    t0 = time.perf_counter()
    n_params = make_model(model_dir, shape)
    peer = None
    if a.llamacpp:
        import llamacpp_peer  # bench/, next to this file
        peer = llamacpp_peer.LlamaCppPeer(model_dir, a)  # exits with a message when the build or the GGUF is missing
    print(f"model {model_dir}: {n_params:,} parameters ({', '.join(f'{k}={v}' for k, v in shape.items())})", flush=True)
    load_before = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    ts = ThinksteerWorker(a.binary, model_dir, a)
    try:
        from hf_engine import HfRunner  # imports torch: only when HF runs
        hf = HfRunner(model_dir, a)
        if ts.threads != hf.threads:
            raise SystemExit(f"thread counts differ: thinksteer {ts.threads}, HF {hf.threads}")
        res = run_interleaved(ts, hf, a, peer)
        res_pinned = None
        a_prefill = argparse.Namespace(**{**vars(a), "decode_batches": []})  # the prefill measurements only
        if a.hf_allocator == "both":  # the same prefill rounds against HF with thinksteer's allocator settings
            pin_allocator_like_thinksteer()
            res_pinned = run_interleaved(ts, hf, a_prefill)
        prof = None
        if a.profile:
            prof = ({str(b): ts.cmd(f"profile {a.profile_steps} {b}") for b in a.decode_batches}, hf.profile(a.profile_steps),
                    ts.cmd(f"profile prefill {a.prefill_profile_steps}"), hf.profile_prefill(a.prefill_profile_steps))
    finally:
        ts.close()
    load_after = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"done in {time.perf_counter() - t0:.0f} s")

    summ = summarise(res, a)
    peer_out = None
    if peer is not None:
        peer_out = {"rounds": peer.rounds, "llama_bench": peer.llama_bench()}
    if a.json:
        out = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
               "n_params": n_params, "raw": res, "profile": prof}
        if peer_out is not None:
            out["llamacpp"] = peer_out
        a.json.write_text(json.dumps(out, indent=1))
    ok = report(summ, a, n_params, (load_before, load_after))
    if res_pinned is not None:
        print("\nthe prefill rounds again, HF with thinksteer's allocator settings (mallopt, as src/core/allocator.h):")
        report(summarise(res_pinned, a_prefill), a_prefill, n_params, (load_before, load_after))
    if peer is not None:
        llamacpp_peer.report(summ["thinksteer"], llamacpp_peer.summarise(peer.rounds, a), peer_out["llama_bench"], peer.gguf, a,
                             peer.silent_runs)
    if prof:
        report_profile(prof[0], prof[1], summ, a)
        report_prefill_profile(prof[2], prof[3])
    return 0 if ok or q else 1


if __name__ == "__main__":
    sys.exit(main())
