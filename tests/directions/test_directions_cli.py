"""The reasoning-direction stages (docs/directions.md) through the CLI on the shipped toy pair, at reduced size
(about a minute on 2 cores).

Checked against references on the same activations (fp64 numpy; HF transformers in fp32):
- `directions contrast` equals numpy's mean(A) - mean(B), unit-normalised per layer; its cosines with a vectors file
  are numpy's (1e-5);
- `directions lens` equals HF's final norm and lm_head applied to the stored residual streams (KL, target, rank,
  probability, top tokens; 1e-4), and those streams equal HF's hidden states (1e-4, the engine's parity tolerance);
- `directions cka` equals numpy's linear and RBF CKA in sample space, within one model and across the toy thinker and
  the toy base on the same token stream (1e-8);
- `intervene` (sweep.kind = intervene): zero ablation and activation patching at a layer (at the last prompt token, and
  at the tokens of the prompt's spans) equal the same loops with HF forward hooks (answer log-probabilities within 1e-3 nats), directional ablation by hooks equals the orthogonalised
  export of `directions orthogonalize` (1e-3 nats), through sweep plan / sweep run / reduce;
- planted truth: `directions probe` recovers the toy annotator's behaviour labels of the thinker's own tokens on problem
  seed 202 (not the seed the models trained on) with held-out accuracy >= 0.9 at some layer, clearly above the probe on
  the embeddings (resid_pre of layer 0) and the shuffled-label control.
Bad input (CKA across different token streams, probes without a second class or with too few examples per class, an
intervention layer out of range, a lens without the last layer) exits 2 with one line naming file and field and leaves
no output that looks finished.
"""
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from thinksteer_testing import binary, run_thinksteer, toy_model  # noqa: E402,F401  (fixtures)

FMT = ["--generate.chat_format", "deepseek_r1"]
HOOKS = ["--collect.hooks", "blocks.0.hook_resid_pre,blocks.*.hook_resid_post"]
POST = ["--directions.hooks", ",".join(f"blocks.{l}.hook_resid_post" for l in range(8))]  # one site for a contrast


def run(binary, *args, ranks=0, check=True):
    return run_thinksteer(binary, *args, "--run.threads", "1", "--log.level", "warn", ranks=ranks, check=check)


def strs(ds):
    return [v.decode() if isinstance(v, bytes) else v for v in ds[()]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, binary, toy_model):
    root = tmp_path_factory.mktemp("directions")
    base = toy_model.parent / "toy-base"
    last = ["--collect.source", "prompts", "--collect.positions", "last", *HOOKS, *FMT]
    run(binary, "collect", "--model.path", toy_model, "--run.dir", root / "reason", "--data.prompts", "builtin:toy-test", "--data.limit", "24", *last, ranks=2)
    run(binary, "collect", "--model.path", toy_model, "--run.dir", root / "control", "--data.prompts", "builtin:control", "--data.limit", "24", *last, ranks=2)
    run(binary, "collect", "--model.path", base, "--run.dir", root / "base", "--data.prompts", "builtin:toy-test", "--data.limit", "24", *last)
    return {"root": root, "thinker": toy_model, "base": base,
            "reason": root / "reason/collect/activations.h5", "control": root / "control/collect/activations.h5",
            "base_acts": root / "base/collect/activations.h5"}


def activations(path):
    """{hook: [rows, d] float64} of a collect output."""
    with h5py.File(path, "r") as f:
        return {k: f["activations"][k][()].astype(np.float64) for k in f["activations"] if k.startswith("blocks.")}


def test_contrast_matches_numpy(binary, runs):
    d = runs["root"] / "contrast"
    args = ["--directions.a", runs["reason"], "--directions.b", runs["control"], *POST]
    run(binary, "directions", "contrast", "--run.dir", d / "raw", *args, "--directions.normalize", "false", ranks=2)
    run(binary, "directions", "contrast", "--run.dir", d / "unit", *args, "--directions.compare", d / "raw/directions/contrast.h5", ranks=2)
    a, b = activations(runs["reason"]), activations(runs["control"])
    with h5py.File(d / "raw/directions/contrast.h5") as f:
        raw, layers, hook = f["vectors"][0], f["layers"][()], f.attrs["hook_measured"]
    assert hook == "blocks.{l}.hook_resid_post" and list(layers) == list(range(8))
    with h5py.File(d / "unit/directions/contrast.h5") as f:
        unit = f["vectors"][0]
    for i, l in enumerate(layers):
        want = a[f"blocks.{l}.hook_resid_post"].mean(0) - b[f"blocks.{l}.hook_resid_post"].mean(0)
        np.testing.assert_allclose(raw[i], want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))
        np.testing.assert_allclose(unit[i], want / np.linalg.norm(want), rtol=0, atol=1e-5)
    table = np.genfromtxt(d / "unit/directions/contrast.csv", delimiter=",", names=True, dtype=None, encoding=None)
    np.testing.assert_allclose(table["cos_contrast"], 1.0, atol=1e-5)  # against its own raw version
    np.testing.assert_allclose(table["norm"], np.linalg.norm(raw, axis=1), rtol=1e-5)


