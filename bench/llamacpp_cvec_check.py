#!/usr/bin/env python3
"""Control-vector check: thinksteer's steered greedy generations against llama.cpp with thinksteer's GGUF export.

    .venv/bin/python bench/llamacpp_cvec_check.py [--prompts 5] [--layer 2] [--coef 3] [--threads 2]

Needs bench/llamacpp.sh (llama-completion and build/llamacpp/models/toy-thinker-f32.gguf). On the toy thinker
(configs/demo.ini), under build/bench/cvec/:

 1. Vectors: `thinksteer vectors --vectors.gguf true`, once with --vectors.gguf_layer_map same-block and once with
    next-block, from the generations and spans of bench_steer.py's run (build/bench/steer/vectors_run) when it
    exists, else of a generate + annotate run made here (build/bench/cvec/run). The check reads both GGUF files
    back (pip gguf) and compares their direction.N tensors with vectors.h5.
 2. thinksteer, greedy, --generate.max_new_tokens (384, the demo's), one prompt per batch, on the first
    --prompts prompts of builtin:toy-test: `thinksteer generate` (unsteered: text and token ids) and
    `thinksteer sweep plan/run` with c = --coef at all positions (--sweep.positions all) of
    blocks.{L}.hook_resid_post (texts and token counts from the task files):
      ts v[L]@L    the backtracking vector of layer L added at layer L (vectors.h5)
      ts v[L]@L+1  the vector of layer L added one block late, at layer L+1
      ts v[L-1]@L  the vector of layer L-1 added at layer L
    The last two use a copy of vectors.h5 whose backtracking vector at layer l is the one of layer l-1 (what a
    next-block file holds in llama.cpp's slot l).
 3. llama.cpp: `llama-completion` on the same prompt text (thinksteer's chat format, the BOS written as text;
    the GGUF has add_bos_token false; no chat template: -no-cnv), --temp 0 --top-k 1, -n max_new_tokens,
    --no-context-shift, fp32 KV cache, no flash attention (-fa off; --flash-attn), --control-vector-scaled FILE:coef
    --control-vector-layer-range A B.
    Its token ids come from its session file (--prompt-cache ... --prompt-cache-all: prompt + generated ids), its
    text from stdout (-sp: the EOS is printed as text, as thinksteer's texts have it).

Expected, prompt by prompt (exit status 1 otherwise):
    llama.cpp, no control vector           = thinksteer unsteered          (text and all token ids)
    same-block file, range L L             = ts v[L]@L                     (text and token count)
    next-block file, range L+1 L+1         = ts v[L]@L+1 (one block late)
    next-block file, range L L             = ts v[L-1]@L
Also printed: how often the next-block file with range L L differs from ts v[L]@L.

A pair that differs is looked at where it parts: HF transformers (fp32, the same vector added by a forward hook on
decoder layer l) scores the common prefix. When llama.cpp's token and thinksteer's are HF's two best with logits
closer than --tie-tol, the prompt counts as a tie (two engines' fp32 rounding on either side of a near-tie), is
printed as such and does not fail the check; --strict fails it too.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import llamacpp_peer as lp

ROOT = lp.ROOT
TS = ROOT / "build" / "bin" / "thinksteer"
WORK = ROOT / "build" / "bench" / "cvec"
DEMO = ROOT / "configs" / "demo.ini"
LABEL = "backtracking"
DATASET = "builtin:toy-test"


def sh(*args, env=None) -> str:
    r = subprocess.run([str(x) for x in args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r.stdout


def vectors_run(a, env) -> Path:
    """Generations + spans to measure vectors on: bench_steer.py's run when it is there, else one made here."""
    steer = ROOT / "build" / "bench" / "steer" / "vectors_run"
    if (steer / "annotate" / "spans.h5.done").exists() and (steer / "generate" / "generations.jsonl").exists():
        return steer
    run = WORK / "run"
    for stage, done in (("generate", "generations.h5.done"), ("annotate", "spans.h5.done")):
        if not (run / stage / done).exists():
            print(f"thinksteer {stage} --config configs/demo.ini --run.dir {run}", flush=True)
            sh(TS, stage, "--config", DEMO, "--run.threads", a.threads, "--run.dir", run, env=env)
    return run


