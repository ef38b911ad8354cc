"""The hybrid model (docs/algorithms.md "The hybrid model") through the CLI on the shipped toy pair of the hybrid:
the toy thinker and models/toy-base-knows (a base that knows how to correct a slip, check or doubt a step,
but not when), at reduced size (about 100 s on 2 cores).

The chain: 200 greedy thinker traces of held-out problems (toy seed 5), §B.3 sentences at layer 1, a TopK SAE
with K = 6 there and its export, `basevec collect` against the base at layer 3, one seed of correction vectors
with the coefficient MLP, then `thinksteer hybrid` on 120 problems of problem seed 9 (which no rollout saw). Checked:
- planted truth: the hybrid with the mlp rule recovers a share of the thinker-base gap whose 95% interval lies
  above 0, and beats the random-category, random-vector and random-position ablations;
- the oracle (the thinking model's token at every disagreement) writes the thinking model's own tokens up to its
  </think>; base and thinking rows are the models alone;
- a rerun does nothing; a task stopped between batches (STOP, exit 75) resumes with the saved prompts and ends
  with the file of an uninterrupted run;
- bad input: a thinking model whose format never closes a thinking part (no </think> token), a base of another vocabulary, vectors of another
  base checkpoint or d_model, an SAE of another layer: exit 2 with one line naming what differs, and no task file.
"""
import json
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
       "--generate.chat_format", "deepseek_r1", "--generate.max_new_tokens", "384", "--generate.batch_size", "100"]
TAX = ["--sweep.kind", "taxonomy", "--taxonomy.clusters", "6", "--taxonomy.seeds", "0", "--taxonomy.methods", "sae", "--sentences.layers", "1"]
TRAIN = ["--sweep.kind", "basevec", "--basevec.seeds", "42", "--basevec.epochs", "6", "--basevec.evals_per_epoch", "2",
         "--basevec.random_controls", "0", "--basevec.loss", "full"]
def hybrid_args(limit=120, batch=60):
    return ["--sweep.kind", "hybrid", "--sweep.datasets", "builtin:toy-test@9", "--hybrid.limit", str(limit), "--hybrid.answer_prefix", "</think>",
            "--hybrid.batch_size", str(batch)]


def run(binary, run_dir, name, *args, n=2, check=True, model=None):
    cmd = ["mpiexec", "-n", str(n), str(binary), *name.split(), "--run.dir", str(run_dir), "--run.threads", "1", *GEN, *args]
    if model is not None:
        cmd += ["--model.path", str(model)]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def base_model(toy_model):
    base = toy_model.parent / "toy-base-knows"
    if not (base / "model.safetensors").exists():
        pytest.skip("no shipped toy-base-knows model")
    return base