def test_probe_recovers_planted_behaviours(binary, runs, toy_model):
    r = runs["root"] / "probe"
    run(binary, "generate", "--model.path", toy_model, "--run.dir", r, "--data.prompts", "builtin:toy-test@202", "--data.limit", "96",
        "--toy.n_problems", "20000", *FMT, "--generate.max_new_tokens", "384", "--generate.batch_size", "24", ranks=2)
    run(binary, "annotate", "--model.path", toy_model, "--run.dir", r, "--annotate.annotator", "toy")
    run(binary, "collect", "--model.path", toy_model, "--run.dir", r, "--collect.source", "generations", "--collect.positions", "span_tokens", *HOOKS, ranks=2)
    run(binary, "directions", "probe", "--run.dir", r, ranks=2)
    with h5py.File(r / "directions/probes.h5") as f:
        hooks, acc, shuffled, ci = strs(f["hooks"]), f["accuracy"][()], f["shuffled_accuracy"][()], f["accuracy_ci"][()]
        assert len(strs(f["classes"])) == 6 and f["weights/blocks.4.hook_resid_post"].shape == (6, 128)
        assert f.attrs["n_test_traces"] > 0 and f.attrs["n_train_traces"] > f.attrs["n_test_traces"]
    embed = acc[hooks.index("blocks.0.hook_resid_pre")]
    assert acc.max() >= 0.9, dict(zip(hooks, acc))
    assert acc.max() >= embed + 0.15 and acc.max() >= shuffled.max() + 0.3, (acc, embed, shuffled)
    assert np.all(ci[:, 0] <= acc + 1e-12) and np.all(acc <= ci[:, 1] + 1e-12)
    rerun = run_thinksteer(binary, "directions", "probe", "--run.dir", r)
    assert "is complete for this config" in rerun.stderr


def hf_model(path):
    import torch
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()


