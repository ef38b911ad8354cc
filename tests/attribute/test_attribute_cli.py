"""`thinksteer attribute` end to end (docs/algorithms.md §A.7).

Models: the shipped toy thinker (4 layers, trained) and a 12-layer random Qwen2 built here with the toy
thinker's tokenizer (4 layers are few points for a correlation across layers). Run directories: toy
corpus traces as generations, lexicon spans, difference-of-means vectors (bench/bench_attribute.py's
make_run).

- finite differences (the acceptance): for metric logprob the stage's estimate against the measured
  effect of actually adding +-eps * f^ at the layer's resid_post through a forward hook of HF transformers
  in float64, at the positions the estimate covers (trace: every position of P_X, metric summed over the
  trace; per-span: the span's position, its own metric): Pearson r across layers of mean |effect| >= 0.9
  for every behaviour, and every per-example value close.
- PyTorch reference: the paper metric computed exactly as the original code does (forward [0, end),
  F.kl_div(log_softmax(z), log_softmax(z).detach(), reduction='batchmean'), gradient of resid_post[l]
  at start - 1), in float64: per-span effects agree.
- 1 vs 2 ranks give the same file contents; layer selection, cosines and the file layout; a rerun skips.
- bad input: exit 2 naming the file and field, and no attribution.h5 or done marker.
- behaviours without spans: a feature vector that `vectors` stored as missing (count
  0: its label has no span) is left out with a warning and a line in attribute/skipped.jsonl (an input
  error when asked for by name); a behaviour attributed at no position keeps NaN effects, selects no
  layer and is recorded. Never a silent zero.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import binary, toy_model  # noqa: E402,F401  (fixtures)
_spec = importlib.util.spec_from_file_location("bench_attribute", ROOT / "bench" / "bench_attribute.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

N_EXAMPLES = 4
# The coefficient of the finite differences: f^ is a unit vector. HF's Qwen2RMSNorm computes in float32
# even for a float64 model, so a perturbation below ~1e-3 drowns in its rounding; 1e-2 is still linear
# (central differences agree with autograd to ~1e-6 relative).
EPS = 1e-2


@pytest.fixture(scope="module")
def deep_model(toy_model, tmp_path_factory):
    """A random 12-layer Qwen2 (float32) with the toy thinker's tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    out = tmp_path_factory.mktemp("deep") / "model"
    out.mkdir()
    src = json.loads((toy_model / "config.json").read_text())
    cfg = Qwen2Config(vocab_size=src["vocab_size"], hidden_size=64, intermediate_size=128, num_hidden_layers=12, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True, initializer_range=0.08,
                      bos_token_id=src["bos_token_id"], eos_token_id=src["eos_token_id"], pad_token_id=src["pad_token_id"])
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).to(torch.float32).save_pretrained(out, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(toy_model / f, out / f)
    return out


@pytest.fixture(scope="module")
def toy_run(binary, toy_model, tmp_path_factory):
    return bench.make_run(binary, toy_model, tmp_path_factory.mktemp("toy_run"), 16)


@pytest.fixture(scope="module")
def deep_run(binary, deep_model, tmp_path_factory):
    return bench.make_run(binary, deep_model, tmp_path_factory.mktemp("deep_run"), 16)


def attribute(binary, run_dir, model, *extra, ranks=1, check=True, n_examples=N_EXAMPLES):
    shutil.rmtree(run_dir / "attribute", ignore_errors=True)
    return bench.stage(binary, run_dir, "attribute", "--model.path", model, "--attribute.n_examples", n_examples, *extra, ranks=ranks, check=check)


def read_out(run_dir):
    with h5py.File(run_dir / "attribute" / "attribution.h5", "r") as f:
        out = {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset) and k not in ("label", "layer", "example", "pick")}
        out["labels"] = list(f["labels"].asstr()[()])
        out["example_id"] = list(f["example_id"].asstr()[()])
        out["attrs"] = dict(f.attrs)
    return out


# ---------------------------------------------------------------------------------------------------
# Python side: the traces, spans and vectors the stage read, and the HF model in float64

def hf_model(model_dir):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    return AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float64, attn_implementation="eager").eval()