def export_vectors(src: Path, layer_map: str, a, env) -> Path:
    """thinksteer vectors with GGUF export under WORK/vectors-<map>; returns the vectors directory."""
    d = WORK / f"vectors-{layer_map}"
    out = d / "vectors"
    if not (out / "vectors.h5.done").exists() or not (out / f"{LABEL}.gguf").exists():
        print(f"thinksteer vectors --vectors.gguf true --vectors.gguf_layer_map {layer_map} -> {out}", flush=True)
        sh(TS, "vectors", "--config", DEMO, "--run.threads", a.threads, "--run.dir", d,
           "--vectors.generations", src / "generate" / "generations.jsonl", "--vectors.spans", src / "annotate" / "spans.h5",
           "--vectors.gguf", "true", "--vectors.gguf_layer_map", layer_map, env=env)
    return out


def read_vectors(h5: Path):
    import h5py
    import numpy as np
    with h5py.File(h5) as f:
        names = [x.decode() if isinstance(x, bytes) else x for x in f["names"][:]]
        return np.asarray(f["vectors"][names.index(LABEL)]), [int(x) for x in f["layers"][:]]


def check_gguf(path: Path, v, shift: int) -> str:
    """direction.N of the file against vectors.h5's rows: N = layer + shift."""
    import numpy as np
    from gguf import GGUFReader
    r = GGUFReader(str(path))
    got = {int(t.name.split(".")[1]): np.asarray(t.data, dtype=np.float32).reshape(-1) for t in r.tensors}
    diffs = [float(np.abs(got[l + shift] - v[l]).max()) for l in range(len(v)) if l + shift in got]
    lm = r.fields["thinksteer.layer_map"].contents() if "thinksteer.layer_map" in r.fields else "?"
    return (f"{path.name} ({lm}): direction.{min(got)}..{max(got)}, direction.N = vectors.h5 layer N-{shift}: "
            f"max |diff| {max(diffs):.3g} over {len(diffs)} tensors")


def shifted_vectors(src_h5: Path, dst_h5: Path) -> None:
    """A copy of vectors.h5 whose LABEL vector at layer l is the one of layer l-1 (zero, count 0, at layer 0)."""
    import h5py
    dst_h5.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src_h5, dst_h5)
    with h5py.File(dst_h5, "r+") as f:
        names = [x.decode() if isinstance(x, bytes) else x for x in f["names"][:]]
        k = names.index(LABEL)
        v, c = f["vectors"][k], f["counts"][k]
        v[1:], v[0] = v[:-1].copy(), 0
        c[1:], c[0] = c[:-1].copy(), 0
        f["vectors"][k], f["counts"][k] = v, c


def ts_generate(a, env) -> dict:
    """Unsteered thinksteer generations of the prompts: {id: {prompt_text, token_ids, text}} (made afresh: the
    binary may have changed since the last run)."""
    d = WORK / "generate"
    shutil.rmtree(d, ignore_errors=True)
    sh(TS, "generate", "--config", DEMO, "--run.threads", a.threads, "--run.dir", d, "--data.prompts", DATASET,
       "--data.limit", a.prompts, "--generate.max_new_tokens", a.max_new_tokens, "--generate.batch_size", 1, env=env)
    return {r["id"]: r for r in map(json.loads, (d / "generate" / "generations.jsonl").read_text().splitlines())}


def ts_sweep(name: str, vectors_h5: Path, layers: list[int], a, env) -> dict:
    """thinksteer sweep (plan + run of every vector task): {layer: {id: (text, new_tokens, token ids or None)}}; the
    ids from /prompts/tokens (task files of schema 2 on; older ones have no ids)."""
    import h5py
    d = WORK / f"sweep-{name}"
    shutil.rmtree(d, ignore_errors=True)
    args = ["--config", DEMO, "--run.threads", a.threads, "--run.dir", d, "--data.prompts", DATASET, "--data.limit", a.prompts,
            "--sweep.datasets", DATASET, "--steer.vectors", vectors_h5, "--sweep.vectors", LABEL,
            "--sweep.layers", ",".join(map(str, layers)), "--sweep.coefficients", a.coef, "--sweep.controls", "none",
            "--sweep.positions", "all", "--steer.save_text", "true", "--generate.max_new_tokens", a.max_new_tokens,
            "--generate.batch_size", 1]
    sh(TS, "sweep", "plan", *args, env=env)
    out = {}
    for row in map(json.loads, (d / "sweep" / "manifest.jsonl").read_text().splitlines()):
        if row["kind"] != "vector":
            continue
        sh(TS, "sweep", "run", *args, "--task-id", row["task"], env=env)
        with h5py.File(d / "sweep" / "tasks" / f"{row['key']}.h5") as f:
            ids = [x.decode() if isinstance(x, bytes) else x for x in f["prompts/id"][:]]
            texts = [x.decode() if isinstance(x, bytes) else x for x in f["prompts/text"][:]]
            toks = None
            if "prompts/tokens" in f:
                flat, off = f["prompts/tokens"][:], f["prompts/token_offset"][:]
                toks = [[int(x) for x in flat[off[i]:off[i + 1]]] for i in range(len(ids))]
            out[row["layers"][0]] = {i: (t, int(n), toks[k] if toks else None)
                                     for k, (i, t, n) in enumerate(zip(ids, texts, f["prompts/new_tokens"][:]))}
    return out