def test_lens_matches_hf(binary, runs):
    import torch
    r = runs["root"] / "lens"
    run(binary, "directions", "lens", "--model.path", runs["thinker"], "--run.dir", r, "--directions.a", runs["reason"], "--directions.top_k", "3",
        "--directions.batch_rows", "7", ranks=2)
    m = hf_model(runs["thinker"])
    acts = activations(runs["reason"])
    with h5py.File(runs["reason"]) as f:
        tok_id, offs, n_tok = f["tokens/id"][()], f["sequences/token_offset"][()], f["sequences/n_tokens"][()]
    with torch.inference_mode():  # the stored streams are HF's hidden states at the last token
        for s in range(0, len(offs), 6):
            ids = torch.tensor(tok_id[offs[s]:offs[s] + n_tok[s]])[None]
            post = {}
            hooks = [layer.register_forward_hook(lambda mod, a, out, i=i: post.__setitem__(i, (out[0] if isinstance(out, tuple) else out)[0, -1]))
                     for i, layer in enumerate(m.model.layers)]
            m(ids)
            for h in hooks:
                h.remove()
            for l in range(8):
                np.testing.assert_allclose(acts[f"blocks.{l}.hook_resid_post"][s], post[l].double().numpy(), atol=1e-4 * max(1, post[l].abs().max().item()))
        logp = {l: torch.log_softmax(m.lm_head(m.model.norm(torch.tensor(acts[f"blocks.{l}.hook_resid_post"], dtype=torch.float32))).double(), -1)
                for l in range(8)}
    final = logp[7]
    target = final.argmax(-1)
    with h5py.File(r / "directions/lens.h5") as f:
        assert list(f["layers"][()]) == list(range(8))
        np.testing.assert_array_equal(f["target"][()], target.numpy())
        for l in range(8):
            kl = (final.exp() * (final - logp[l])).sum(-1).numpy()
            t = logp[l].gather(1, target[:, None])[:, 0]
            np.testing.assert_allclose(f["kl"][:, l], kl, atol=1e-4)
            np.testing.assert_allclose(f["target_prob"][:, l], t.exp().numpy(), atol=1e-5)
            np.testing.assert_array_equal(f["target_rank"][:, l], (logp[l] > t[:, None]).sum(-1).numpy())
            top = logp[l].topk(3, -1)
            np.testing.assert_allclose(f["top_probs"][:, l], top.values.exp().numpy(), atol=1e-5)
            np.testing.assert_array_equal(f["top_ids"][:, l][:, 0], top.indices[:, 0].numpy())
        assert np.all(f["kl"][:, 7] == 0) and np.all(f["target_rank"][:, 7] == 0)
    rows = [json.loads(x) for x in (r / "directions/lens_top.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and len(rows[0]["layers"]) == 8 and len(rows[0]["layers"][0]["top"]) == 3


def centred_gram(x, rbf=False):
    if rbf:
        d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        dist = np.sort(np.sqrt(d2[np.triu_indices(len(x), 1)]))
        sigma = dist[(len(dist) - 1) // 2]
        k = np.exp(-d2 / (2 * sigma * sigma))
    else:
        k = x @ x.T
    h = np.eye(len(x)) - 1.0 / len(x)
    return h @ k @ h


def cka(x, y, rbf=False):
    if np.ptp(x, axis=0).max() == 0 or np.ptp(y, axis=0).max() == 0:
        return np.nan  # a representation without variance (the embedding of the prompts' common last token)
    k, l = centred_gram(x, rbf), centred_gram(y, rbf)
    return (k * l).sum() / np.sqrt((k * k).sum() * (l * l).sum())


def same(a, b, tol=1e-8):
    return (np.isnan(a) and np.isnan(b)) or abs(a - b) < tol


def test_cka_matches_numpy_within_and_across_models(binary, runs):
    r = runs["root"] / "cka"
    run(binary, "directions", "cka", "--run.dir", r / "one", "--directions.a", runs["reason"], "--directions.cka_kernel", "both", ranks=2)
    run(binary, "directions", "cka", "--run.dir", r / "two", "--directions.a", runs["reason"], "--directions.b", runs["base_acts"], ranks=2)
    a, b = activations(runs["reason"]), activations(runs["base_acts"])
    with h5py.File(r / "one/directions/cka.h5") as f:
        hooks = strs(f["hooks_a"])
        assert hooks[0] == "blocks.0.hook_resid_pre" and f.attrs["n_rows"] == 24
        for i, p in enumerate(hooks):
            for j, q in enumerate(hooks):
                assert same(f["linear"][i, j], cka(a[p], a[q])) and same(f["rbf"][i, j], cka(a[p], a[q], rbf=True)), (p, q)
    with h5py.File(r / "two/directions/cka.h5") as f:
        assert "rbf" not in f and strs(f["hooks_b"]) == hooks
        for i, p in enumerate(hooks):
            for j, q in enumerate(hooks):
                assert same(f["linear"][i, j], cka(a[p], b[q])), (p, q)


def answer_logp(m, prefix_ids, answer_ids, hook=None, layer=None):
    """log p(answer | prefix) under HF with an optional forward hook on decoder layer `layer`."""
    import torch
    ids = torch.tensor(prefix_ids + answer_ids)[None]
    handle = m.model.layers[layer].register_forward_hook(hook) if hook else None
    with torch.inference_mode():
        logp = torch.log_softmax(m(ids).logits[0].double(), -1)
    if handle:
        handle.remove()
    n = len(prefix_ids)
    return sum(logp[n - 1 + i, t].item() for i, t in enumerate(answer_ids))


def test_intervene_matches_hf_and_the_orthogonalised_export(binary, runs, tmp_path):
    import torch
    from tokenizers import Tokenizer
    thinker = runs["thinker"]
    tok = Tokenizer.from_file(str(thinker / "tokenizer.json"))
    bos = "<｜begin▁of▁sentence｜><｜User｜>"
    qs = [("What is 12 plus 7?", "What is 31 plus 5?", "19"), ("A box holds 9 eggs. How many eggs are in 3 boxes?", "A box holds 4 eggs. How many eggs are in 2 boxes?", "27"),
          ("What is 40 minus 13?", "What is 25 minus 8?", "27"), ("What is 6 times 7?", "What is 8 times 9?", "42")]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "question": q, "source": s, "answer": a}) + "\n" for i, (q, s, a) in enumerate(qs)))
    r = runs["root"] / "intervene"
    common = ["--model.path", thinker, "--run.dir", r, "--data.prompts", data, *FMT, "--intervene.answer_prefix", "The answer is ",
              "--intervene.layers", "2,5", "--intervene.source_field", "source", "--intervene.positions", "last"]
    run(binary, "directions", "contrast", "--run.dir", r, "--directions.a", runs["reason"], "--directions.b", runs["control"], *POST)
    direction = ["--directions.direction", r / "directions/contrast.h5", "--directions.layer", "4"]
    run(binary, "sweep", "plan", *common, *direction, "--sweep.kind", "intervene", "--intervene.modes", "zero,patch,direction")
    manifest = [json.loads(x) for x in (r / "intervene/manifest.jsonl").read_text().splitlines()]
    assert [(x["mode"], x["layer"]) for x in manifest] == [("zero", 2), ("zero", 5), ("patch", 2), ("patch", 5), ("direction", -1)]
    run(binary, "sweep", "run", *common, *direction, "--sweep.kind", "intervene", "--intervene.modes", "zero,patch,direction", "--task-id", "0", ranks=2)
    partial = run(binary, "reduce", *common, *direction, "--sweep.kind", "intervene", "--intervene.modes", "zero,patch,direction", check=False)
    assert partial.returncode == 3 and (r / "intervene/missing.txt").read_text().split() == ["1-4"]
    run(binary, "intervene", *common, *direction, "--intervene.modes", "zero,patch,direction", ranks=2)
    summary = np.genfromtxt(r / "intervene/summary.csv", delimiter=",", names=True, dtype=None, encoding=None)
    assert list(summary["mode"]) == ["zero", "zero", "patch", "patch", "direction"]

    def ids(text):
        return tok.encode(text, add_special_tokens=False).ids
    tasks = {}
    for f in (r / "intervene/tasks").glob("*.h5"):
        with h5py.File(f) as h:
            tasks[(h.attrs["mode"], int(h.attrs["layer"]))] = {k: h[k][()] for k in ("logp", "logp_clean", "logp_source")}
    m = hf_model(thinker)
    for i, (q, s, a) in enumerate(qs):
        pre, src, ans = ids(bos + q + "<｜Assistant｜><think>\n" + "The answer is "), ids(bos + s + "<｜Assistant｜><think>\n" + "The answer is "), ids(a)
        assert abs(tasks[("zero", 2)]["logp_clean"][i] - answer_logp(m, pre, ans)) < 1e-3
        assert abs(tasks[("patch", 2)]["logp_source"][i] - answer_logp(m, src, ans)) < 1e-3
        for l in (2, 5):
            def zero(mod, args, out):  # intervene.positions = last: the prompt's last token only
                h = (out[0] if isinstance(out, tuple) else out).clone()
                h[0, len(pre) - 1] = 0
                return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h
            assert abs(tasks[("zero", l)]["logp"][i] - answer_logp(m, pre, ans, zero, l)) < 1e-3
            cache = {}
            answer_logp(m, src, ans, lambda mod, args, out: cache.__setitem__("h", (out[0] if isinstance(out, tuple) else out)[0, len(src) - 1].clone()), l)

            def patch(mod, args, out):
                h = (out[0] if isinstance(out, tuple) else out).clone()
                h[0, len(pre) - 1] = cache["h"]
                return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h
            assert abs(tasks[("patch", l)]["logp"][i] - answer_logp(m, pre, ans, patch, l)) < 1e-3
    # Directional ablation by hooks equals the orthogonalised checkpoint, scored unhooked.
    run(binary, "directions", "orthogonalize", "--model.path", thinker, "--run.dir", r, *direction, "--directions.dtype", "float32")
    export = r / "directions/orthogonalized"
    assert json.loads((export / "config.json").read_text())["tie_word_embeddings"] is False
    run(binary, "intervene", "--model.path", export, "--run.dir", r / "export", "--data.prompts", data, *FMT, "--intervene.answer_prefix", "The answer is ",
        "--intervene.modes", "zero", "--intervene.layers", "2")
    with h5py.File(next((r / "export/intervene/tasks").glob("*.h5"))) as h:
        np.testing.assert_allclose(h["logp_clean"][()], tasks[("direction", -1)]["logp"], atol=1e-3)
    assert np.abs(tasks[("direction", -1)]["logp"] - tasks[("direction", -1)]["logp_clean"]).max() > 1e-3  # the ablation did something