def examples_of(run_dir, model_dir, ids):
    """Per example id: (token ids of the generation sequence, [(pos, target, label, end)])."""
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    gens = {}
    for line in (run_dir / "generate" / "generations.jsonl").read_text().splitlines():
        g = json.loads(line)
        gens[g["id"]] = tok.encode(g["prompt_text"], add_special_tokens=False).ids + g["token_ids"]
    with h5py.File(run_dir / "annotate" / "spans.h5", "r") as f:
        labels = list(f["labels"].asstr()[()])
        trace_ids = list(f["traces"]["id"].asstr()[()])
        trace, label, tb, te = (f["spans"][k][()] for k in ("trace", "label", "token_begin", "token_end"))
    out = {}
    for i in ids:
        t = trace_ids.index(i)
        seq = gens[i]
        out[i] = (seq, [(int(b) - 1, seq[int(b)], labels[int(l)], int(e)) for tr, l, b, e in zip(trace, label, tb, te) if tr == t and b >= 1])
    return out


def units_of(run_dir, labels, layers):
    with h5py.File(run_dir / "vectors" / "vectors.h5", "r") as f:
        names = list(f["names"].asstr()[()])
        vl = list(f["layers"][()])
        v = f["vectors"][()].astype(np.float64)
    u = np.stack([np.stack([v[names.index(k), vl.index(l)] for l in layers]) for k in labels])
    return u / np.linalg.norm(u, axis=-1, keepdims=True)  # [K, L, D]


def add_at_layer(model, layer, delta):
    """Forward hook adding delta [B, T, D] to the output of decoder layer `layer` (resid_post)."""
    def hook(mod, inp, out):
        if isinstance(out, tuple):
            return (out[0] + delta,) + tuple(out[1:])
        return out + delta
    return model.model.layers[layer].register_forward_hook(hook)


def logprob(logits, pos, target):
    import torch
    return torch.log_softmax(logits[pos], -1)[target]


def fd_trace(model, seq, positions, labels, layers, units):
    """[K, L]: (M(+eps) - M(-eps)) / 2 eps, M = sum of log p over every position, f^ added at P_X."""
    import torch
    K, L = len(labels), len(layers)
    out = np.zeros((K, L))
    tokens = torch.tensor([seq] * (2 * K))
    for li, layer in enumerate(layers):
        delta = torch.zeros(2 * K, len(seq), units.shape[-1], dtype=torch.float64)
        for k, lab in enumerate(labels):
            for pos, _, l, _ in positions:
                if l != lab:
                    delta[2 * k, pos] += EPS * torch.from_numpy(units[k, li])
                    delta[2 * k + 1, pos] -= EPS * torch.from_numpy(units[k, li])
        h = add_at_layer(model, layer, delta)
        with torch.no_grad():
            logits = model(tokens).logits
        h.remove()
        M = sum(torch.log_softmax(logits[:, pos], -1)[:, target] for pos, target, _, _ in positions)
        out[:, li] = ((M[0::2] - M[1::2]) / (2 * EPS)).numpy()
    return out


def fd_per_span(model, seq, positions, labels, layers, units):
    """[K, L] signed and |.| means over P_X of (m(+eps) - m(-eps)) / 2 eps with f^ added at the span's position only."""
    import torch
    K, L = len(labels), len(layers)
    s_abs, s_sgn, n = np.zeros((K, L)), np.zeros((K, L)), np.zeros(K)
    for pos, target, lab, _ in positions:
        tokens = torch.tensor([seq[:pos + 1]] * (2 * K))
        for li, layer in enumerate(layers):
            delta = torch.zeros(2 * K, pos + 1, units.shape[-1], dtype=torch.float64)
            for k in range(K):
                delta[2 * k, pos] = EPS * torch.from_numpy(units[k, li])
                delta[2 * k + 1, pos] = -EPS * torch.from_numpy(units[k, li])
            h = add_at_layer(model, layer, delta)
            with torch.no_grad():
                m = torch.log_softmax(model(tokens).logits[:, pos], -1)[:, target]
            h.remove()
            d = ((m[0::2] - m[1::2]) / (2 * EPS)).numpy()
            for k in range(K):
                if labels[k] != lab:
                    s_abs[k, li] += abs(d[k])
                    s_sgn[k, li] += d[k]
        n += np.array([labels[k] != lab for k in range(K)])
    return s_abs / n[:, None], s_sgn / n[:, None]


def pearson(a, b):
    return float(np.corrcoef(a, b)[0, 1])


# ---------------------------------------------------------------------------------------------------
# (a) the acceptance: estimate vs finite differences, logprob metric