SESSION_MARK = "\nllama_completion: saving final output to session file"
RERUNS = [0]  # llama-completion runs repeated because their output was cut short


def llama_generate(prompt: str, cvec: Path | None, rng: tuple[int, int] | None, a, tag: str) -> dict:
    """llama-completion, greedy: {"text", "ids" (prompt + generated, from the session file), "eos"}."""
    sess = WORK / "llama" / f"{tag}.session"
    sess.parent.mkdir(parents=True, exist_ok=True)
    sess.unlink(missing_ok=True)  # an existing session file would be reused as a prompt cache
    cmd = [lp.binary("llama-completion"), "-m", lp.TOY_GGUF, "-p", prompt, "--no-escape", "-n", a.max_new_tokens,
           "--temp", 0, "--top-k", 1, "--seed", 0, "-no-cnv", "--no-context-shift", "-c", 1024, "-t", a.threads,
           "-ctk", "f32", "-ctv", "f32", "-fa", a.flash_attn, "--no-display-prompt", "-sp", "--no-warmup",
           "--prompt-cache", sess, "--prompt-cache-all"]
    if cvec is not None:
        cmd += ["--control-vector-scaled", f"{cvec}:{a.coef}", "--control-vector-layer-range", rng[0], rng[1]]
    for attempt in range(5):
        # llama.cpp's logger (common/log.cpp) is a never-destroyed singleton that writes from a worker thread: what
        # is still queued when the process exits is lost (its comment says so). The session line comes after the
        # generated text in the same queue, so a run whose output has it printed the whole text; else run it again.
        sess.unlink(missing_ok=True)
        r = subprocess.run([str(x) for x in cmd], capture_output=True)
        if r.returncode != 0:
            sys.exit(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stderr.decode(errors='replace')[-3000:]}")
        out = r.stdout.decode("utf-8", errors="surrogateescape")
        if SESSION_MARK in out:
            break
        RERUNS[0] += 1
    else:
        sys.exit(f"llama-completion: no session line in its output in 5 runs:\n{out[-2000:]}")
    text = out[:out.rindex(SESSION_MARK)]
    eos = text.endswith(" [end of text]\n")
    if eos:
        text = text[:-len(" [end of text]\n")]
    raw = sess.read_bytes()
    magic, version, n = struct.unpack_from("<III", raw, 0)
    if magic != 0x6767736E:
        sys.exit(f"{sess}: not a llama.cpp session file")
    ids = list(struct.unpack_from(f"<{n}i", raw, 12))
    return {"text": text, "ids": ids, "eos": eos}


class HfArbiter:
    """HF transformers on the toy thinker: the top two logits after a prefix, with c * v added at a layer's output."""

    def __init__(self, a):
        import torch
        from transformers import Qwen2ForCausalLM
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
        torch.set_num_threads(a.threads)
        self.torch, self.coef = torch, float(a.coef)
        self.model = Qwen2ForCausalLM.from_pretrained(ROOT / "models" / "toy-thinker", dtype=torch.float32).eval()

    def top2(self, ids: list[int], vec, layer: int | None) -> tuple[list[int], list[float]]:
        torch = self.torch
        hook = None
        if layer is not None:
            d = self.coef * torch.tensor(vec)
            hook = self.model.model.layers[layer].register_forward_hook(
                lambda m, i, o: (o[0] + d,) + tuple(o[1:]) if isinstance(o, tuple) else o + d)
        try:
            with torch.inference_mode():
                logits = self.model(torch.tensor([ids])).logits[0, -1]
        finally:
            if hook is not None:
                hook.remove()
        top = torch.topk(logits, 2)
        return top.indices.tolist(), top.values.tolist()


