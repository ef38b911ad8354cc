#!/usr/bin/env python3
"""ThinkEdit benchmark: thinksteer's two ThinkEdit operations against the reference Python code, in one run.

    .venv/bin/python bench/bench_thinkedit.py                 # a few minutes on 2 cores
    .venv/bin/python bench/bench_thinkedit.py --quick         # smoke run (< 1 minute)
    .venv/bin/python bench/bench_thinkedit.py --threads 1 --json out.json

1. alpha sweep point (docs/algorithms.md §C.3, all-layer steering). alpha * length[l] added to every
   layer's MLP output (blocks.{l}.hook_mlp_out) at all positions, on the shipped toy thinker
   (models/toy-thinker) over the first N problems of builtin:toy-test, greedy, up to M new tokens:
     thinksteer  the whole `thinksteer sweep run --task-id 1` process (model load, batched generation
                 with the edit on a HookSet, lexicon annotation, answer checks, HDF5 output) of a plan
                 written once per round (`sweep plan`: task 0 is the baseline, task 1 the point);
     HF          transformers' `generate` with a forward hook on every decoder layer's `mlp` module
                 adding alpha * length[l] to its output; generation alone (the model is loaded once),
                 (a) batched like thinksteer (same batch size, same length-sorted batches, left padding)
                 and (b) batch 1, the paper's loop of one `generate` per prompt, on an evenly spaced
                 subset of the prompts, its time scaled to all N (stated in the output).
   The direction is real: the driver makes it once under build/bench/thinkedit/direction/
   (`thinksteer generate` on 200 training problems, then `thinksteer thinkedit direction
   --thinkedit.split percentile`; its mlp.h5 holds "length", "mean.long", "mean.short").
   The steered texts of HF are compared with thinksteer's (reported, not asserted: batching may
   legitimately flip a near-tie in fp32).

2. The weight edit (§C.5) on the ~98M random Qwen2 of bench_engine.py (12 layers, 12 heads, d 768,
   fp32 safetensors; bench_engine.make_model caches it in build/bench/qwen2_100m/; the toy tokenizer
   is added next to symlinks of it, since thinksteer fingerprints a checkpoint by config + tokenizer).
   The attn direction file ([3, L, D]: length = mean.long - mean.short, random, seeded) is written
   with h5py in io/vectors.h's layout, because a random model never closes </think> and so cannot
   yield one. --heads heads spread over all layers are edited:
     thinksteer  the whole `thinksteer thinkedit edit` process into a fresh directory (it also hashes
                 every output file for edit.json and copies the tokenizer);
     HF          the paper's loop in fp32 torch: from_pretrained, for each head
                 W[:, slice] -= v (v^T W[:, slice]) with v = direction[l] / |direction[l]|,
                 save_pretrained(safe_serialization=True); timed in this process (imports excluded:
                 the conservative ratio) and as a fresh Python script (start-up and imports included:
                 what running the reference actually costs).
   Once, the two edited checkpoints are compared: every o_proj tensor within 1e-6 (exit 1 if not),
   the other tensors identical.

Each round times every measurement once per side, alternating which side goes first (load from other
work hits both alike). ratio = median over rounds of HF seconds / thinksteer seconds (> 1: thinksteer
faster). Same thread count everywhere (--threads: --run.threads and OMP_NUM_THREADS for thinksteer,
torch.set_num_threads for HF). --omp-wait-policy as in bench_engine.py. No targets are asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_engine  # noqa: E402  (make_model, shapes, OMP wait policy; imports no torch at load time)

BIN = ROOT / "build" / "bin" / "thinksteer"
TOY = ROOT / "models" / "toy-thinker"
DEMO = ROOT / "configs" / "demo.ini"
WORK = ROOT / "build" / "bench" / "thinkedit"
VEC_NAME = "length"


sh, timed = bench_engine.sh, bench_engine.timed  # a process, checked; timed (wall, CPU)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------------------------------------
# 1. The alpha sweep point

def direction_run(a, env) -> Path:
    """build/bench/thinkedit/direction: generate (200 toy-train problems, demo settings) + thinkedit
    direction. Both stages skip when their outputs are complete for the config."""
    d = WORK / "direction"
    sh(BIN, "generate", "--config", DEMO, "--run.dir", d, "--data.limit", 200, "--run.threads", a.threads, env=env)
    sh(BIN, "thinkedit", "direction", "--config", DEMO, "--run.dir", d, "--thinkedit.split", "percentile",
       "--run.threads", a.threads, env=env)
    return d / "thinkedit" / "mlp.h5"


def bench_sweep(a, env) -> dict:
    import h5py
    import torch
    from tokenizers import Tokenizer
    from transformers import Qwen2ForCausalLM

    t_setup = time.perf_counter()
    mlp_h5 = direction_run(a, env)
    base = ["--config", DEMO, "--run.threads", a.threads, "--generate.max_new_tokens", a.max_new_tokens,
            "--generate.batch_size", a.batch]
    sweep = [*base, "--data.limit", a.prompts, "--steer.vectors", mlp_h5, "--sweep.vectors", VEC_NAME,
             "--sweep.layers", "all", "--sweep.hooks", "hook_mlp_out", "--sweep.coefficients", a.alpha,
             "--sweep.controls", "none", "--sweep.positions", "all", "--sweep.datasets", "builtin:toy-test"]

    # The prompts the task generates for: builtin:toy-test, chat-formatted (generate writes prompt_text).
    ref = WORK / f"prompts_{a.prompts}"
    sh(BIN, "generate", "--config", DEMO, "--run.threads", a.threads, "--run.dir", ref, "--data.prompts",
       "builtin:toy-test", "--data.limit", a.prompts, "--generate.max_new_tokens", 1, env=env)
    rows = [json.loads(x) for x in (ref / "generate" / "generations.jsonl").read_text().splitlines()]
    prompt_ids_ = [r["id"] for r in rows]

    torch.set_num_threads(a.threads)
    tok = Tokenizer.from_file(str(TOY / "tokenizer.json"))
    model = Qwen2ForCausalLM.from_pretrained(TOY, dtype=torch.float32).eval()
    eos = json.loads((TOY / "config.json").read_text())["eos_token_id"]
    with h5py.File(mlp_h5) as f:
        names = [x.decode() if isinstance(x, bytes) else x for x in f["names"][:]]
        layers = [int(x) for x in f["layers"][:]]
        vecs = torch.tensor(f["vectors"][names.index(VEC_NAME)], dtype=torch.float32)  # [L, D]
        hooks_attr = f.attrs["hook_applied"]
    n_layer = model.config.num_hidden_layers
    assert layers == list(range(n_layer)), (layers, n_layer)
    shift = [(a.alpha * vecs[i]).to(torch.float32) for i in range(n_layer)]
    for l in range(n_layer):
        model.model.layers[l].mlp.register_forward_hook(lambda _m, _i, out, s=shift[l]: out + s)
    ids = [tok.encode(r["prompt_text"], add_special_tokens=False).ids for r in rows]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # thinksteer's stable length sort
    n_b1 = min(a.b1_prompts, len(ids))
    subset = sorted({round(k * len(ids) / n_b1) for k in range(n_b1)})
    gen_kw = dict(max_new_tokens=a.max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=eos)

    def until_eos(row: list[int]) -> list[int]:
        return row[:row.index(eos) + 1] if eos in row else row

    def run_hf_batched():
        texts = [None] * len(ids)
        t0, c0, new = time.perf_counter(), time.process_time(), 0
        for b in range(0, len(order), a.batch):
            chunk = order[b:b + a.batch]
            n = max(len(ids[i]) for i in chunk)
            x = torch.tensor([[eos] * (n - len(ids[i])) + ids[i] for i in chunk])
            mask = torch.tensor([[0] * (n - len(ids[i])) + [1] * len(ids[i]) for i in chunk])
            with torch.inference_mode():
                out = model.generate(x, attention_mask=mask, **gen_kw)
            for i, row in zip(chunk, out[:, n:].tolist()):
                g = until_eos(row)
                new += len(g)
                texts[i] = g
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        return dict(s=dt, cpu=cpu, new=new, texts=[tok.decode(t, skip_special_tokens=False) for t in texts])

    def run_hf_b1():
        texts = {}
        t0, c0, new = time.perf_counter(), time.process_time(), 0
        for i in subset:
            with torch.inference_mode():
                out = model.generate(torch.tensor([ids[i]]), **gen_kw)
            g = until_eos(out[0, len(ids[i]):].tolist())
            new += len(g)
            texts[i] = g
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        return dict(s=dt, cpu=cpu, new=new, texts={i: tok.decode(t, skip_special_tokens=False) for i, t in texts.items()})

    def run_ts(k):
        d = WORK / f"sweep_round{k}"
        shutil.rmtree(d, ignore_errors=True)
        sh(BIN, "sweep", "plan", *sweep, "--run.dir", d, env=env)
        manifest = [json.loads(x) for x in (d / "sweep" / "manifest.jsonl").read_text().splitlines()]
        point = [m for m in manifest if m["kind"] != "baseline"]
        assert len(point) == 1 and point[0]["task"] == 1 and point[0]["hook"] == "hook_mlp_out", manifest
        s, cpu = timed(BIN, "sweep", "run", *sweep, "--run.dir", d, "--task-id", 1, env=env)
        with h5py.File(d / "sweep" / "tasks" / f"{point[0]['key']}.h5") as f:
            new = int(f["prompts/new_tokens"][:].sum())
            by_id = dict(zip([x.decode() for x in f["prompts/id"][:]], [x.decode() for x in f["prompts/text"][:]]))
        return dict(s=s, cpu=cpu, new=new, texts=[by_id.get(p) for p in prompt_ids_], layers=point[0]["layers"])

    with torch.inference_mode():  # warm-up, outside the timing (HF's model load is excluded too)
        model.generate(torch.tensor([ids[0]]), max_new_tokens=2, do_sample=False, eos_token_id=eos, pad_token_id=eos)
    setup_s = time.perf_counter() - t_setup
    print(f"[sweep] setup (direction run, prompts, HF load) {setup_s:.1f} s; direction {mlp_h5} ({hooks_attr}), "
          f"HF batch 1 on {len(subset)} of {len(ids)} prompts", flush=True)

    rounds = []
    for k in range(a.rounds):
        ts_first = k % 2 == 0
        res = {}
        for side in (["ts", "hf_batched", "hf_b1"] if ts_first else ["hf_batched", "hf_b1", "ts"]):
            res[side] = run_ts(k) if side == "ts" else run_hf_batched() if side == "hf_batched" else run_hf_b1()
        ts, hb, h1 = res["ts"], res["hf_batched"], res["hf_b1"]
        h1["s_scaled"] = h1["s"] * len(ids) / len(subset)
        rounds.append(res)
        print(f"[sweep] round {k} ({'thinksteer' if ts_first else 'HF'} first): thinksteer {ts['s']:.2f} s "
              f"({ts['new'] / ts['s']:.0f} new tok/s); HF batch {a.batch} {hb['s']:.2f} s ({hb['new'] / hb['s']:.0f} tok/s), "
              f"ratio {hb['s'] / ts['s']:.2f}; HF batch 1 {h1['s']:.2f} s on {len(subset)} prompts "
              f"({h1['new'] / h1['s']:.0f} tok/s) -> {h1['s_scaled']:.2f} s for {len(ids)}, ratio {h1['s_scaled'] / ts['s']:.2f}",
              flush=True)

    last = rounds[-1]
    ts_texts = last["ts"]["texts"]
    agree_batched = sum(t == h for t, h in zip(ts_texts, last["hf_batched"]["texts"]))
    agree_b1 = sum(ts_texts[i] == h for i, h in last["hf_b1"]["texts"].items())
    first_diff = next((prompt_ids_[i] for i, (t, h) in enumerate(zip(ts_texts, last["hf_batched"]["texts"])) if t != h), None)
    return dict(prompts=len(ids), b1_prompts=len(subset), layers=last["ts"]["layers"], setup_s=setup_s,
                agree_batched=agree_batched, agree_b1=agree_b1, first_diff_batched=first_diff,
                rounds=[{side: {k: v for k, v in r.items() if k != "texts"} for side, r in rd.items()} for rd in rounds])


def report_sweep(res: dict, a) -> None:
    rs = res["rounds"]
    N, n1 = res["prompts"], res["b1_prompts"]
    rows = [
        ("thinksteer sweep run, task 1 (whole process)", [r["ts"] for r in rs], None),
        (f"HF generate, batch {a.batch}, mlp hooks", [r["hf_batched"] for r in rs], [r["hf_batched"]["s"] / r["ts"]["s"] for r in rs]),
        (f"HF generate, batch 1 ({n1} of {N} prompts, x{N / n1:.2f})", [r["hf_b1"] for r in rs],
         [r["hf_b1"]["s_scaled"] / r["ts"]["s"] for r in rs]),
    ]
    print()
    print(f"ThinkEdit alpha sweep point: {a.alpha} * {VEC_NAME}[l] at blocks.{{l}}.hook_mlp_out, layers {res['layers'][0]}-{res['layers'][-1]}, "
          f"all positions; models/toy-thinker, {N} prompts of builtin:toy-test, <= {a.max_new_tokens} new tokens, greedy, "
          f"{a.threads} thread(s), {len(rs)} round(s), medians")
    head = f"{'':<52} | {'seconds':>8} | {'for ' + str(N) + ' prompts':>15} | {'new tok/s':>9} | {'CPU s':>7} | {'HF s / thinksteer s':>19}"
    print(head)
    print("-" * len(head))
    for name, xs, ratios in rows:
        s = med([x["s"] for x in xs])
        scaled = med([x.get("s_scaled", x["s"]) for x in xs])
        tps = med([x["new"] / x["s"] for x in xs])
        cpu = med([x["cpu"] for x in xs])
        rt = f"{med(ratios):.2f}x" if ratios else ""
        if ratios and len(ratios) > 1:
            rt += " (" + ", ".join(f"{x:.2f}" for x in ratios) + ")"
        print(f"{name:<52} | {s:8.2f} | {scaled:15.2f} | {tps:9.0f} | {cpu:7.2f} | {rt:>19}")
    print(f"thinksteer's time includes process start, model load, annotation and the HDF5 output; HF's is generate() alone. "
          f"Batch 1 ran on an evenly spaced subset of {n1} prompts; its 'for {N} prompts' column is that time x {N}/{n1}.")
    print(f"steered texts equal to thinksteer's (last round): HF batch {a.batch}: {res['agree_batched']}/{N}"
          + (f" (first difference: {res['first_diff_batched']})" if res["first_diff_batched"] else "")
          + f"; HF batch 1: {res['agree_b1']}/{n1}")


# ---------------------------------------------------------------------------------------------
# 2. The weight edit

def edit_inputs(a) -> tuple[Path, Path, list[tuple[int, int]], dict]:
    """The checkpoint (bench_engine's random Qwen2 + the toy tokenizer), the attn direction file, the heads."""
    import h5py
    import numpy as np

    model, n_params, shape = bench_engine.model_with_toy_tokenizer(WORK, a.quick)
    L, D, H = shape["num_hidden_layers"], shape["hidden_size"], shape["num_attention_heads"]

    direction = WORK / f"attn_{'tiny' if a.quick else '100m'}.h5"
    rng = np.random.default_rng(a.seed)
    long_ = rng.standard_normal((L, D)).astype(np.float32)
    short = rng.standard_normal((L, D)).astype(np.float32)
    values = np.stack([long_ - short, long_, short])
    tmp = direction.with_suffix(".h5.tmp")
    with h5py.File(tmp, "w") as f:  # io/vectors_h5.cpp's layout, dimension scales included
        dims = {}
        for dim, n in (("name", 3), ("layer", L), ("d_model", D)):
            s = f.create_dataset(dim, data=np.arange(n, dtype=np.int64))
            s.make_scale(f"This is a netCDF dimension but not a netCDF variable.{n:10d}")
            dims[dim] = s
        v = f.create_dataset("vectors", data=values)
        v.attrs["description"] = "steering vector per name and layer, measured at hook_measured, to be added at hook_applied"
        v.attrs["units"] = "1"
        nm = f.create_dataset("names", data=[VEC_NAME, "mean.long", "mean.short"], dtype=h5py.string_dtype("utf-8"))
        ly = f.create_dataset("layers", data=np.arange(L, dtype=np.int64))
        ly.attrs["description"] = "0-based decoder layer of each layer index"
        c = f.create_dataset("counts", data=np.array([[40] * L, [40] * L, [40] * L], dtype=np.int64))
        c.attrs["description"] = "examples (or spans) averaged into each vector; 0 marks a missing (all-zero) vector"
        for ds, names in ((v, ("name", "layer", "d_model")), (nm, ("name",)), (ly, ("layer",)), (c, ("name", "layer"))):
            for axis, dim in enumerate(names):
                ds.dims[axis].attach_scale(dims[dim])
        for key, val in (("format", "thinksteer.vectors"), ("hook_measured", "blocks.{l}.hook_resid_mid"),
                         ("hook_applied", "blocks.{l}.hook_attn_out"), ("architecture", "qwen2"),
                         ("model", str(model)), ("provenance", "{}")):
            f.attrs[key] = val
        f.attrs["format_version"] = np.int64(1)
    tmp.replace(direction)

    k = min(a.heads, L * H)
    per_layer = -(-k // L)
    heads = []
    for j in range(per_layer):  # spread over all layers: layer l gets heads (l + 5 j) mod H
        for l in range(L):
            h = (l + 5 * j) % H
            if len(heads) < k and (l, h) not in heads:
                heads.append((l, h))
    heads.sort()
    return model, direction, heads, dict(n_params=n_params, shape=shape)


def hf_edit(model_dir: Path, direction: Path, heads: list[tuple[int, int]], out: Path, threads: int) -> dict:
    """The reference loop (fp32 torch, as the paper's code does it). Returns its phases in seconds."""
    import h5py
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    with h5py.File(direction) as f:
        names = [x.decode() if isinstance(x, bytes) else x for x in f["names"][:]]
        layers = [int(x) for x in f["layers"][:]]
        d = torch.tensor(f["vectors"][names.index(VEC_NAME)], dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    t1 = time.perf_counter()
    E = model.config.hidden_size // model.config.num_attention_heads
    with torch.no_grad():
        for l, h in heads:
            v = d[layers.index(l)]
            v = v / v.norm()
            W = model.model.layers[l].self_attn.o_proj.weight
            cols = slice(h * E, (h + 1) * E)
            W[:, cols] -= torch.outer(v, v @ W[:, cols])
    t2 = time.perf_counter()
    model.save_pretrained(out, safe_serialization=True)
    t3 = time.perf_counter()
    return dict(load=t1 - t0, edit=t2 - t1, save=t3 - t2)


def compare_checkpoints(ts_dir: Path, hf_dir: Path, src_dir: Path, heads) -> dict:
    from safetensors.torch import load_file

    def tensors(d: Path) -> dict:
        out = {}
        for f in sorted(d.glob("*.safetensors")):
            out.update(load_file(str(f)))
        return out

    ts, hf, src = tensors(ts_dir), tensors(hf_dir), tensors(src_dir)
    o_names = sorted(n for n in src if n.endswith("self_attn.o_proj.weight"))
    edited_layers = {l for l, _ in heads}
    o_max = max(float((ts[n].float() - hf[n].float()).abs().max()) for n in o_names)
    changed = sum(int(not ts[n].equal(src[n])) for n in o_names)
    others = [n for n in src if n not in o_names and n in hf]
    other_equal = all(ts[n].equal(hf[n]) for n in others)
    return dict(o_proj_tensors=len(o_names), o_proj_max_abs_diff=o_max, o_proj_changed=changed,
                edited_layers=len(edited_layers), other_tensors=len(others), other_identical=other_equal,
                missing_in_hf=sorted(n for n in src if n not in hf), ok=o_max <= 1e-6 and changed == len(edited_layers))


def bench_edit(a, env) -> dict:
    import torch  # noqa: F401  (imported before the rounds: the in-process timing excludes imports)
    import transformers  # noqa: F401

    model, direction, heads, info = edit_inputs(a)
    spec = ",".join(f"{l}.{h}" for l, h in heads)
    print(f"[edit] model {model} ({info['n_params']:,} parameters), {len(heads)} heads: {spec}", flush=True)

    def run_ts(k):
        r = WORK / f"edit_ts_round{k}"
        shutil.rmtree(r, ignore_errors=True)
        s, cpu = timed(BIN, "thinkedit", "edit", "--model.path", model, "--run.dir", r, "--thinkedit.direction", direction,
                       "--thinkedit.heads", spec, "--thinkedit.out", r / "edited", "--run.threads", a.threads, env=env)
        return dict(s=s, cpu=cpu, out=r / "edited")

    def run_hf(k):
        out = WORK / f"edit_hf_round{k}"
        shutil.rmtree(out, ignore_errors=True)
        t0, c0 = time.perf_counter(), time.process_time()
        phases = hf_edit(model, direction, heads, out, a.threads)
        return dict(s=time.perf_counter() - t0, cpu=time.process_time() - c0, out=out, **phases)

    def run_hf_script(k):
        out = WORK / f"edit_hfs_round{k}"
        shutil.rmtree(out, ignore_errors=True)
        s, cpu = timed(sys.executable, __file__, "--hf-edit-worker", json.dumps(
            dict(model=str(model), direction=str(direction), heads=heads, out=str(out), threads=a.threads)), env=env)
        return dict(s=s, cpu=cpu, out=out)

    rounds, check = [], None
    for k in range(a.rounds):
        ts_first = k % 2 == 0
        res = {}
        for side in (["ts", "hf", "hf_script"] if ts_first else ["hf", "hf_script", "ts"]):
            res[side] = {"ts": run_ts, "hf": run_hf, "hf_script": run_hf_script}[side](k)
        if check is None:
            check = compare_checkpoints(res["ts"]["out"], res["hf"]["out"], model, heads)
        for side in res:
            shutil.rmtree(res[side]["out"].parent if side == "ts" else res[side]["out"], ignore_errors=True)
            res[side]["out"] = str(res[side]["out"])
        rounds.append(res)
        ts, hf, hs = res["ts"], res["hf"], res["hf_script"]
        print(f"[edit] round {k} ({'thinksteer' if ts_first else 'HF'} first): thinksteer {ts['s']:.2f} s; HF in-process {hf['s']:.2f} s "
              f"(load {hf['load']:.2f}, edit {hf['edit']:.3f}, save {hf['save']:.2f}), ratio {hf['s'] / ts['s']:.2f}; "
              f"HF script {hs['s']:.2f} s, ratio {hs['s'] / ts['s']:.2f}", flush=True)
    return dict(model=str(model), n_params=info["n_params"], shape=info["shape"], heads=spec, n_heads=len(heads), check=check, rounds=rounds)


def report_edit(res: dict, a) -> None:
    rs = res["rounds"]
    shape = res["shape"]
    print()
    print(f"ThinkEdit weight edit: {res['n_heads']} of {shape['num_hidden_layers'] * shape['num_attention_heads']} heads, random Qwen2 "
          f"{res['n_params'] / 1e6:.1f}M parameters, fp32 safetensors ({res['n_params'] * 4 / 1e6:.0f} MB); "
          f"{a.threads} thread(s), {len(rs)} round(s), medians")
    head = f"{'':<62} | {'seconds':>8} | {'CPU s':>7} | {'HF s / thinksteer s':>19}"
    print(head)
    print("-" * len(head))
    for name, key in (("thinksteer thinkedit edit (whole process)", "ts"),
                      ("HF in-process: from_pretrained + edit + save_pretrained", "hf"),
                      ("HF as a script: python start, imports, the same", "hf_script")):
        xs = [r[key] for r in rs]
        ratios = [r[key]["s"] / r["ts"]["s"] for r in rs] if key != "ts" else []
        rt = f"{med(ratios):.2f}x" if ratios else ""
        if len(ratios) > 1:
            rt += " (" + ", ".join(f"{x:.2f}" for x in ratios) + ")"
        print(f"{name:<62} | {med([x['s'] for x in xs]):8.2f} | {med([x['cpu'] for x in xs]):7.2f} | {rt:>19}")
    hf = [r["hf"] for r in rs]
    print(f"HF in-process phases (medians): from_pretrained {med([x['load'] for x in hf]):.2f} s, edit {med([x['edit'] for x in hf]):.3f} s, "
          f"save_pretrained {med([x['save'] for x in hf]):.2f} s")
    c = res["check"]
    print(f"check: o_proj of thinksteer vs HF, max |diff| {c['o_proj_max_abs_diff']:.3g} over {c['o_proj_tensors']} tensors "
          f"({c['o_proj_changed']} changed from the source, {c['edited_layers']} layers edited) -> {'OK' if c['ok'] else 'MISMATCH'} (tolerance 1e-6); "
          f"other tensors identical: {'yes' if c['other_identical'] else 'NO'} ({c['other_tensors']} compared"
          + (f"; not written by HF: {', '.join(c['missing_in_hf'])}" if c["missing_in_hf"] else "") + ")")


# ---------------------------------------------------------------------------------------------

def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--hf-edit-worker":  # the reference as a fresh script
        p = json.loads(sys.argv[2])
        hf_edit(Path(p["model"]), Path(p["direction"]), [tuple(x) for x in p["heads"]], Path(p["out"]), p["threads"])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=None, help="default 3 (quick: 1)")
    ap.add_argument("--prompts", type=int, default=None, help="sweep prompts, default 100 (quick: 10)")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default 384 (quick: 64)")
    ap.add_argument("--batch", type=int, default=None, help="generation batch of thinksteer and batched HF, default 50 (quick: 10)")
    ap.add_argument("--b1-prompts", type=int, default=None, help="prompts HF batch 1 runs on (evenly spaced), default 20 (quick: 3)")
    ap.add_argument("--alpha", type=float, default=0.3)
    ap.add_argument("--heads", type=int, default=24, help="heads the weight edit projects (quick: at most the tiny model's 8)")
    ap.add_argument("--seed", type=int, default=0, help="of the random attn direction")
    ap.add_argument("--only", choices=["sweep", "edit"], default=None)
    ap.add_argument("--quick", action="store_true", help="smoke run: few prompts and tokens, a 0.5M-parameter model for the edit (< 1 minute)")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw timings here")
    ap.add_argument("--omp-wait-policy", choices=["auto", "inherit", "passive", "active"], default="auto",
                    help="as in bench_engine.py (auto: PASSIVE when other work is running)")
    a = ap.parse_args()
    for k, (quick, full) in dict(rounds=(1, 3), prompts=(10, 100), max_new_tokens=(64, 384), batch=(10, 50), b1_prompts=(3, 20)).items():
        if getattr(a, k) is None:
            setattr(a, k, quick if a.quick else full)
    if not BIN.exists():
        sys.exit(f"{BIN} not found: build thinksteer first")
    bench_engine.apply_omp_wait_policy(a.omp_wait_policy)  # before torch is imported
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    WORK.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}}
    if a.only in (None, "sweep"):
        out["sweep"] = bench_sweep(a, env)
    if a.only in (None, "edit"):
        out["edit"] = bench_edit(a, env)
    load_after = os.getloadavg()[0]
    print(f"\ndone in {time.perf_counter() - t0:.0f} s; load average before/after {load_before:.2f} / {load_after:.2f} on {os.cpu_count()} cores; "
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    if "sweep" in out:
        report_sweep(out["sweep"], a)
    if "edit" in out:
        report_edit(out["edit"], a)
    out["load_average"] = [load_before, load_after]
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, default=str))
    ok = "edit" not in out or out["edit"]["check"]["ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