@pytest.mark.parametrize("which", ["deep", "toy"])
@pytest.mark.parametrize("mode", ["trace", "per-span"])
def test_logprob_matches_finite_differences(binary, which, mode, request):
    model_dir = request.getfixturevalue(f"{which}_model")
    run_dir = request.getfixturevalue(f"{which}_run")
    # per-span finite differences take a forward per span and layer: fewer examples
    attribute(binary, run_dir, model_dir, "--attribute.metric", "logprob", "--attribute.mode", mode, n_examples=N_EXAMPLES if mode == "trace" else 2)
    out = read_out(run_dir)
    labels, layers = out["labels"], list(out["layers"])
    units = units_of(run_dir, labels, layers)
    model = hf_model(model_dir)
    ex = examples_of(run_dir, model_dir, out["example_id"])
    K, L, E = out["effect"].shape
    fd_abs, fd_sgn = np.full((K, L, E), np.nan), np.full((K, L, E), np.nan)
    for e, i in enumerate(out["example_id"]):
        seq, positions = ex[i]
        if mode == "trace":
            d = fd_trace(model, seq, positions, labels, layers, units)
            n = np.array([sum(l != lab for _, _, l, _ in positions) for lab in labels], dtype=float)[:, None]
            fd_abs[:, :, e], fd_sgn[:, :, e] = np.abs(d) / n, d / n
        else:
            fd_abs[:, :, e], fd_sgn[:, :, e] = fd_per_span(model, seq, positions, labels, layers, units)
    ok = ~np.isnan(out["effect"])
    assert np.array_equal(ok, ~np.isnan(fd_abs))
    scale = np.nanmax(np.abs(fd_sgn))
    err = np.nanmax(np.abs(out["effect_signed"] - fd_sgn))
    print(f"\n[{which} {mode}] max |estimate - finite difference| = {err:.3g} (max |fd| {scale:.3g})")
    assert err <= 2e-3 * scale
    for k, lab in enumerate(labels):
        r = pearson(out["mean"][k], np.nanmean(fd_abs[k], axis=-1))
        print(f"[{which} {mode}] {lab:<24} Pearson r across {L} layers = {r:.6f}")
        assert r >= 0.9, (lab, r)


# ---------------------------------------------------------------------------------------------------
# (b) PyTorch reference of the paper metric, computed as the original code does

def test_paper_metric_matches_pytorch_reference(binary, toy_model, toy_run):
    import torch
    import torch.nn.functional as F
    attribute(binary, toy_run, toy_model, "--attribute.metric", "paper", "--attribute.mode", "per-span")
    out = read_out(toy_run)
    labels, layers = out["labels"], list(out["layers"])
    units = units_of(toy_run, labels, layers)
    model = hf_model(toy_model)
    ex = examples_of(toy_run, toy_model, out["example_id"])
    ref = np.full(out["effect"].shape, np.nan)
    for e, i in enumerate(out["example_id"]):
        seq, positions = ex[i]
        acc, n = np.zeros((len(labels), len(layers))), np.zeros(len(labels))
        for pos, _, lab, end in positions:
            kept = {}
            hooks = [model.model.layers[l].register_forward_hook(
                lambda m, a, o, l=l: kept.__setitem__(l, o[0] if isinstance(o, tuple) else o) or kept[l].retain_grad()) for l in layers]
            logits = model(torch.tensor([seq[:end]])).logits  # the original forwards [0, end)
            for h in hooks:
                h.remove()
            z = logits[0, pos:pos + 1].mean(0)
            y = F.log_softmax(z, -1)
            F.kl_div(y, y.detach(), reduction="batchmean").backward()
            for li, l in enumerate(layers):
                g = kept[l].grad[0, pos].numpy()
                for k, x in enumerate(labels):
                    if x != lab:
                        acc[k, li] += abs(units[k, li] @ g)
            n += np.array([x != lab for x in labels])
        ref[:, :, e] = acc / n[:, None]
    err = np.nanmax(np.abs(out["effect"] - ref) / np.nanmax(np.abs(ref)))
    print(f"\n[paper per-span] max relative difference to the PyTorch kl_div reference = {err:.3g}")
    assert np.array_equal(np.isnan(out["effect"]), np.isnan(ref))
    assert err <= 1e-3


# ---------------------------------------------------------------------------------------------------
# (c) ranks, file, selection, rerun

@pytest.mark.parametrize("mode", ["trace", "per-span"])
def test_one_and_two_ranks_agree(binary, toy_model, toy_run, mode):
    attribute(binary, toy_run, toy_model, "--attribute.mode", mode)
    one = read_out(toy_run)
    attribute(binary, toy_run, toy_model, "--attribute.mode", mode, ranks=2)
    two = read_out(toy_run)
    for k in ("effect", "effect_signed", "mean", "std", "cos_embed", "cos_unembed", "selected", "positions", "n_examples"):
        np.testing.assert_allclose(one[k], two[k], rtol=1e-6, atol=0, equal_nan=True, err_msg=k)
    assert one["example_id"] == two["example_id"] and two["attrs"]["world_size"] == 2


