"""ThinkEdit (docs/thinkedit.md) through the CLI on the shipped toy thinker, at reduced size (about 60 s on 2 cores).

The chain: 60 greedy probe traces (2 ranks), `thinkedit direction` with the percentile split, `thinkedit edit`.
Checked against HF transformers on the same traces (fp32, max |a - b| <= 1e-4, the engine's parity tolerance):
- the attn and mlp directions (resid_mid from a pre-hook on post_attention_layernorm, resid_post from
  hidden_states) and mean.long / mean.short, over lengths.jsonl's sets and §C.2's windows;
- the head scores (o_proj's input from a pre-hook, W_O per head, against -u_l), and the ranking;
- the edited checkpoint loads in transformers, and its logits equal thinksteer's on the same checkpoint (collect's
  ln_final.hook_normalized times the tied embedding); the edit changed them.
And: a rerun skips; the steering sweep's forced close (§C.3) scores traces cut at the cap; bad input (a direction
of another model or hook, k above the head count, an empty long set, an output directory the stage did not write)
exits 2 with one line naming file and field, and leaves nothing that looks finished.
"""
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from thinksteer_testing import binary, demo_model, run_thinksteer, toy_model  # noqa: E402,F401  (fixtures)

TOL = 1e-4
GEN = ["--data.prompts", "builtin:toy-train", "--data.limit", "60", "--toy.n_problems", "20000", "--generate.chat_format", "deepseek_r1",
       "--generate.max_new_tokens", "384", "--generate.batch_size", "30"]


def run(binary, *args, ranks=0, check=True):
    return run_thinksteer(binary, *args, "--run.threads", "1", ranks=ranks, check=check)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, binary, toy_model):
    run_dir = tmp_path_factory.mktemp("thinkedit") / "run"
    base = ["--model.path", str(toy_model), "--run.dir", str(run_dir)]
    run(binary, "generate", *base, *GEN, ranks=2)
    run(binary, "thinkedit", "direction", *base, "--thinkedit.split", "percentile", "--thinkedit.batch_size", "7", ranks=2)
    run(binary, "thinkedit", "edit", *base, "--thinkedit.heads_k", "3")
    return {"dir": run_dir, "base": base, "model": toy_model}


def vectors(path):
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["names"][()]]
        return {n: f["vectors"][i] for i, n in enumerate(names)}, f.attrs["hook_measured"], f.attrs["hook_applied"]


def hf_pass(model_dir, traces):
    """Per trace: resid_mid and resid_post [L, T, D] and o_proj's input [L, T, H*E] from HF transformers (fp32)."""
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    mid, post, z = {}, {}, {}
    for i, layer in enumerate(m.model.layers):  # (HF's last hidden state is after the final norm: hook the layer instead)
        layer.register_forward_hook(lambda mod, a, out, i=i: post.__setitem__(i, (out[0] if isinstance(out, tuple) else out)[0].clone()))
        layer.post_attention_layernorm.register_forward_pre_hook(lambda mod, a, i=i: mid.__setitem__(i, a[0][0].clone()))
        layer.self_attn.o_proj.register_forward_pre_hook(lambda mod, a, i=i: z.__setitem__(i, a[0][0].clone()))
    out = []
    with torch.inference_mode():
        for ids in traces:
            m(torch.tensor([ids]))
            L = len(m.model.layers)
            out.append((np.stack([mid[l].numpy() for l in range(L)]), np.stack([post[l].numpy() for l in range(L)]),
                        np.stack([z[l].numpy() for l in range(L)])))
    return m, out


