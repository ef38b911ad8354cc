"""`thinksteer steer`, `sweep plan`, `sweep run` and `reduce` end to end.

One run directory on the shipped toy thinker: generate (train split) -> annotate -> vectors -> attribute,
then a small sweep on the test split.

- HF reference: steered greedy generation equals HF transformers' Qwen2ForCausalLM with forward hooks
  on decoder layers that add c * v to their output (`add`) or project v^ out (`project-out`), at every
  position or at generated positions only, at one layer or at a group of two with c / 2 each
  (`steer.divide_by_layers`); token for token, float32.
- the plan: task order and count, `auto` takes attribute's first pick, keys are stable on re-planning,
  stdout is exactly the --array line; the random control has the vector's norm (checked in gtest).
- 1 vs 2 ranks (mpiexec) give the same task file contents.
- resumability: a rerun skips finished tasks; another coefficient is new work, and only that (task
  files are named by the point's key, so rows that shift keep their results).
- reduce: summary.h5 layout and numbers recomputed from the task files with numpy (means, paired
  differences; the interval contains the mean); summary.csv rows; a missing task gives exit 3, the
  --array list on stdout and in missing.txt, no summary; allow_partial writes it marked partial.
- bad input: exit 2 naming the file and field, and no task file.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import ENV, binary, run_thinksteer, toy_model  # noqa: E402,F401  (fixtures)

N_TRAIN, N_TEST = 40, 10


def run(binary, *args, check=True, mpi=0, timeout=600):
    return run_thinksteer(binary, *args, ranks=mpi, check=check, timeout=timeout)


@pytest.fixture(scope="module")
def chain(binary, toy_model, tmp_path_factory):
    """A run dir with generate, annotate, vectors and attribute done, and the common options."""
    d = tmp_path_factory.mktemp("steer") / "run"
    ini = d.parent / "steer.ini"
    ini.write_text(f"""[model]