def expect_bad(binary, *args, field, absent):
    r = run(binary, *args, check=False)
    lines = [x for x in r.stderr.splitlines() if "error" in x]
    assert r.returncode == 2 and len(lines) == 1 and field in lines[0], r.stderr
    assert not Path(absent).exists() and not Path(str(absent) + ".done").exists()


def test_bad_input(binary, runs):
    r = runs["root"] / "bad"
    expect_bad(binary, "directions", "cka", "--run.dir", r, "--directions.a", runs["reason"], "--directions.b", runs["control"],
               field="/sequences/id", absent=r / "directions/cka.h5")
    expect_bad(binary, "directions", "probe", "--run.dir", r, "--directions.a", runs["reason"], field="/activations/label", absent=r / "directions/probes.h5")
    expect_bad(binary, "directions", "probe", "--run.dir", r, "--directions.a", runs["reason"], "--directions.b", runs["control"],
               "--directions.min_per_class", "1000", field="directions.min_per_class", absent=r / "directions/probes.h5")
    expect_bad(binary, "intervene", "--model.path", runs["thinker"], "--run.dir", r, "--data.prompts", "builtin:toy-test", "--data.limit", "2",
               "--intervene.layers", "8", field="intervene.layers", absent=r / "intervene/manifest.jsonl")
    expect_bad(binary, "intervene", "--model.path", runs["thinker"], "--run.dir", r, "--data.prompts", "builtin:toy-test", "--data.limit", "2",
               "--intervene.modes", "patch", field="intervene.modes", absent=r / "intervene/manifest.jsonl")
    run(binary, "collect", "--model.path", runs["thinker"], "--run.dir", r / "l0", "--data.prompts", "builtin:toy-test", "--data.limit", "3",
        "--collect.source", "prompts", "--collect.positions", "last", "--collect.hooks", "blocks.0.hook_resid_post", *FMT)
    expect_bad(binary, "directions", "lens", "--model.path", runs["thinker"], "--run.dir", r, "--directions.a", r / "l0/collect/activations.h5",
               field="blocks.7.hook_resid_post", absent=r / "directions/lens.h5")