@pytest.fixture(scope="module")
def chain(binary, toy_model, base_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("hybrid")
    for stage in ["generate", "sentences", "taxonomy", "titles"]:
        run(binary, d, stage, *TAX, model=toy_model)
    index = json.loads((d / "titles" / "index.json").read_text())
    pair = ["--basevec.base_model", str(base_model), "--basevec.sae", str(d / "titles" / index["tasks"][0]["dir"]), "--basevec.layer", "3"]
    run(binary, d, "basevec collect", *pair, model=toy_model)
    run(binary, d, "basevec train", *pair, *TRAIN, model=toy_model)
    return d, pair


def summary(d):
    with h5py.File(d / "hybrid" / "summary.h5", "r") as f:
        rows = {}
        for i in range(len(f["task"])):
            key = tuple(f[k][i].decode() if isinstance(f[k][i], bytes) else str(f[k][i]) for k in ("role", "rule", "ablation"))
            rows[key] = {k: float(f[k][i]) for k in ("accuracy", "gap", "gap_lo", "gap_hi", "vs_hybrid", "vs_hybrid_lo", "vs_hybrid_hi", "steered_share")}
        return rows


def task(d, role, rule="", ablation=""):
    for line in (d / "hybrid" / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if (row["role"], row["rule"], row["ablation"]) == (role, rule, ablation):
            return h5py.File(d / "hybrid" / "tasks" / f"{row['key']}.h5", "r")
    raise KeyError((role, rule, ablation))


def tokens_of(f, p):
    off = f["tokens/offsets"][()]
    return f["tokens/id"][off[p]:off[p + 1]]


def test_planted_truth_oracle_and_rerun(binary, toy_model, chain):
    d, pair = chain
    args = [*pair, *hybrid_args(), "--hybrid.rules", "mlp,oracle", "--hybrid.ablations", "none,randcat,randvec,randpos"]
    run(binary, d, "hybrid", *args, model=toy_model)
    s = summary(d)
    for k, v in sorted(s.items()):
        print(k, {n: round(x, 3) for n, x in v.items()})
    h = s[("hybrid", "mlp", "none")]
    assert h["gap_lo"] > 0 and h["steered_share"] < 0.5, h
    for ablation in ("randcat", "randvec", "randpos"):
        assert s[("hybrid", "mlp", ablation)]["vs_hybrid_lo"] > 0, (ablation, s[("hybrid", "mlp", ablation)])
    with task(d, "hybrid", "oracle", "none") as o, task(d, "thinking") as t:
        for p in range(10):
            a, b = tokens_of(o, p), tokens_of(t, p)
            kinds = o["tokens/kind"][o["tokens/offsets"][p]:o["tokens/offsets"][p + 1]]
            n = int(np.argmax(kinds == 3)) if (kinds == 3).any() else len(a)  # the forced </think>
            assert (a[:n] == b[:n]).all() and a[n] == b[n], p
    r = run(binary, d, "hybrid", *args, model=toy_model)
    assert f"hybrid: 0 of {len(s)} tasks run, {len(s)} were finished before" in r.stderr + r.stdout, (r.stderr + r.stdout)[-2000:]


def test_a_stopped_task_resumes(binary, toy_model, chain, tmp_path):
    d, pair = chain
    out = tmp_path / "stopped"
    shutil.copytree(d / "basevec", out / "basevec")
    args = [*pair, *hybrid_args(40, 10), "--hybrid.rules", "mlp", "--hybrid.ablations", "none",
            "--hybrid.vectors", str(json.loads((d / "basevec" / "selected.json").read_text())["correction"]["file"])]
    (out / "STOP").touch()
    r = run(binary, out, "hybrid", *args, check=False, model=toy_model)
    assert r.returncode == 75, r.stderr[-2000:]
    assert list((out / "hybrid" / "tasks").glob("*.progress.jsonl"))
    (out / "STOP").unlink()
    r = run(binary, out, "hybrid", *args, model=toy_model)
    assert "resumes with" in r.stderr
    whole = tmp_path / "whole"
    shutil.copytree(d / "basevec", whole / "basevec")
    run(binary, whole, "hybrid", *args, model=toy_model)
    with task(out, "hybrid", "mlp", "none") as a, task(whole, "hybrid", "mlp", "none") as b:
        assert (a["tokens/id"][()] == b["tokens/id"][()]).all() and (a["prompts/correct"][()] == b["prompts/correct"][()]).all()


def narrow_copy(src, dst):
    """A copy of a vector set cut to d_model 64 (its MLP removed): vectors of another model's width."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        v = f["vectors"][()][:, :64]
        for name in ("vectors", "norms", "mlp"):
            del f[name]
        f["vectors"], f["norms"] = v, np.linalg.norm(v, axis=1).astype(np.float32)
    return dst


@pytest.mark.parametrize("case", ["format", "vocabulary", "vectors", "d_model", "sae_layer"])
def test_bad_input(binary, toy_model, demo_model, base_model, chain, tmp_path, case):
    d, pair = chain
    out = tmp_path / case
    shutil.copytree(d / "basevec", out / "basevec")
    args = [*pair, *hybrid_args(), "--hybrid.rules", "mlp", "--hybrid.ablations", "none",
            "--hybrid.vectors", str(json.loads((d / "basevec" / "selected.json").read_text())["correction"]["file"])]
    model = toy_model
    if case == "format":
        model = tmp_path / "renamed" / "toy-thinker"  # the SAE's model name; a tokenizer whose </think> is renamed
        shutil.copytree(toy_model, model)
        tok = model / "tokenizer.json"
        tok.write_text(tok.read_text().replace("</think>", "</thinq>"))
        want = "tokenizer.json: added_tokens: no </think> token"
    elif case == "vocabulary":
        args[1] = str(demo_model)
        want = "vocab"
    elif case == "vectors":
        copy = tmp_path / "base-copy"
        shutil.copytree(base_model, copy)
        args[1] = str(copy)
        want = ": base_model: vectors trained on"
    elif case == "d_model":
        args[args.index("--hybrid.vectors") + 1] = str(narrow_copy(Path(args[args.index("--hybrid.vectors") + 1]), tmp_path / "narrow.h5"))
        args[args.index("--hybrid.rules") + 1] = "fixed"
        want = "narrow.h5: /vectors: vectors of d_model 64"
    else:
        args += ["--basevec.sae_layer", "2"]
        want = "cfg.json: hook_layer"
    r = run(binary, out, "hybrid", *args, check=False, model=model)
    assert r.returncode == 2, r.stderr[-2000:]
    assert want in r.stderr, r.stderr[-2000:]
    assert not list((out / "hybrid" / "tasks").glob("*.h5"))