def test_file_selection_and_rerun(binary, deep_model, deep_run):
    proc = attribute(binary, deep_run, deep_model, "--attribute.exclude_first", "3", "--attribute.exclude_last", "2", "--attribute.n_select", "2")
    out = read_out(deep_run)
    K, L, E = out["effect"].shape
    assert (L, E) == (12, N_EXAMPLES) and out["attrs"]["format"] == "thinksteer.attribution" and out["attrs"]["metric"] == "paper"
    assert out["selected"].shape == (K, 2) and list(out["exclude_first"]) == [3] * K and list(out["exclude_last"]) == [2] * K
    for k in range(K):
        allowed = [li for li in range(3, 10)]
        assert set(out["selected"][k]) <= set(allowed)
        best = max(allowed, key=lambda li: out["mean"][k, li])
        assert best in out["selected"][k]  # the highest allowed layer is always a peak
        per = out["effect"][k][:, out["positions"][k] > 0]
        np.testing.assert_allclose(out["mean"][k], per.mean(-1), rtol=1e-5)
        np.testing.assert_allclose(out["std"][k], per.std(-1), rtol=1e-4, atol=1e-7)
    # cosines: max |cos| of f^ with the embedding rows (tied: also the unembedding)
    from safetensors.numpy import load_file
    w = load_file(str(deep_model / "model.safetensors"))["model.embed_tokens.weight"].astype(np.float64)
    w /= np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-30)  # HF zeroes the padding row
    u = units_of(deep_run, out["labels"], list(out["layers"]))
    np.testing.assert_allclose(out["cos_embed"], np.abs(u @ w.T).max(-1), rtol=1e-5)
    np.testing.assert_allclose(out["cos_unembed"], out["cos_embed"], rtol=1e-6)
    assert "<- selected" in proc.stdout + proc.stderr
    prov = json.loads((deep_run / "attribute" / "provenance.json").read_text())
    assert prov["seconds"] > 0 and prov["mode"] == "trace" and prov["vectors_sha256"]
    assert (deep_run / "attribute" / "attribution.h5.done").exists() or any(p.name.endswith(".done") for p in (deep_run / "attribute").iterdir())
    again = bench.stage(binary, deep_run, "attribute", "--model.path", deep_model, "--attribute.n_examples", N_EXAMPLES,
                        "--attribute.exclude_first", "3", "--attribute.exclude_last", "2", "--attribute.n_select", "2")
    assert "skipping" in again.stdout + again.stderr


def test_auto_exclusion(binary, deep_model, deep_run):
    attribute(binary, deep_run, deep_model, "--attribute.embed_cos", "0")  # every layer embedding-aligned: nothing left
    out = read_out(deep_run)
    assert list(out["exclude_first"]) == [12] * len(out["labels"]) and (out["selected"] == -1).all()
    attribute(binary, deep_run, deep_model, "--attribute.embed_cos", "1.01")
    out = read_out(deep_run)
    assert list(out["exclude_first"]) == [2] * len(out["labels"]) and list(out["exclude_last"]) == [2] * len(out["labels"])
    assert ((out["selected"] >= 2) & (out["selected"] < 10)).all()


# ---------------------------------------------------------------------------------------------------
# (d) bad input