def explain(arb: HfArbiter, tok, prompt_ids: list[int], llama_new: list[int], ts_text: str, vec, layer, tol: float) -> tuple[bool, str]:
    """Where llama.cpp's ids stop spelling thinksteer's text: (is a near-tie, description)."""
    k = 0
    while k < len(llama_new) and ts_text.startswith(tok.decode(llama_new[:k + 1], skip_special_tokens=False)):
        k += 1
    if k == len(llama_new):
        return False, f"llama.cpp's {k} tokens are a prefix of thinksteer's text"
    (t1, t2), (l1, l2) = arb.top2(prompt_ids + llama_new[:k], vec, layer)
    prefix = tok.decode(llama_new[:k], skip_special_tokens=False)
    ts_follows = ts_text.startswith(prefix + tok.decode([t1], skip_special_tokens=False))
    tie = llama_new[k] == t2 and ts_follows and l1 - l2 < tol
    return tie, (f"new token {k}: llama.cpp {llama_new[k]} {tok.decode([llama_new[k]])!r}; HF's best {t1} {tok.decode([t1])!r} "
                 f"(thinksteer's text {'continues with it' if ts_follows else 'does NOT continue with it'}), second {t2} "
                 f"{tok.decode([t2])!r}, logit margin {l1 - l2:.2e}")


