"""Steering vectors trained on the base model (docs/algorithms.md §B.8, §B.10) on the shipped toy pair, at
reduced size (about 90 s on 2 cores).

The chain: 200 greedy traces of held-out problems (toy seed 5) by the toy thinker, toy-annotator labels,
§B.3 sentence activations at layer 1, a TopK SAE with K = 6 there (the thinker's taxonomy), its export by
`titles`, then `basevec collect` against the toy base (steering layer 3). Checked:
- planted truth: correction vectors trained with the coefficient MLP lower the base model's top-3 KL to the
  thinker at the disagreement positions of held-out rollouts to under half the unsteered KL and below every
  same-norm random vector set (README "Base vectors" has the full run and other seeds);
- 1 and 2 ranks give the same vectors within 1e-5 after a fixed number of steps, and a run stopped at an
  evaluation (STOP file, exit 75) and rerun gives the vectors of an uninterrupted run;
- linear vectors (§B.8): a bias and one vector per category with sentences, written as a steering-vector file;
- a category without training positions keeps a zero vector and is listed as skipped;
- bad input: a base model of another vocabulary, an SAE of another layer or model: exit 2 naming the file and
  field, no records file.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from thinksteer_testing import ENV, binary, demo_model, toy_model  # noqa: E402,F401  (fixtures)

GEN = ["--data.prompts", "builtin:toy-test", "--data.limit", "200", "--toy.seed", "5", "--toy.n_problems", "20000",
       "--generate.chat_format", "deepseek_r1", "--generate.max_new_tokens", "384", "--generate.batch_size", "100",
]
TAX = ["--sweep.kind", "taxonomy", "--taxonomy.clusters", "6", "--taxonomy.seeds", "0", "--taxonomy.methods", "sae", "--sentences.layers", "1"]
TRAIN = ["--basevec.seeds", "42", "--basevec.epochs", "5", "--basevec.evals_per_epoch", "1", "--basevec.mlp_hidden", "64",
         "--basevec.random_controls", "3"]


def run(binary, run_dir, name, *args, n=2, check=True, model=None, env=None):
    cmd = ["mpiexec", "-n", str(n), str(binary), *name.split(), "--run.dir", str(run_dir), "--run.threads", "1", *args]
    if model is not None:
        cmd += ["--model.path", str(model)]
    r = subprocess.run(cmd, env=env or ENV, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def base_model(toy_model):
    base = toy_model.parent / "toy-base"
    if not (base / "model.safetensors").exists():
        pytest.skip("no shipped toy base model")
    return base


@pytest.fixture(scope="module")
def chain(binary, toy_model, base_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("basevec")
    for stage in ["generate", "annotate", "sentences", "taxonomy", "titles"]:
        run(binary, d, stage, *GEN, *TAX, "--annotate.annotator", "toy", model=toy_model)
    index = json.loads((d / "titles" / "index.json").read_text())
    sae = d / "titles" / index["tasks"][0]["dir"]
    pair = ["--basevec.base_model", str(base_model), "--basevec.sae", str(sae), "--basevec.layer", "3"]
    run(binary, d, "basevec collect", *pair, model=toy_model)
    return d, pair


def task_file(d, method="correction"):
    [f] = [p for p in (d / "basevec" / "tasks").glob("*.h5") if not p.name.endswith(".vectors.h5") and h5py.File(p, "r").attrs["method"] == method]
    return f


def test_records(chain):
    d, _ = chain
    with h5py.File(d / "basevec" / "records.h5", "r") as f:
        stats = json.loads(f.attrs["stats"])
        tokens, off = f["tokens"][()], f["examples/token_offset"][()]
        ex, pos, target, top = (f[f"corrections/{k}"][()] for k in ("example", "position", "target", "base_top"))
        assert f["corrections/topk_ids"].shape == (len(ex), 50)
        assert (f["corrections/category"][()] < f.attrs["n_categories"]).all()
    assert stats["rollouts"] == 200 and stats["examples"] >= 195 and stats["disagreements"] == len(ex) > 1000, stats
    assert (tokens[off[ex] + pos + 1] == target).all() and (target != top).all()


def test_correction_vectors_lower_the_kl_to_the_thinker(binary, toy_model, chain):
    d, pair = chain
    run(binary, d, "basevec train", *pair, *TRAIN, model=toy_model)
    with h5py.File(task_file(d), "r") as f:
        m = json.loads(f.attrs["metrics"])
        assert f["mlp/w1"].shape == (64, 128) and f["vectors"].shape == (6, 128)
        assert np.isfinite(f["curves/holdout"][()]).all() and len(f["curves/step"]) == 5
    h = m["holdout"]
    unsteered, steered, randoms = h["unsteered"]["kl"], h["steered"]["kl"], h["random_kl"]
    print(f"holdout top-3 KL: unsteered {unsteered:.3f}, steered {steered:.3f}, random {min(randoms):.3f}..{max(randoms):.3f}")
    assert steered < 0.5 * unsteered and steered < min(randoms), h
    selected = json.loads((d / "basevec" / "selected.json").read_text())
    assert Path(selected["correction"]["vectors"]).exists()


def copy_records(src, dst):
    (dst / "basevec").mkdir(parents=True)
    for name in ("records.h5", "records.h5.done"):
        shutil.copy(src / "basevec" / name, dst / "basevec" / name)


def vectors_of(d):
    with h5py.File(task_file(d), "r") as f:
        return f["vectors"][()], f["mlp/w1"][()]


def test_one_and_two_ranks_agree_and_a_stopped_run_resumes(binary, toy_model, chain, tmp_path):
    d, pair = chain
    short = [*pair, "--basevec.seeds", "7", "--basevec.epochs", "1", "--basevec.evals_per_epoch", "2", "--basevec.mlp_hidden", "32",
             "--basevec.random_controls", "0"]
    one, two, stopped = tmp_path / "one", tmp_path / "two", tmp_path / "stopped"
    for x in (one, two, stopped):
        copy_records(d, x)
    run(binary, one, "basevec train", *short, n=1, model=toy_model)
    run(binary, two, "basevec train", *short, n=2, model=toy_model)
    (v1, w1), (v2, w2) = vectors_of(one), vectors_of(two)
    print(f"1 vs 2 ranks: max |dV| {np.abs(v1 - v2).max():.2e}, max |dW1| {np.abs(w1 - w2).max():.2e}")
    assert np.abs(v1 - v2).max() <= 1e-5 and np.abs(w1 - w2).max() <= 1e-5
    (stopped / "STOP").touch()
    r = run(binary, stopped, "basevec train", *short, n=2, check=False, model=toy_model)
    assert r.returncode == 75, r.stderr[-2000:]
    assert list((stopped / "basevec" / "tasks").glob("*.state.safetensors"))
    (stopped / "STOP").unlink()
    r = run(binary, stopped, "basevec train", *short, n=2, model=toy_model)
    assert "resumes" in r.stderr
    v3, w3 = vectors_of(stopped)
    assert np.abs(v3 - v2).max() <= 1e-6 and np.abs(w3 - w2).max() <= 1e-6


def test_linear_vectors(binary, toy_model, chain, tmp_path):
    d, pair = chain
    out = tmp_path / "linear"
    copy_records(d, out)
    run(binary, out, "basevec train", *pair, "--basevec.methods", "linear", "--basevec.seeds", "1", "--basevec.linear_epochs", "2",
        "--basevec.linear_examples", "16", model=toy_model)
    f = task_file(out, "linear")
    with h5py.File(f, "r") as t:
        m = json.loads(t.attrs["metrics"])
        counts, bias = t["counts"][()], t["bias"][()]
        assert t.attrs["hook"] == "blocks.3.hook_resid_post"
    assert np.linalg.norm(bias) > 0 and m["bias_examples"] == 16
    assert sorted(m["skipped"]) == sorted(f"idx{c}" for c in range(6) if counts[c] == 0)
    with h5py.File(f.with_suffix(".vectors.h5"), "r") as v:
        assert [n.decode() for n in v["names"][()]] == [f"idx{c}" for c in range(6)] + ["bias"]
        assert list(v["layers"][()]) == [3]


@pytest.mark.parametrize("case", ["vocabulary", "sae_layer", "sae_model"])
def test_bad_input(binary, toy_model, demo_model, chain, tmp_path, case):
    d, pair = chain
    out = tmp_path / case
    shutil.copytree(d / "generate", out / "generate")
    args = list(pair)
    model = toy_model
    if case == "vocabulary":
        args[1] = str(demo_model)
        want = "vocab"
    elif case == "sae_layer":
        args += ["--basevec.sae_layer", "2"]
        want = "cfg.json: hook_layer"
    else:
        model = demo_model
        args[1] = str(demo_model)
        want = "cfg.json: model_name"
    r = run(binary, out, "basevec collect", *args, check=False, model=model)
    assert r.returncode == 2, r.stderr[-2000:]
    assert want in r.stderr, r.stderr[-2000:]
    assert not (out / "basevec" / "records.h5").exists()


def test_a_category_without_positions_is_recorded_not_trained(binary, toy_model, chain, tmp_path):
    """Records whose category 5 has no position (relabelled by hand, so no .done marker certifies them: used with
    a warning): the task keeps a zero vector for idx5, counts 0, and lists it in metrics.skipped."""
    d, pair = chain
    out = tmp_path / "no-idx5"
    (out / "basevec").mkdir(parents=True)
    shutil.copy(d / "basevec" / "records.h5", out / "basevec" / "records.h5")
    with h5py.File(out / "basevec" / "records.h5", "r+") as f:
        cat = f["corrections/category"][()]
        cat[cat == 5] = 4
        f["corrections/category"][...] = cat
    r = run(binary, out, "basevec train", *pair, "--basevec.seeds", "3", "--basevec.epochs", "1", "--basevec.evals_per_epoch", "1",
            "--basevec.mlp_hidden", "16", "--basevec.random_controls", "0", model=toy_model)
    assert "no .done marker" in r.stderr or "warn" in r.stderr
    with h5py.File(task_file(out), "r") as f:
        m = json.loads(f.attrs["metrics"])
        assert f["counts"][5] == 0 and not f["vectors"][5].any() and f["counts"][4] > 0
    assert m["skipped"] == ["idx5"]
