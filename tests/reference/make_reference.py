#!/usr/bin/env python3
"""Reference data for thinksteer's C++ parity tests.

Builds tiny random Qwen2 / Llama causal LMs with HF transformers (fixed seeds, fp32), saves them
with save_pretrained (safetensors) and records golden tensors computed by HF itself:
activations at every hook point, logits, greedy continuations, steering, gradients and a
left-padded batch.  See README.md next to this file for the layout and tensor names.

Usage: make_reference.py --out DIR [--force] [--verbose]

Deterministic: the same script with the same torch/transformers versions writes the same bytes.
Regeneration is skipped when DIR/MANIFEST.json records the sha256 of this script and its case table
(reference_cases.py), the same library versions, and every listed file is present with the recorded sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve()
SOURCES = (SCRIPT, SCRIPT.parent / "reference_cases.py", SCRIPT.parent / "reference_hf.py")  # what the digest covers
sys.path.insert(0, str(SCRIPT.parent))
MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = 1

from reference_cases import (  # noqa: E402  (next to this script)
    CheckFailed, check, ATTN_IMPL, BF16_MIN_MARGIN, BOS, CASES, D_MLP, D_MODEL, EOS, INIT_STD,
    MAX_POS, MIN_TOP2_MARGIN, NORM_STD, N_BATCH_GREEDY, N_BF16_GREEDY, N_GREEDY, PAD, PROMPT_LENGTHS,
    PROMPT_SEED, STEER_COEF, STEER_LAYER, STEER_NORM, VOCAB)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sources_sha256() -> str:
    """One digest over this script and its case table: a change to either regenerates the reference data."""
    h = hashlib.sha256()
    for p in SOURCES:
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def write_json(path: Path, obj) -> None:
    # Same layout transformers uses for config.json.
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def library_versions() -> dict:
    # Read from package metadata, so the skip check does not have to import torch.
    from importlib.metadata import version

    return {
        "torch": version("torch"),
        "transformers": version("transformers"),
        "safetensors": version("safetensors"),
        "python": "%d.%d" % sys.version_info[:2],
    }


def manifest_is_current(out: Path, script_hash: str) -> bool:
    try:
        man = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if man.get("format") != MANIFEST_FORMAT or man.get("script_sha256") != script_hash:
        return False
    if man.get("versions") != library_versions():
        return False
    for case in man.get("cases", []):
        for rel, digest in case.get("files", {}).items():
            p = out / case["name"] / rel
            if not p.is_file() or sha256_file(p) != digest:
                return False
    return bool(man.get("cases"))


# ---------------------------------------------------------------------------------------------
# Everything below needs torch / transformers
# ---------------------------------------------------------------------------------------------
def lazy_imports():
    global torch, F, transformers, save_file, load_file
    global Recorder, add_steering, forward_logits, hf_greedy, manual_greedy, bf16_goldens, next_token_metric, rope_bands
    import torch  # noqa: F811
    import torch.nn.functional as F  # noqa: F811
    import transformers  # noqa: F811
    from safetensors.torch import load_file, save_file  # noqa: F811
    from reference_hf import (Recorder, add_steering, bf16_goldens, forward_logits, hf_greedy,  # noqa: F811
                              manual_greedy, next_token_metric, rope_bands)

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)


def make_config(case):
    from transformers import LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=VOCAB,
        hidden_size=D_MODEL,
        intermediate_size=D_MLP,
        num_hidden_layers=case["layers"],
        num_attention_heads=case["heads"],
        num_key_value_heads=case["kv_heads"],
        max_position_embeddings=MAX_POS,
        rms_norm_eps=case["rms_norm_eps"],
        tie_word_embeddings=case["tied"],
        rope_parameters=dict(case["rope"]),
        initializer_range=INIT_STD,
        hidden_act="silu",
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    if case["arch"] == "qwen2":
        cfg = Qwen2Config(**common, use_sliding_window=False)
    else:
        cfg = LlamaConfig(**common, attention_bias=False, mlp_bias=False)
    cfg._attn_implementation = ATTN_IMPL
    return cfg


def build_model(case):
    from transformers import AutoModelForCausalLM

    cfg = make_config(case)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation=ATTN_IMPL, dtype=torch.float32)
    gen = torch.Generator().manual_seed(case["seed"])
    with torch.no_grad():
        # named_parameters() lists a tied lm_head/embedding only once.
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            p.copy_(1.0 + NORM_STD * noise if name.endswith("norm.weight") else INIT_STD * noise)
    model.eval()
    if case["tied"]:
        check(model.lm_head.weight is model.model.embed_tokens.weight, "lm_head not tied")
    else:
        check(model.lm_head.weight is not model.model.embed_tokens.weight, "lm_head unexpectedly tied")
    return model


def load_model(path: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation=ATTN_IMPL)
    model.eval()
    check(model.config._attn_implementation == ATTN_IMPL, "attention implementation not honoured")
    return model


def legacy_rope_fields(rope: dict):
    """Top-level rope_theta / rope_scaling as written by real pre-transformers-5 checkpoints."""
    theta = rope["rope_theta"]
    if rope["rope_type"] == "default":
        return theta, None
    scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    return theta, scaling


def postprocess_config(case, path: Path) -> dict:
    cfg_path = path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    style = case["config_style"]
    if style in ("both", "legacy"):
        theta, scaling = legacy_rope_fields(cfg["rope_parameters"])
        cfg["rope_theta"] = theta
        cfg["rope_scaling"] = scaling
        cfg["torch_dtype"] = cfg["dtype"]
        if case["arch"] == "qwen2":
            # Qwen2.5 / DeepSeek-R1-Distill-Qwen ship a sliding_window value with the window off.
            cfg["sliding_window"] = 4096
            cfg["use_sliding_window"] = False
    if style == "legacy":
        del cfg["rope_parameters"]
        del cfg["dtype"]
    write_json(cfg_path, cfg)
    return cfg


# ------------------------------------------ a case -------------------------------------------
def save_case_checkpoint(case, tmp: Path):
    """Builds the case's model, saves it with save_pretrained into tmp (a bf16 case: the fp32 weights rounded to bf16 in
    place first), post-processes config.json and reloads it, checking the reload and the files written. Returns the
    in-memory model, the reloaded one, config.json as transformers wrote it and as post-processed, and the
    safetensors files."""
    name = case["name"]
    built = build_model(case)
    save_kwargs = {}
    if case["shard_size"]:
        save_kwargs["max_shard_size"] = case["shard_size"]
    if case["save_dtype"] == "bfloat16":
        # Round the fp32 weights to bf16 in place (so `built` computes in fp32 with exactly the
        # stored values), then save a bf16 copy.  Not built.to(bf16).to(fp32): that would also
        # round the rotary inv_freq buffer, which HF recomputes in fp32 on load.
        with torch.no_grad():
            for p in built.parameters():
                p.copy_(p.to(torch.bfloat16).to(torch.float32))
        import copy

        copy.deepcopy(built).to(torch.bfloat16).save_pretrained(tmp, **save_kwargs)
    else:
        built.save_pretrained(tmp, **save_kwargs)
    written_cfg = json.loads((tmp / "config.json").read_text())
    final_cfg = postprocess_config(case, tmp)

    model = load_model(tmp)  # goldens come from what the C++ side will load
    for k in ("rope_parameters", "tie_word_embeddings", "num_key_value_heads", "rms_norm_eps"):
        check(
            getattr(model.config, k) == getattr(built.config, k),
            f"{name}: reloaded config.{k} = {getattr(model.config, k)} != {getattr(built.config, k)}",
        )
    if case["tied"]:
        check(model.lm_head.weight is model.model.embed_tokens.weight, f"{name}: reloaded lm_head not tied")

    # checkpoint files
    st_files = sorted(p.name for p in tmp.glob("*.safetensors"))
    if case["shard_size"]:
        check(len(st_files) >= 2, f"{name}: expected >= 2 shards, got {st_files}")
        check((tmp / "model.safetensors.index.json").is_file(), f"{name}: no index.json")
    else:
        check(st_files == ["model.safetensors"], f"{name}: unexpected files {st_files}")
    check((tmp / "generation_config.json").is_file(), f"{name}: no generation_config.json")
    saved_keys, saved_dtypes = [], set()
    for f in st_files:
        sd = load_file(tmp / f)
        saved_keys += list(sd)
        saved_dtypes |= {str(v.dtype) for v in sd.values()}
    check(saved_dtypes == {"torch." + case["save_dtype"]}, f"{name}: saved dtypes {saved_dtypes}")
    check(("lm_head.weight" in saved_keys) == (not case["tied"]), f"{name}: lm_head.weight presence wrong")

    return built, model, written_cfg, final_cfg, st_files


def check_hook_identities(case, model, ids, acts, hs, logits):
    """The hook points against each other and against HF's own outputs (hidden states, final norm, logits)."""
    name, L, T = case["name"], case["layers"], ids.shape[0]
    a = lambda k: acts[k]  # noqa: E731
    check(torch.equal(a("blocks.0.hook_resid_pre"), hs[0]), "resid_pre[0] != embeddings")
    check(torch.equal(a("blocks.0.hook_resid_pre"), model.model.embed_tokens(ids)), "resid_pre[0] != embed")
    for l in range(L):
        b = f"blocks.{l}."
        check(
            torch.equal(a(b + "hook_resid_mid"), a(b + "hook_resid_pre") + a(b + "hook_attn_out")),
            f"{name}: resid_mid != resid_pre + attn_out at layer {l}",
        )
        check(
            torch.equal(a(b + "hook_resid_post"), a(b + "hook_resid_mid") + a(b + "hook_mlp_out")),
            f"{name}: resid_post != resid_mid + mlp_out at layer {l}",
        )
        check(a(b + "attn.hook_z").shape == (T, case["heads"], D_MODEL // case["heads"]), "hook_z shape")
        if l + 1 < L:
            check(torch.equal(a(b + "hook_resid_post"), hs[l + 1]), f"resid_post[{l}] != hidden_states[{l + 1}]")
            check(torch.equal(a(b + "hook_resid_post"), a(f"blocks.{l + 1}.hook_resid_pre")), "post != next pre")
    check(torch.equal(hs[L], a("ln_final.hook_normalized")), "hidden_states[-1] is not the final-norm output")
    check(torch.equal(model.model.norm(a(f"blocks.{L - 1}.hook_resid_post")), a("ln_final.hook_normalized")),
          "norm(resid_post[L-1]) != ln_final")
    check(torch.equal(model.lm_head(a("ln_final.hook_normalized")), logits), "lm_head(ln_final) != logits")


def prompt_goldens(case, built, model, prompts, g):
    """Per prompt: the reload's identity with the in-memory model, the activations at every hook point, the logits and
    the greedy continuation, into g. Returns the prompts' meta records and the largest |logit|."""
    name, L = case["name"], case["layers"]
    meta_prompts, max_abs_logit = [], 0.0
    with torch.no_grad():
        for i, ids in enumerate(prompts):
            T = ids.shape[0]
            # reload identity: the in-memory model and the reloaded checkpoint agree bit for bit
            check(
                torch.equal(forward_logits(built, ids), forward_logits(model, ids)),
                f"{name}: reloaded checkpoint logits differ from the in-memory model (prompt {i})",
            )
            rec = Recorder(model)
            out = model(input_ids=ids[None], use_cache=False, output_hidden_states=True)
            rec.remove()
            acts = rec.squeezed()
            logits = out.logits[0].clone()
            hs = [h[0] for h in out.hidden_states]
            check(len(acts) == 6 * L + 1, f"{name}: recorded {len(acts)} tensors, want {6 * L + 1}")
            g[f"p{i}.input_ids"] = ids.clone()
            g[f"p{i}.logits"] = logits
            for k, v in acts.items():
                g[f"p{i}.{k}"] = v
            check_hook_identities(case, model, ids, acts, hs, logits)
            max_abs_logit = max(max_abs_logit, float(logits.abs().max()))

            # greedy
            greedy = hf_greedy(model, ids, N_GREEDY)[0]
            manual, margin = manual_greedy(model, ids, N_GREEDY)
            check(torch.equal(greedy, manual), f"{name}: HF generate != cache-free argmax loop (prompt {i})")
            check(margin >= MIN_TOP2_MARGIN, f"{name}: prompt {i} greedy has a near-tie (top-2 margin {margin:.2e})")
            n_distinct = int(greedy.unique().numel())
            check(n_distinct >= 3, f"{name}: greedy continuation of prompt {i} is degenerate ({n_distinct} tokens)")
            g[f"p{i}.greedy"] = greedy
            meta_prompts.append(
                dict(length=T, greedy_distinct_tokens=n_distinct, greedy_min_top2_margin=margin,
                     greedy_contains_eos=bool((greedy == EOS).any()), max_abs_logit=float(logits.abs().max()))
            )
    return meta_prompts, max_abs_logit


def steering_goldens(case, model, prompts, steer_vec, g):
    """Prompt 0 steered at STEER_LAYER (logits and greedy) into g; returns the steering part of meta.json."""
    name = case["name"]
    with torch.no_grad():
        ids0 = prompts[0]
        h = add_steering(model, STEER_LAYER, steer_vec, STEER_COEF)
        try:
            s_logits = forward_logits(model, ids0).clone()
            s_greedy = hf_greedy(model, ids0, N_GREEDY)[0]
            s_manual, s_margin = manual_greedy(model, ids0, N_GREEDY)
        finally:
            h.remove()
        check(torch.equal(s_greedy, s_manual), f"{name}: steered HF generate != cache-free argmax loop")
        check(s_margin >= MIN_TOP2_MARGIN, f"{name}: steered greedy has a near-tie (top-2 margin {s_margin:.2e})")
        check(not torch.equal(s_greedy, g["p0.greedy"]), f"{name}: steering did not change the greedy continuation")
        check(torch.equal(forward_logits(model, ids0), g["p0.logits"]), f"{name}: steering hook leaked")
        g["p0.steer.logits"] = s_logits
        g["p0.steer.greedy"] = s_greedy
        steer_logit_shift = float((s_logits - g["p0.logits"]).abs().max())
        steer_diverges_at = int((s_greedy != g["p0.greedy"]).nonzero()[0, 0])
    return dict(layer=STEER_LAYER, coef=STEER_COEF, norm=STEER_NORM, grad_coef=1.0, greedy_min_top2_margin=s_margin,
                max_abs_logit_shift=steer_logit_shift, greedy_first_divergence=steer_diverges_at,
                greedy_contains_eos=bool((s_greedy == EOS).any()))


def batch_goldens(case, model, prompts, g):
    """The prompts as one left-padded batch: greedy rows equal to the single-prompt ones, into g."""
    name = case["name"]
    with torch.no_grad():
        tmax = max(PROMPT_LENGTHS)
        b_ids = torch.full((len(prompts), tmax), PAD, dtype=torch.int64)
        b_mask = torch.zeros((len(prompts), tmax), dtype=torch.int64)
        for i, ids in enumerate(prompts):
            b_ids[i, tmax - ids.shape[0] :] = ids
            b_mask[i, tmax - ids.shape[0] :] = 1
        b_greedy = hf_greedy(model, b_ids, N_BATCH_GREEDY, attention_mask=b_mask)
        for i in range(len(prompts)):
            check(
                torch.equal(b_greedy[i], g[f"p{i}.greedy"][:N_BATCH_GREEDY]),
                f"{name}: padded batch greedy row {i} != unpadded single-prompt greedy",
            )
        g["batch.input_ids"] = b_ids
        g["batch.attention_mask"] = b_mask
        g["batch.greedy"] = b_greedy


def gradient_goldens(case, model, prompts, steer_vec, g):
    """Prompt 1 with the weights frozen: gradients of the next-token metric at every resid_pre / resid_post and with
    respect to the steering vector, into g; then the vector's gradient against a central finite difference."""
    name, L = case["name"], case["layers"]
    for p in model.parameters():
        p.requires_grad_(False)
    ids1 = prompts[1]
    with torch.enable_grad():
        # make the embedding output a leaf that requires grad so every residual does
        eh = model.model.embed_tokens.register_forward_hook(lambda m, a, o: o.detach().requires_grad_(True))
        rec = Recorder(model, keep_graph=True)
        try:
            logits = forward_logits(model, ids1)
            metric = next_token_metric(logits, ids1)
            metric.backward()
        finally:
            rec.remove()
            eh.remove()
        check(torch.equal(logits.detach(), g["p1.logits"]), f"{name}: grad-pass logits differ from no-grad logits")
        g["p1.grad.metric"] = metric.detach().reshape(1).clone()
        for l in range(L):
            for hook in ("hook_resid_pre", "hook_resid_post"):
                t = rec.acts[f"blocks.{l}.{hook}"]
                check(t.grad is not None, f"{name}: no gradient for blocks.{l}.{hook}")
                g[f"p1.grad.blocks.{l}.{hook}"] = t.grad[0].detach().clone()
        for l in range(L - 1):
            check(
                torch.equal(g[f"p1.grad.blocks.{l}.hook_resid_post"], g[f"p1.grad.blocks.{l + 1}.hook_resid_pre"]),
                "grad resid_post[l] != grad resid_pre[l+1]",
            )
        # last position has no next token: its gradient flows only through attention of nobody -> 0
        check(float(g[f"p1.grad.blocks.{L - 1}.hook_resid_post"][-1].abs().max()) == 0.0,
              "gradient at the last position should be exactly zero")

        vec = steer_vec.clone().requires_grad_(True)
        h = add_steering(model, STEER_LAYER, vec, 1.0)
        try:
            s_metric = next_token_metric(forward_logits(model, ids1), ids1)
            s_metric.backward()
        finally:
            h.remove()
        check(vec.grad is not None and float(vec.grad.abs().max()) > 0, "no steering-vector gradient")
        g["p1.grad.steer_vector"] = vec.grad.detach().clone()
        g["p1.grad.steer_metric"] = s_metric.detach().reshape(1).clone()

    # finite-difference check of the steering gradient along its own direction
    with torch.no_grad():
        u = g["p1.grad.steer_vector"] / g["p1.grad.steer_vector"].norm()
        eps = 1e-2
        vals = []
        for sgn in (1, -1):
            h = add_steering(model, STEER_LAYER, steer_vec + sgn * eps * u, 1.0)
            try:
                vals.append(float(next_token_metric(forward_logits(model, ids1), ids1)))
            finally:
                h.remove()
        fd = (vals[0] - vals[1]) / (2 * eps)
        an = float(g["p1.grad.steer_vector"].norm())
        check(abs(fd - an) <= 2e-2 * max(1.0, an), f"{name}: steering grad {an} vs finite difference {fd}")


def write_goldens(tmp: Path, g):
    """g as fp32 / int64 contiguous tensors, sorted by name, into golden.safetensors."""
    for k, v in g.items():
        v = v.detach().contiguous().clone()
        if v.is_floating_point():
            v = v.to(torch.float32)
        else:
            check(v.dtype == torch.int64, f"{k}: dtype {v.dtype}")
        g[k] = v
    save_file(dict(sorted(g.items())), str(tmp / "golden.safetensors"))


def case_meta(case, cfgs, st_files, rope_info, bf16_info, meta_prompts, steer_info, g, max_abs_logit):
    """meta.json of a case: its shape, checkpoint, goldens' parameters and the measured margins."""
    name, L = case["name"], case["layers"]
    written_cfg, final_cfg = cfgs
    return dict(
        case=name,
        architecture=final_cfg["architectures"][0],
        model_type=final_cfg["model_type"],
        n_layers=L,
        d_model=D_MODEL,
        d_mlp=D_MLP,
        n_heads=case["heads"],
        n_kv_heads=case["kv_heads"],
        d_head=D_MODEL // case["heads"],
        d_vocab=VOCAB,
        tie_word_embeddings=case["tied"],
        rope=case["rope"],
        rope_inv_freq=rope_info,
        rms_norm_eps=case["rms_norm_eps"],
        checkpoint_dtype=case["save_dtype"],
        compute_dtype="float32",
        bf16=bf16_info,
        checkpoint_files=st_files,
        config_style=case["config_style"],
        config_keys_written_by_transformers=sorted(written_cfg),
        attn_implementation=ATTN_IMPL,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
        init=dict(seed=case["seed"], std=INIT_STD, norm_weights=f"1 + N(0, {NORM_STD})"),
        prompt_seed=PROMPT_SEED,
        prompts=meta_prompts,
        n_greedy=N_GREEDY,
        n_batch_greedy=N_BATCH_GREEDY,
        steer=steer_info,
        grad=dict(prompt=1, metric="sum_{t<T-1} log_softmax(logits[t])[input_ids[t+1]]",
                  metric_value=float(g["p1.grad.metric"][0]), steer_metric_value=float(g["p1.grad.steer_metric"][0])),
        max_abs_logit=max_abs_logit,
        versions=library_versions(),
    )


def log_case(log, case, final_cfg, st_files, rope_info, meta_prompts, steer_info, g, max_abs_logit):
    name, L = case["name"], case["layers"]
    steer_logit_shift, steer_diverges_at = steer_info["max_abs_logit_shift"], steer_info["greedy_first_divergence"]
    log(
        f"[{name}] {final_cfg['architectures'][0]} L={L} H={case['heads']} KV={case['kv_heads']} "
        f"tied={case['tied']} ckpt={case['save_dtype']} files={st_files} config={case['config_style']}\n"
        f"    max|logit|={max_abs_logit:.3f}  greedy distinct tokens={[m['greedy_distinct_tokens'] for m in meta_prompts]} "
        f"min top2 margin={min(m['greedy_min_top2_margin'] for m in meta_prompts):.4f}  "
        f"eos in greedy={[m['greedy_contains_eos'] for m in meta_prompts]}\n"
        f"    p0.greedy[:16]={g['p0.greedy'][:16].tolist()}\n"
        f"    p0.steer.greedy[:16]={g['p0.steer.greedy'][:16].tolist()} (max|dlogit|={steer_logit_shift:.3f}, diverges at {steer_diverges_at})\n"
        f"    grad metric={float(g['p1.grad.metric'][0]):.5f} steer metric={float(g['p1.grad.steer_metric'][0]):.5f} "
        f"|d/dvec|={float(g['p1.grad.steer_vector'].norm()):.5f}"
        + (f"\n    rope bands={rope_info['bands']}" if "bands" in rope_info else "")
    )


def run_case(case, out: Path, prompts, log):
    name = case["name"]
    tmp = out / (name + ".tmp")
    final = out / name
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    built, model, written_cfg, final_cfg, st_files = save_case_checkpoint(case, tmp)
    inv_freq, rope_info = rope_bands(model, case)
    steer_gen = torch.Generator().manual_seed(case["seed"] + 500)
    steer_vec = torch.randn(D_MODEL, generator=steer_gen)
    steer_vec = steer_vec / steer_vec.norm() * STEER_NORM
    g = {"steer.vector": steer_vec.clone(), "steer.layer": torch.tensor([STEER_LAYER], dtype=torch.int64),
         "steer.coef": torch.tensor([STEER_COEF], dtype=torch.float32), "rope.inv_freq": inv_freq}
    meta_prompts, max_abs_logit = prompt_goldens(case, built, model, prompts, g)
    steer_info = steering_goldens(case, model, prompts, steer_vec, g)
    batch_goldens(case, model, prompts, g)
    bf16_info = bf16_goldens(tmp, prompts, g)
    gradient_goldens(case, model, prompts, steer_vec, g)
    write_goldens(tmp, g)
    meta = case_meta(case, (written_cfg, final_cfg), st_files, rope_info, bf16_info, meta_prompts, steer_info, g, max_abs_logit)
    write_json(tmp / "meta.json", meta)

    # reproducibility of the checkpoint itself: a second load gives the same goldens
    again = load_model(tmp)
    with torch.no_grad():
        for i, ids in enumerate(prompts):
            check(torch.equal(forward_logits(again, ids), g[f"p{i}.logits"]), f"{name}: second reload differs")

    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    files = {str(p.relative_to(final)): sha256_file(p) for p in sorted(final.rglob("*")) if p.is_file()}
    log_case(log, case, final_cfg, st_files, rope_info, meta_prompts, steer_info, g, max_abs_logit)
    return dict(name=name, n_golden_tensors=len(g), files=files)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output directory (cases + MANIFEST.json)")
    ap.add_argument("--force", action="store_true", help="regenerate even if MANIFEST.json is current")
    ap.add_argument("--verbose", action="store_true", help="keep transformers' warnings and progress bars")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    script_hash = sources_sha256()

    if not args.force and manifest_is_current(out, script_hash):
        print(f"make_reference: {out} is current (script sha256 {script_hash[:12]}), nothing to do")
        return 0

    t0 = time.time()
    if not args.verbose:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    lazy_imports()
    if not args.verbose:
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()

    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)

    gen = torch.Generator().manual_seed(PROMPT_SEED)
    prompts = [torch.randint(3, VOCAB, (n,), generator=gen, dtype=torch.int64) for n in PROMPT_LENGTHS]

    entries = []
    for case in CASES:
        tc = time.time()
        entries.append(run_case(case, out, prompts, print))
        print(f"    ({time.time() - tc:.1f} s)")

    manifest = dict(
        format=MANIFEST_FORMAT,
        script="tests/reference/make_reference.py",
        sources=[p.name for p in SOURCES],
        script_sha256=script_hash,
        versions=library_versions(),
        attn_implementation=ATTN_IMPL,
        cases=entries,
    )
    write_json(out / MANIFEST, manifest)
    print(f"make_reference: wrote {len(entries)} cases to {out} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckFailed as e:
        print(f"make_reference: self-check failed: {e}", file=sys.stderr)
        sys.exit(1)