def first_diff(x: str, y: str) -> int:
    for i, (u, v) in enumerate(zip(x, y)):
        if u != v:
            return i
    return min(len(x), len(y))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=5)
    ap.add_argument("--layer", type=int, default=2, help="L (>= 1: llama.cpp cannot steer block 0)")
    ap.add_argument("--coef", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=384, help="the demo's generate.max_new_tokens")
    ap.add_argument("--flash-attn", choices=["off", "on", "auto"], default="off",
                    help="llama.cpp's -fa (its CPU flash attention rounds differently from thinksteer: on the toy model "
                         "it moved a greedy token at a 9e-3 logit margin)")
    ap.add_argument("--tie-tol", type=float, default=2e-3, help="logit margin below which a parting is a near-tie")
    ap.add_argument("--strict", action="store_true", help="near-ties fail the check too")
    a = ap.parse_args()
    a.coef = f"{a.coef:g}"
    err = lp.missing(lp.binary("llama-completion"), lp.TOY_GGUF, TS)
    if err:
        raise SystemExit(err)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    L = a.layer
    WORK.mkdir(parents=True, exist_ok=True)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(ROOT / "models" / "toy-thinker" / "tokenizer.json"))

    # 1. vectors and their GGUF files
    src = vectors_run(a, env)
    same_dir, next_dir = export_vectors(src, "same-block", a, env), export_vectors(src, "next-block", a, env)
    v, layers = read_vectors(same_dir / "vectors.h5")
    v_next, _ = read_vectors(next_dir / "vectors.h5")
    print(f"vectors from {src}: {LABEL} at layers {layers}; the two runs' vectors.h5 "
          f"{'agree' if (v == v_next).all() else 'DIFFER'}")
    print("  " + check_gguf(same_dir / f"{LABEL}.gguf", v, 0))
    print("  " + check_gguf(next_dir / f"{LABEL}.gguf", v, 1))
    shifted = WORK / "shifted" / "vectors.h5"
    shifted_vectors(same_dir / "vectors.h5", shifted)

    # 2. thinksteer
    print(f"thinksteer: {a.prompts} prompts of {DATASET}, greedy, max {a.max_new_tokens} new tokens, c = {a.coef} at all "
          f"positions, {a.threads} threads", flush=True)
    gen = ts_generate(a, env)
    ts_v = ts_sweep("v", same_dir / "vectors.h5", [L], a, env)[L]
    ts_shift = ts_sweep("shifted", shifted, [L, L + 1], a, env)
    refs = {"none": {i: (g["text"], g["n_new_tokens"], g["token_ids"]) for i, g in gen.items()},
            f"v[{L}]@{L}": ts_v, f"v[{L}]@{L + 1}": ts_shift[L + 1], f"v[{L - 1}]@{L}": ts_shift[L]}
    steering = {"none": (None, None), f"v[{L}]@{L}": (v[L], L), f"v[{L}]@{L + 1}": (v[L], L + 1), f"v[{L - 1}]@{L}": (v[L - 1], L)}

    # 3. llama.cpp
    configs = {"none": (None, None), f"same-block {L} {L}": (same_dir / f"{LABEL}.gguf", (L, L)),
               f"next-block {L + 1} {L + 1}": (next_dir / f"{LABEL}.gguf", (L + 1, L + 1)),
               f"next-block {L} {L}": (next_dir / f"{LABEL}.gguf", (L, L))}
    pairs = [("none", "none", True), (f"same-block {L} {L}", f"v[{L}]@{L}", True),
             (f"next-block {L + 1} {L + 1}", f"v[{L}]@{L + 1}", True), (f"next-block {L} {L}", f"v[{L - 1}]@{L}", True),
             (f"next-block {L} {L}", f"v[{L}]@{L}", False)]
    ids = list(gen)
    prompt_ok = True
    results: dict = {c: {} for c in configs}
    for n, pid in enumerate(ids):
        prompt = gen[pid]["prompt_text"]
        p_ids = tok.encode(prompt, add_special_tokens=False).ids
        for c, (f, rng) in configs.items():
            r = llama_generate(prompt, f, rng, a, f"{n}-{c.replace(' ', '_')}")
            if r["ids"][:len(p_ids)] != p_ids:
                prompt_ok = False
                print(f"  {pid}: llama.cpp's prompt ids differ from the HF tokenizer's: {r['ids'][:len(p_ids)]} vs {p_ids}")
            r["new_ids"] = r["ids"][len(p_ids):]
            results[c][pid] = r

    # 4. compare
    print()
    print(f"prompt ids (llama.cpp session file vs HF tokenizers on thinksteer's prompt text): "
          f"{'identical' if prompt_ok else 'DIFFERENT'} on {len(ids)} prompts")
    head = f"{'llama.cpp (file, layer range)':<29} | {'thinksteer (vector@layer)':<25} | " + " | ".join(f"{i:<12}" for i in ids) + " | result"
    print(head)
    print("-" * len(head))
    ok = prompt_ok
    arb, notes = None, []
    for c, ref, expect_same in pairs:
        cells, n_same, n_tie = [], 0, 0
        for pid in ids:
            r, (t_text, t_n, t_ids) = results[c][pid], refs[ref][pid]
            same_text = r["text"] == t_text
            same_n = len(r["new_ids"]) == t_n
            if t_ids is not None:
                has_ids = True
                same_ids = r["new_ids"] == t_ids
            else:
                has_ids = False
                same_ids = tok.decode(r["new_ids"], skip_special_tokens=False) == t_text
            if same_text and same_n and same_ids:
                n_same += 1
                cells.append(f"same {t_n:>3}t")
                continue
            cell = f"diff @{first_diff(r['text'], t_text)}c"
            if expect_same:
                arb = arb or HfArbiter(a)
                tie, why = explain(arb, tok, r["ids"][:len(r["ids"]) - len(r["new_ids"])], r["new_ids"], t_text, *steering[ref], a.tie_tol)
                n_tie += tie
                cell = f"tie @{first_diff(r['text'], t_text)}c" if tie else cell
                notes.append(f"  {c} vs ts {ref}, {pid}: {'near-tie' if tie else 'MISMATCH'} at {why}")
            cells.append(cell)
        verdict = f"{n_same}/{len(ids)} identical"
        if expect_same:
            bad = len(ids) - n_same - (0 if a.strict else n_tie)
            ok &= bad == 0
            verdict += (f", {n_tie} near-tie" if n_tie else "") + ("  MISMATCH" if bad else "")
        else:
            verdict += " (expected to differ)"
        print(f"{c:<29} | {ref:<25} | " + " | ".join(f"{x:<12}" for x in cells) + f" | {verdict}")
    print("same NNNt: text, token count and token ids agree (NNN new tokens, EOS included; " +
          ("ids: thinksteer's from generations.jsonl and the sweep task files" if has_ids else
           "ids: thinksteer's for 'none'; the task files hold no ids, so llama.cpp's ids decoded must give thinksteer's text") +
          "); diff/tie @Kc: the texts part at character K (tie: at a near-tie)")
    for n in notes:
        print(n)
    if RERUNS[0]:
        print(f"({RERUNS[0]} llama-completion run(s) lost the end of their output at exit and were repeated)")
    print(f"control-vector check: {'PASSED' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