def test_direction_and_heads_equal_hf(chain):
    d = chain["dir"] / "thinkedit"
    lengths = [json.loads(line) for line in (d / "lengths.jsonl").read_text().splitlines()]
    rows = {json.loads(line)["id"]: json.loads(line) for line in (chain["dir"] / "generate" / "generations.jsonl").read_text().splitlines()}
    thresholds = json.loads((d / "thresholds.json").read_text())
    assert thresholds["n_long"] > 0 and thresholds["n_short"] > 0
    for t in lengths:
        if t["set"] == "long":
            assert t["think_tokens"] >= thresholds["long_above"]
        if t["set"] == "short":
            assert t["think_tokens"] <= thresholds["short_below"]
    used = [t for t in lengths if t["set"] in ("long", "short")]
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(chain["model"] / "tokenizer.json"))

    def sequence(row):  # prompt tokens (the encoded prompt_text) + the generated token_ids
        prompt = tok.encode(row["prompt_text"], add_special_tokens=False).ids
        assert len(prompt) == row["prompt_tokens"]
        return prompt + row["token_ids"]
    model, acts = hf_pass(chain["model"], [sequence(rows[t["id"]]) for t in used])
    means = {s: [] for s in ("long", "short")}
    zsum = 0
    for t, (mid, post, z) in zip(used, acts):
        p = rows[t["id"]]["prompt_tokens"]
        w = slice(p - 1, p + t["think_tokens"])  # §C.2: the last prompt token .. the token before </think>
        means[t["set"]].append((mid[:, w].mean(1), post[:, w].mean(1)))
        if t["set"] == "short":
            zsum = zsum + z[:, w].mean(1)
    attn, hm, ha = vectors(d / "attn.h5")
    mlp, pm, pa = vectors(d / "mlp.h5")
    assert (hm, ha, pm, pa) == ("blocks.{l}.hook_resid_mid", "blocks.{l}.hook_attn_out", "blocks.{l}.hook_resid_post", "blocks.{l}.hook_mlp_out")
    for k, got in ((0, attn), (1, mlp)):
        long_mean = np.mean([m[k] for m in means["long"]], 0)
        short_mean = np.mean([m[k] for m in means["short"]], 0)
        np.testing.assert_allclose(got["mean.long"], long_mean, atol=TOL, rtol=0)
        np.testing.assert_allclose(got["mean.short"], short_mean, atol=TOL, rtol=0)
        np.testing.assert_allclose(got["length"], long_mean - short_mean, atol=TOL, rtol=0)
    # §C.4: s[l, h] = < W_O[:, h] zbar_h, -u_l >
    zbar = zsum / len(means["short"])
    H = model.config.num_attention_heads
    E = zbar.shape[1] // H
    scores = np.zeros((len(zbar), H))
    for l, layer in enumerate(model.model.layers):
        w = layer.self_attn.o_proj.weight.detach().numpy().astype(np.float64)
        u = attn["length"][l] / np.linalg.norm(attn["length"][l])
        for h in range(H):
            scores[l, h] = -(w[:, h * E:(h + 1) * E] @ zbar[l, h * E:(h + 1) * E]) @ u
    with h5py.File(d / "heads.h5", "r") as f:
        np.testing.assert_allclose(f["scores"][()], scores, atol=TOL, rtol=0)
        ranking = f["ranking"][()]
    assert [tuple(r) for r in ranking[:3]] == [tuple(x) for x in json.loads((d / "edit.json").read_text())["heads"]]


def test_edited_checkpoint_loads_in_transformers_and_matches_thinksteer(chain, binary, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM
    edited = chain["dir"] / "thinkedit" / "edited"
    record = json.loads((edited / "thinkedit.json").read_text())
    assert record["format"] == "thinksteer.thinkedit_edit" and len(record["heads"]) == 3 and record["dtype"] == "source"
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"question": "A farmer has 12 sheep and buys 7 more. How many sheep now?"}) + "\n")
    run(binary, "collect", "--model.path", str(edited), "--run.dir", str(tmp_path / "c"), "--data.prompts", str(prompts),
        "--collect.hooks", "ln_final.hook_normalized", "--collect.positions", "all", "--generate.chat_format", "deepseek_r1")
    with h5py.File(tmp_path / "c" / "collect" / "activations.h5", "r") as f:
        normed = f["activations/ln_final.hook_normalized"][()]
        ids = f["tokens/id"][()]
    hf = AutoModelForCausalLM.from_pretrained(edited, dtype=torch.float32).eval()
    orig = AutoModelForCausalLM.from_pretrained(chain["model"], dtype=torch.float32).eval()
    with torch.inference_mode():
        want = hf(torch.from_numpy(ids.astype(np.int64))[None]).logits[0].numpy()
        before = orig(torch.from_numpy(ids.astype(np.int64))[None]).logits[0].numpy()
    got = normed @ hf.lm_head.weight.detach().numpy().T
    assert np.abs(got - want).max() <= TOL
    assert np.abs(want - before).max() > 1e-3  # the edit changed the model


def test_rerun_skips_and_forced_close_scores_cut_traces(chain, binary):
    r = run(binary, "thinkedit", "edit", *chain["base"], "--thinkedit.heads_k", "3")
    assert "complete for this config" in r.stderr + r.stdout
    # A sweep point with a cap far below the traces' length: every trace is cut and force-closed.
    sweep = chain["dir"] / "sweep-forced"
    run(binary, "steer", "--model.path", str(chain["model"]), "--run.dir", str(sweep), "--steer.vectors", str(chain["dir"] / "thinkedit" / "mlp.h5"),
        "--sweep.vectors", "length", "--sweep.layers", "all", "--sweep.hooks", "hook_mlp_out", "--sweep.controls", "none",
        "--sweep.coefficients", "0.1", "--sweep.datasets", "builtin:toy-test", "--data.limit", "10", "--toy.n_problems", "20000",
        "--generate.chat_format", "deepseek_r1", "--generate.max_new_tokens", "12", "--steer.force_close", "true",
        "--steer.force_close_tokens", "24", "--annotate.annotator", "toy")
    tasks = sorted((sweep / "sweep" / "tasks").glob("*.h5"))
    assert len(tasks) == 2  # baseline and the point
    for t in tasks:
        with h5py.File(t, "r") as f:
            assert (f["prompts/think_tokens"][()] == 12).all()
            assert (f["prompts/closed"][()] == 0).all()
            texts = [x.decode() if isinstance(x, bytes) else x for x in f["prompts/text"][()]]
            assert all("Yeah, I think that's right." in x for x in texts)
            assert (f["prompts/correct"][()] >= 0).all()