def bad(binary, run_dir, model, *extra):
    proc = attribute(binary, run_dir, model, *extra, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert not (run_dir / "attribute" / "attribution.h5").exists()
    assert not any(p.name.endswith(".done") for p in (run_dir / "attribute").glob("*")) if (run_dir / "attribute").exists() else True
    return proc.stdout + proc.stderr


def test_bad_input(binary, toy_model, deep_run, toy_run, tmp_path):
    msg = bad(binary, toy_run, toy_model, "--attribute.vectors", str(tmp_path / "none.h5"))
    assert "none.h5" in msg and "attribute.vectors" in msg
    (tmp_path / "junk.h5").write_bytes(b"not an hdf5 file at all")
    msg = bad(binary, toy_run, toy_model, "--attribute.vectors", str(tmp_path / "junk.h5"))
    assert "junk.h5" in msg
    msg = bad(binary, toy_run, toy_model, "--attribute.labels", "no-such-behaviour")
    assert "vectors.h5" in msg and "names" in msg and "no-such-behaviour" in msg
    msg = bad(binary, toy_run, toy_model, "--attribute.vectors", str(deep_run / "vectors" / "vectors.h5"))  # another model's vectors
    assert "vectors.h5" in msg and "d_model" in msg
    other = tmp_path / "other.jsonl"
    other.write_text("".join((toy_run / "generate" / "generations.jsonl").read_text().splitlines(keepends=True)[1:]))
    msg = bad(binary, toy_run, toy_model, "--attribute.generations", str(other))  # spans of other generations
    assert "spans.h5" in msg and "input_sha256" in msg
    with h5py.File(tmp_path / "bad_layers.h5", "w") as f:
        f.attrs["format"] = "nothing"
    msg = bad(binary, toy_run, toy_model, "--attribute.vectors", str(tmp_path / "bad_layers.h5"))
    assert "bad_layers.h5" in msg
    msg = bad(binary, toy_run, toy_model, "--attribute.layers", "9")
    assert "vectors.h5" in msg and "layers" in msg


# ---------------------------------------------------------------------------------------------------
# (e) behaviours without spans

def partial_run(binary, toy_model, toy_run, out, sections):
    """toy_run's generations, spans from a lexicon with only the shipped `sections` (every other
    sentence: deduction), and the vectors of those spans."""
    (out / "generate").mkdir(parents=True)
    shutil.copy(toy_run / "generate" / "generations.jsonl", out / "generate" / "generations.jsonl")
    keep, lines = False, ["default = deduction"]
    for line in (ROOT / "configs" / "annotate" / "lexicon.txt").read_text().splitlines():
        if line.startswith("["):
            keep = line.strip("[]") in sections
        if keep and line.strip() and not line.startswith("#"):
            lines.append(line)
    if not sections:
        lines += ["[deduction]", "\\w"]
    (out / "lexicon.txt").write_text("\n".join(lines) + "\n")
    bench.stage(binary, out, "annotate", "--model.path", toy_model, "--annotate.lexicon", out / "lexicon.txt")
    bench.stage(binary, out, "vectors", "--model.path", toy_model)
    return out


def skipped_of(run_dir):
    return [json.loads(line) for line in (run_dir / "attribute" / "skipped.jsonl").read_text().splitlines() if line.strip()]


def test_vector_without_spans_is_skipped_and_recorded(binary, toy_model, toy_run, tmp_path):
    out = partial_run(binary, toy_model, toy_run, tmp_path / "run", ["backtracking"])
    missing = ["initializing", "adding-knowledge", "example-testing", "uncertainty-estimation"]
    with h5py.File(out / "vectors" / "vectors.h5", "r") as f:
        names = list(f["names"].asstr()[()])
        counts = f["counts"][()]
    for label in missing:  # present in the file, stored as missing
        assert label in names and (counts[names.index(label)] == 0).all()
    assert (counts[names.index("backtracking")] > 0).all() and (counts[names.index("deduction")] > 0).all()

    proc = attribute(binary, out, toy_model, n_examples=0)
    log = proc.stdout + proc.stderr
    res = read_out(out)
    assert res["labels"] == ["deduction", "backtracking"]
    assert np.isfinite(res["mean"]).all() and (res["n_examples"] > 0).all()
    skipped = skipped_of(out)
    assert sorted(r["label"] for r in skipped) == sorted(missing)
    first_layer = int(res["layers"][0])
    for r in skipped:
        assert r["kind"] == "vector_count_zero" and r["spans"] == 0 and r["layer"] == first_layer
        assert "count 0" in r["detail"] and "no usable span" in r["detail"]
        assert f"behaviour '{r['label']}' skipped: its vector has count 0" in log
    prov = json.loads((out / "attribute" / "provenance.json").read_text())
    assert prov["skipped"] == {"vector_count_zero": 4}
    assert "skipped vector_count_zero" in log and "see skipped.jsonl" in log

    # Asked for by name: an input error naming the vectors file, the label and the reason.
    msg = bad(binary, out, toy_model, "--attribute.labels", "deduction,initializing")
    assert "vectors.h5" in msg and "'initializing'" in msg and "count 0" in msg


def test_behaviour_without_positions_is_recorded(binary, toy_model, toy_run, tmp_path):
    out = partial_run(binary, toy_model, toy_run, tmp_path / "run", [])  # every span is deduction
    proc = attribute(binary, out, toy_model, n_examples=0)
    res = read_out(out)
    assert res["labels"] == ["deduction"] and res["n_examples"][0] == 0
    assert np.isnan(res["mean"]).all() and (res["selected"] == -1).all() and (res["positions"] == 0).all()
    kinds = sorted(r["kind"] for r in skipped_of(out))
    assert kinds == ["label_without_positions"] + ["vector_count_zero"] * 5
    assert "behaviour 'deduction': no example has a span of another behaviour" in proc.stdout + proc.stderr