path = {toy_model}
[run]
dir = {d}
threads = 1
[data]
prompts = builtin:toy-train
limit = {N_TRAIN}
[toy]
seed = 0
n_problems = 20000
[generate]
max_new_tokens = 200
batch_size = 40
[sweep]
datasets = builtin:toy-test
vectors = backtracking,example-testing
layers = auto
coefficients = 2,-2
controls = none,random
[reduce]
bootstrap = 400
""")
    for stage in ("generate", "annotate", "vectors", "attribute"):
        run(binary, stage, "--config", ini)
    return ini, d


def opts(ini, d, *more):
    return ["--config", ini, "--run.dir", d, "--data.limit", N_TEST, *more]


def manifest(d):
    return [json.loads(line) for line in (d / "sweep" / "manifest.jsonl").read_text().splitlines()]


def test_plan_order_auto_layers_and_stable_keys(binary, chain):
    ini, d = chain
    r = run(binary, "sweep", "plan", *opts(ini, d))
    rows = manifest(d)
    # baseline, then per vector: (+2 vector, +2 random, -2 vector, -2 random)
    assert len(rows) == 1 + 2 * 4
    assert r.stdout == f"--array=0-{len(rows) - 1}\n"
    assert [x["task"] for x in rows] == list(range(len(rows)))
    assert rows[0]["kind"] == "baseline" and rows[0]["layers"] == []
    assert [(x["vector"], x["kind"], x["coef"]) for x in rows[1:5]] == [
        ("backtracking", "vector", 2.0), ("backtracking", "random", 2.0), ("backtracking", "vector", -2.0), ("backtracking", "random", -2.0)]
    with h5py.File(d / "attribute" / "attribution.h5") as f:
        labels = [x.decode() for x in f["labels"][:]]
        picks = {lab: int(f["selected"][k, 0]) for k, lab in enumerate(labels)}
    for x in rows[1:]:
        assert x["layers"] == [picks[x["vector"]]], (x, picks)
    keys = [x["key"] for x in rows]
    assert len(set(keys)) == len(keys)
    run(binary, "sweep", "plan", *opts(ini, d))
    assert [x["key"] for x in manifest(d)] == keys


def test_steer_matches_hf_hooks(binary, chain, toy_model):
    """Steered greedy tokens equal HF transformers with the same edit in forward hooks: add at all
    positions, add at generated positions only, project-out, and a group of two layers with coef / 2 each."""
    import torch
    from tokenizers import Tokenizer
    from transformers import Qwen2ForCausalLM
    ini, d = chain
    ref_dir = d.parent / "hf_ref"
    common = ["--config", ini, "--run.dir", ref_dir, "--data.limit", 6, "--generate.max_new_tokens", 48,
              "--steer.vectors", d / "vectors" / "vectors.h5", "--sweep.vectors", "example-testing", "--sweep.layers", "2,1+2",
              "--sweep.controls", "none", "--sweep.coefficients", "2", "--sweep.ops", "add,project-out",
              "--sweep.positions", "all,generated", "--steer.divide_by_layers", "true"]
    run(binary, "steer", *common)
    run(binary, "generate", "--config", ini, "--run.dir", ref_dir, "--data.prompts", "builtin:toy-test", "--data.limit", 6)
    prompts = [json.loads(line)["prompt_text"] for line in (ref_dir / "generate" / "generations.jsonl").read_text().splitlines()]
    with h5py.File(d / "vectors" / "vectors.h5") as f:
        names = [x.decode() for x in f["names"][:]]
        layers = list(f["layers"][:])
        vec = {l: torch.tensor(f["vectors"][names.index("example-testing"), layers.index(l)], dtype=torch.float32) for l in (1, 2)}
    tok = Tokenizer.from_file(str(toy_model / "tokenizer.json"))
    model = Qwen2ForCausalLM.from_pretrained(toy_model, torch_dtype=torch.float32).eval()
    eos = json.loads((toy_model / "config.json").read_text())["eos_token_id"]

    def edit(row, layer):
        v, c = vec[layer], row["coef"] * row["layer_scale"]
        unit = v / v.norm()
        fn = (lambda h: h - (h @ unit)[..., None] * unit) if row["op"] == "project-out" else (lambda h: h + c * v)
        # generated positions: HF's decode steps feed one new token; the prefill (prompt) is left alone
        only_generated = row["positions"] == "generated"
        def hook(mod, inp, out):
            h = out[0] if isinstance(out, tuple) else out  # transformers returns a tuple or (>= 4.5x) the tensor
            if only_generated and h.shape[1] > 1:
                return out
            return (fn(h),) + tuple(out[1:]) if isinstance(out, tuple) else fn(h)
        return hook

    rows = manifest(ref_dir)
    assert len(rows) == 1 + 2 * 2 * 2  # the baseline; per layer group (2, 1+2): {add, project-out} x {all, generated}
    seen = set()
    for row in rows[1:]:
        handles = [model.model.layers[l].register_forward_hook(edit(row, l)) for l in row["layers"]]
        try:
            expected, expected_ids = [], []
            for p in prompts:
                ids = torch.tensor([tok.encode(p, add_special_tokens=False).ids])
                with torch.no_grad():
                    out = model.generate(ids, max_new_tokens=48, do_sample=False, eos_token_id=eos, pad_token_id=eos)
                expected_ids.append(out[0, ids.shape[1]:].tolist())
                expected.append(tok.decode(expected_ids[-1], skip_special_tokens=False))
        finally:
            for h in handles:
                h.remove()
        with h5py.File(ref_dir / "sweep" / "tasks" / f"{row['key']}.h5") as f:
            got = [x.decode() for x in f["prompts/text"][:]]
            offset, tokens = f["prompts/token_offset"][:], f["prompts/tokens"][:]
            got_ids = [tokens[offset[i]:offset[i + 1]].tolist() for i in range(len(got))]
        assert got == expected, (row, got, expected)
        assert got_ids == expected_ids, (row, got_ids, expected_ids)  # token by token, not only the text
        seen.add((row["op"], row["positions"], len(row["layers"])))
    assert seen == {(op, pos, n) for op in ("add", "project-out") for pos in ("all", "generated") for n in (1, 2)}
    # and the baseline is the unsteered model
    with h5py.File(ref_dir / "sweep" / "tasks" / f"{rows[0]['key']}.h5") as f:
        base = [x.decode() for x in f["prompts/text"][:]]
    gen = [json.loads(line)["text"] for line in (ref_dir / "generate" / "generations.jsonl").read_text().splitlines()]
    assert [g[:len(b)] for g, b in zip(gen, base)] == base


def test_steer_two_ranks_rerun_and_reduce(binary, chain):
    ini, d = chain
    r = run(binary, "steer", *opts(ini, d), mpi=2)
    rows = manifest(d)
    tasks = [d / "sweep" / "tasks" / f"{x['key']}.h5" for x in rows]
    assert all(t.exists() and Path(str(t) + ".done").exists() for t in tasks)

    # 1 rank gives the same task file contents
    one = d.parent / "one_rank"
    shutil.copytree(d, one, ignore=shutil.ignore_patterns("sweep"))
    run(binary, "sweep", "plan", *opts(ini, one))
    for k in (0, 1, 2):
        run(binary, "sweep", "run", *opts(ini, one), "--task-id", k)
        with h5py.File(tasks[k]) as a, h5py.File(one / "sweep" / "tasks" / tasks[k].name) as b:
            for name in ("prompts/text", "prompts/label_tokens", "prompts/label_spans", "prompts/correct", "prompts/think_tokens", "labels"):
                assert np.array_equal(a[name][:], b[name][:]), name

    # a rerun skips everything
    r = run(binary, "steer", *opts(ini, d))
    assert f"0 of {len(rows)} tasks run" in r.stderr

    # reduce's numbers from the task files
    with h5py.File(d / "sweep" / "summary.h5") as s:
        assert s.attrs["format"] == "thinksteer.sweep_summary" and int(s.attrs["partial"]) == 0
        labels = [x.decode() for x in s["labels"][:]]
        steerable = s["steerable"][:]
        assert [lab for lab, m in zip(labels, steerable) if m] == [
            lab for lab in labels if lab in ("backtracking", "uncertainty-estimation", "example-testing", "adding-knowledge")]
        assert list(s["points/task"][:]) == list(range(len(rows)))
        base_row = list(s["points/kind"][:]).index(b"baseline")

        def shares(path):
            with h5py.File(path) as f:
                tok, spn = f["prompts/label_tokens"][:].astype(float), f["prompts/label_spans"][:].astype(float)
                corr = f["prompts/correct"][:]
            den = (tok * steerable).sum(1, keepdims=True)
            ts = np.where(den > 0, tok / np.where(den > 0, den, 1), 0.0)
            tot = spn.sum(1, keepdims=True)
            ss = np.where(tot > 0, spn / np.where(tot > 0, tot, 1), 0.0)
            return ts, ss, corr

        bts, bss, bcorr = shares(tasks[base_row])
        for r_, t in enumerate(tasks):
            ts, ss, corr = shares(t)
            np.testing.assert_allclose(s["fraction/token_share"][r_][steerable == 1], ts.mean(0)[steerable == 1], rtol=1e-12, atol=1e-12)
            assert np.all(np.isnan(s["fraction/token_share"][r_][steerable == 0]))
            np.testing.assert_allclose(s["fraction/span_share"][r_], ss.mean(0), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(s["points/accuracy"][r_], corr.mean(), rtol=1e-12, atol=1e-12)
            if r_ == base_row:
                assert s["points/baseline"][r_] == -1 and np.all(np.isnan(s["delta/token_share"][r_]))
                continue
            assert s["points/baseline"][r_] == base_row
            delta = (ts - bts).mean(0)
            np.testing.assert_allclose(s["delta/token_share"][r_][steerable == 1], delta[steerable == 1], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(s["delta/span_share"][r_], (ss - bss).mean(0), rtol=1e-12, atol=1e-12)
            lo, hi = s["delta/token_share_lo"][r_], s["delta/token_share_hi"][r_]
            m = steerable == 1
            assert np.all(lo[m] <= delta[m] + 1e-12) and np.all(delta[m] <= hi[m] + 1e-12)
    with open(d / "sweep" / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) * len(labels)
    assert (d / "sweep" / "missing.txt").read_text() == "\n"

    # another coefficient is new work; the old points are still finished
    r = run(binary, "steer", *opts(ini, d, "--sweep.coefficients", "2,-2,1"))
    assert "4 of 13 tasks run" in r.stderr, r.stderr


def test_reduce_missing_tasks(binary, chain):
    ini, d = chain
    part = d.parent / "partial"
    shutil.copytree(d, part, ignore=shutil.ignore_patterns("sweep"))
    run(binary, "sweep", "plan", *opts(ini, part))
    for k in (0, 1, 2, 4, 5):
        run(binary, "sweep", "run", *opts(ini, part), "--task-id", k)
    r = run(binary, "reduce", *opts(ini, part), check=False)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "missing: --array=3,6-8\n"
    assert (part / "sweep" / "missing.txt").read_text() == "3,6-8\n"
    assert not (part / "sweep" / "summary.h5").exists() and not (part / "sweep" / "summary.csv").exists()
    r = run(binary, "reduce", *opts(ini, part, "--reduce.allow_partial", "true"))
    with h5py.File(part / "sweep" / "summary.h5") as s:
        assert int(s.attrs["partial"]) == 1 and int(s.attrs["n_missing"]) == 4
        assert list(s["points/task"][:]) == [0, 1, 2, 4, 5]
    # SLURM_ARRAY_TASK_ID stands in for --task-id
    env = dict(ENV, SLURM_ARRAY_TASK_ID="3")
    subprocess.run([str(binary), "sweep", "run", *map(str, opts(ini, part))], env=env, check=True, capture_output=True, timeout=600)
    assert (part / "sweep" / "tasks" / f"{manifest(part)[3]['key']}.h5.done").exists()


@pytest.mark.parametrize("extra, file_part, field", [
    (["--sweep.vectors", "no-such-behaviour"], "vectors.h5", "names"),
    (["--sweep.layers", "9"], "vectors.h5", "layers"),
    (["--sweep.layers", "1+x"], "[sweep]", "sweep.layers"),
    (["--sweep.coefficients", "1,abc"], "sweep.coefficients", "abc"),
    (["--sweep.ops", "multiply"], "sweep.ops", "multiply"),
    (["--steer.vectors", "/nonexistent/vectors.h5"], "/nonexistent/vectors.h5", ""),
    (["--steer.attribution", "/nonexistent/attribution.h5"], "/nonexistent/attribution.h5", "sweep.layers"),
])
def test_bad_sweep_input(binary, chain, extra, file_part, field):
    ini, d = chain
    bad = d.parent / "bad"
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(d, bad, ignore=shutil.ignore_patterns("sweep"))
    r = run(binary, "sweep", "plan", *opts(ini, bad, *extra), check=False)
    assert r.returncode == 2, r.stderr
    assert file_part in r.stderr and field in r.stderr, r.stderr
    assert not (bad / "sweep" / "manifest.jsonl").exists()


def test_bad_task_input(binary, chain):
    ini, d = chain
    bad = d.parent / "bad_task"
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(d, bad, ignore=shutil.ignore_patterns("sweep"))
    r = run(binary, "sweep", "run", *opts(ini, bad), "--task-id", 0, check=False)
    assert r.returncode == 2 and "manifest.jsonl" in r.stderr, r.stderr
    run(binary, "sweep", "plan", *opts(ini, bad))
    r = run(binary, "sweep", "run", *opts(ini, bad), "--task-id", 99, check=False)
    assert r.returncode == 2 and "task 99 is not in the manifest" in r.stderr, r.stderr
    env = {k: v for k, v in ENV.items() if k != "SLURM_ARRAY_TASK_ID"}
    r = subprocess.run([str(binary), "sweep", "run", *map(str, opts(ini, bad))], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--task-id" in r.stderr, r.stderr
    # an edited manifest row is refused (its key no longer matches)
    m = bad / "sweep" / "manifest.jsonl"
    lines = m.read_text().splitlines()
    row = json.loads(lines[1])
    row["coef"] = 9.0
    lines[1] = json.dumps(row)
    m.write_text("\n".join(lines) + "\n")
    r = run(binary, "sweep", "run", *opts(ini, bad), "--task-id", 1, check=False)
    assert r.returncode == 2 and "manifest.jsonl:2" in r.stderr and "key" in r.stderr, r.stderr
    assert not (bad / "sweep" / "tasks").exists()