@pytest.mark.parametrize("case", ["other_model", "other_hook", "k_too_large", "empty_long_set", "foreign_out"])
def test_bad_input(chain, binary, demo_model, tmp_path, case):
    d = chain["dir"] / "thinkedit"
    base = chain["base"]
    if case == "other_model":
        args = ["thinkedit", "edit", "--model.path", str(demo_model), "--run.dir", str(tmp_path / "r"), "--thinkedit.direction", str(d / "attn.h5"),
                "--thinkedit.heads", "0.0"]
        field = "model: was measured on another checkpoint"
    elif case == "other_hook":
        args = ["thinkedit", "edit", *base, "--thinkedit.direction", str(d / "mlp.h5"), "--thinkedit.out", str(tmp_path / "e")]
        field = "hook_applied"
    elif case == "k_too_large":
        args = ["thinkedit", "edit", *base, "--thinkedit.heads_k", "33", "--thinkedit.out", str(tmp_path / "e")]
        field = "thinkedit.heads_k"
    elif case == "empty_long_set":
        args = ["thinkedit", "direction", "--model.path", str(chain["model"]), "--run.dir", str(tmp_path / "r"),
                "--thinkedit.generations", str(chain["dir"] / "generate" / "generations.jsonl")]
        field = "thinkedit.split"
    else:
        (tmp_path / "e").mkdir()
        (tmp_path / "e" / "precious.txt").write_text("x")
        args = ["thinkedit", "edit", *base, "--thinkedit.out", str(tmp_path / "e"), "--thinkedit.heads_k", "2"]
        field = "thinkedit.out"
    r = run(binary, *args, check=False)
    assert r.returncode == 2, r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if "[error]" in line]
    assert len(errors) == 1 and field in errors[0], r.stderr[-2000:]
    if case == "empty_long_set":
        assert "the long set is empty: 60 of 60 traces" in errors[0] or "the long set is empty" in errors[0]
        assert not (tmp_path / "r" / "thinkedit" / "attn.h5").exists()
    if case in ("other_hook", "k_too_large"):
        assert not (tmp_path / "e").exists()
    if case == "foreign_out":
        assert (tmp_path / "e" / "precious.txt").read_text() == "x" and not (tmp_path / "e" / "model.safetensors").exists()


def test_planted_truth_at_reduced_size(binary, toy_model, tmp_path):
    """The thorough toy thinker (configs/thinkedit/toy.ini's protocol at reduced size, on problem seed 505, which the
    protocol was not developed on): -α shortens and +α lengthens the thinking, both with 95% intervals excluding 0."""
    model = toy_model.parent / "toy-thinker-thorough"
    if not (model / "model.safetensors").exists():
        pytest.skip("no models/toy-thinker-thorough")
    preset = HERE.parents[1] / "configs" / "thinkedit" / "toy.ini"
    base = ["--config", str(preset), "--model.path", str(model)]
    run(binary, "generate", *base, "--run.dir", str(tmp_path / "run"), "--data.prompts", "builtin:toy-train@505", "--data.limit", "100", ranks=2)
    run(binary, "thinkedit", "direction", *base, "--run.dir", str(tmp_path / "run"), ranks=2)
    run(binary, "steer", *base, "--run.dir", str(tmp_path / "alpha"), "--steer.vectors", str(tmp_path / "run" / "thinkedit" / "mlp.h5"),
        "--sweep.vectors", "length", "--sweep.layers", "all", "--sweep.hooks", "hook_mlp_out", "--sweep.controls", "none",
        "--sweep.positions", "all", "--sweep.coefficients=-0.4,0.4", "--sweep.seeds", "1", "--sweep.datasets", "builtin:toy-test@505",
        "--data.limit", "120", ranks=2)
    with h5py.File(tmp_path / "alpha" / "sweep" / "summary.h5", "r") as f:
        coef = f["points/coef"][()]
        kind = [k.decode() if isinstance(k, bytes) else k for k in f["points/kind"][()]]
        lo, hi = f["delta/think_tokens_lo"][()], f["delta/think_tokens_hi"][()]
    rows = {c: i for i, (c, k) in enumerate(zip(coef, kind)) if k == "vector"}
    assert hi[rows[-0.4]] < 0, (lo[rows[-0.4]], hi[rows[-0.4]])
    assert lo[rows[0.4]] > 0, (lo[rows[0.4]], hi[rows[0.4]])