def test_span_patching_matches_hf(binary, runs, tmp_path):
    """intervene.positions = spans: the source's activations at the tokens of the prompt's spans (here its numbers)."""
    import re

    from tokenizers import Tokenizer
    thinker = runs["thinker"]
    tok = Tokenizer.from_file(str(thinker / "tokenizer.json"))
    head, tail = "<｜begin▁of▁sentence｜><｜User｜>", "<｜Assistant｜><think>\nThe answer is "
    pairs = [("What is 12 plus 7?", "What is 31 plus 5?", "19"), ("What is 40 minus 13?", "What is 25 minus 18?", "27"),
             ("What is 6 times 7?", "What is 8 times 9?", "42"), ("Ann has 5 pens and buys 4 more. How many pens?", "Ann has 8 pens and buys 3 more. How many pens?", "9")]

    def enc(text):
        return tok.encode(text, add_special_tokens=False)
    rows = []
    for i, (q, s, a) in enumerate(pairs):
        if len(enc(head + q + tail).ids) != len(enc(head + s + tail).ids):
            continue  # positions = spans patches position by position: same lengths only
        rows.append({"id": f"s{i}", "question": q, "source": s, "answer": a,
                     "spans": [{"begin": m.start(), "end": m.end(), "label": "number"} for m in re.finditer(r"\d+", q)]})
    assert len(rows) >= 2
    data = tmp_path / "spans.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = runs["root"] / "intervene-spans"
    run(binary, "intervene", "--model.path", thinker, "--run.dir", r, "--data.prompts", data, *FMT, "--intervene.answer_prefix", "The answer is ",
        "--intervene.modes", "patch", "--intervene.layers", "3", "--intervene.source_field", "source", "--intervene.positions", "spans")
    with h5py.File(next((r / "intervene/tasks").glob("*.h5"))) as h:
        got = dict(zip(strs(h["prompt_id"]), h["logp"][()]))
    m = hf_model(thinker)
    for row in rows:
        pre, src, ans = enc(head + row["question"] + tail), enc(head + row["source"] + tail).ids, enc(row["answer"]).ids
        shift = len(head)  # code points (the head is one code point per character)
        span_tok = [t for t, (b, e) in enumerate(pre.offsets) if any(e > sp["begin"] + shift and b < sp["end"] + shift for sp in row["spans"])]
        assert span_tok
        cache = {}
        answer_logp(m, src, ans, lambda mod, args, out: cache.__setitem__("h", (out[0] if isinstance(out, tuple) else out)[0].clone()), 3)

        def patch(mod, args, out):
            h = (out[0] if isinstance(out, tuple) else out).clone()
            h[0, span_tok] = cache["h"][span_tok]
            return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h
        want = answer_logp(m, pre.ids, ans, patch, 3)
        assert abs(got[row["id"]] - want) < 1e-3, (row["id"], got[row["id"]], want)
        assert abs(want - answer_logp(m, pre.ids, ans)) > 1e-3  # the patch did something
