"""analysis/thinksteer_analysis: the base-vector sweep's readers (basevec), figures (basevec_figures) and table
(basevec_table, `thinksteer-analysis basevec RUN_DIR`) on fixtures this file writes with h5py / json to the
layouts the C++ writers produce (src/artifacts/basevec_task.cpp, basevec_summary.cpp, src/stages/basevec_sweep.cpp):
  <run>/basevec/tasks/<key>.h5 (+.done, <key>.vectors.h5)  thinksteer.basevec_task schema_version 1
  <run>/basevec/summary.h5 (+.done, summary.csv)           thinksteer.basevec_summary schema_version 1
  <run>/basevec/selected.json                              {"<method>": {key, task, seed, file, vectors, selection}}
Datasets carry the dimension scales the C++ HDF5 writer attaches (int64 0..n-1 named after the axis, in the
dataset's group); strings are variable-length UTF-8. The planted values come back; a file that breaks the
layout fails with a SchemaError naming the file and the dataset, attribute or key; the command prints the
table and writes basevec_curves.png and basevec_kl.png."""
import hashlib
import json
import math
import sys

import h5py
import numpy as np
import pytest

try:
    import thinksteer_analysis  # noqa: F401  installed into the project venv, editable, by scripts/setup.sh
except ImportError as e:
    raise ImportError(f"thinksteer_analysis is not installed for {sys.executable}: run scripts/setup.sh") from e
from analysis_checks import check_png, done, identity, put, replace  # noqa: E402
from thinksteer_analysis.basevec import (BasevecTask, finished_basevec_tasks, holdout_scores, read_basevec_selected, read_basevec_summary,
                                         read_basevec_task)
from thinksteer_analysis.schema import SchemaError

STR = h5py.string_dtype("utf-8")
C, D, H = 3, 4, 5
RULE = "per method, the seed whose vectors give the lowest selection metric"


# ---- fixtures --------------------------------------------------------------------------------------
def basevec_key(method, seed):
    """src/stages/basevec_task.cpp: the first 16 hex digits of SHA-256("basevec <method> <seed>")."""
    return hashlib.sha256(f"basevec {method} {seed}".encode()).hexdigest()[:16]


def correction_metrics(seed):
    """What basevec_correction.cpp writes: holdout and selection splits, NaN as null (category 2: no data)."""
    def split(steered_kl):
        return {"unsteered": {"kl": 2.0, "top1": 0.0, "positions": 40, "kl_per_category": [2.5, 1.5, None]},
                "steered": {"kl": steered_kl, "top1": 0.25, "positions": 40, "kl_per_category": [0.6, 0.4, None]},
                "random_kl": [1.0, 1.5, 2.6]}
    sel = 0.4 + 0.1 * seed
    return {"method": "correction", "epochs": 2, "steps": 8, "evaluations": 4, "best_evaluation": 3, "train_positions": 15, "skipped": ["idx2"],
            "loss": "topk", "mlp": True, "holdout": split(0.5), "selection": split(sel), "selection_metric": sel, "selection_split": "selection"}


def linear_metrics(seed):
    """What basevec_linear.cpp writes (category 1: no sentences, its per-category entry null)."""
    per = [{"unsteered": 0.9, "steered": 0.7, "random": 0.88, "sentences": 6}, None, {"unsteered": 0.6, "steered": 0.5, "random": 0.61, "sentences": 2}]
    sel = 0.7 + 0.01 * seed
    return {"method": "linear", "steps": 12, "skipped": ["idx1"], "bias_examples": 9,
            "holdout": {"unsteered": 0.8, "steered": 0.65, "random": 0.79, "per_category": per},
            "selection": {"unsteered": 0.82, "steered": sel, "random": 0.8, "per_category": per}, "selection_metric": sel, "selection_split": "selection"}


def write_task(run, method="correction", seed=1, task=0, metrics=None, mlp=True, finished=True):
    key = basevec_key(method, seed)
    path = run / "basevec" / "tasks" / f"{key}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((C, D)).astype(np.float32)
    counts = np.array([10, 5, 0] if method == "correction" else [7, 0, 3], dtype=np.int64)
    vectors[counts == 0] = 0
    if method == "correction":
        curves = {"step": np.array([2, 4, 6, 8]), "epoch": np.array([0.5, 1.0, 1.5, 2.0]), "phase": np.zeros(4, dtype=np.int64),
                  "train": np.array([2.0, 1.2, 0.9, 0.95]), "holdout": np.array([1.5, 0.8, 0.5, 0.55])}
    else:
        curves = {"step": np.array([3, 6, 8, 10, 11, 12]), "epoch": np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0]), "phase": np.array([-1, -1, 0, 0, 2, 2]),
                  "train": np.array([0.95, 0.9, 0.8, 0.78, 0.66, 0.6]), "holdout": np.full(6, np.nan)}
    with h5py.File(path, "w") as f:
        put(f, "/vectors", vectors, ("category", "d_model"))
        put(f, "/counts", counts, ("category",))
        put(f, "/norms", np.linalg.norm(vectors, axis=1).astype(np.float32), ("category",))
        for name, dtype in (("step", np.int64), ("epoch", np.float64), ("phase", np.int64), ("train", np.float64), ("holdout", np.float64)):
            put(f, f"/curves/{name}", curves[name].astype(dtype), ("point",))
        if method == "linear":
            put(f, "/bias", rng.standard_normal(D).astype(np.float32), ("d_model",))
        elif mlp:
            put(f, "/mlp/w1", rng.standard_normal((H, D)).astype(np.float32), ("hidden", "d_model"))
            put(f, "/mlp/b1", np.zeros(H, dtype=np.float32), ("hidden",))
            put(f, "/mlp/w2", rng.standard_normal((C, H)).astype(np.float32), ("category", "hidden"))
            put(f, "/mlp/b2", np.zeros(C, dtype=np.float32), ("category",))
        identity(f, "thinksteer.basevec_task", "sweep run")
        f.attrs["task"] = np.int64(task)
        f.attrs["key"] = key
        f.attrs["point"] = json.dumps({"key": key, "method": method, "seed": seed, "task": task}, separators=(",", ":"))
        f.attrs["method"] = method
        f.attrs["seed"] = np.int64(seed)
        f.attrs["hook"] = "blocks.3.hook_resid_post"
        f.attrs["layer"] = np.int64(3)
        f.attrs["categories"] = json.dumps([f"idx{c}" for c in range(C)], separators=(",", ":"))
        f.attrs["mlp_input"] = "blocks.3.hook_resid_post of the base model at the shifted position, before the shift" if method == "correction" and mlp else ""
        m = metrics if metrics is not None else (correction_metrics(seed) if method == "correction" else linear_metrics(seed))
        f.attrs["metrics"] = json.dumps(m, separators=(",", ":"))
        f.attrs["records_file"] = str(run / "basevec" / "records.h5")
        f.attrs["records_hash"] = "r" * 64
        f.attrs["base_model"] = "models/toy-base"
    (path.parent / f"{key}.vectors.h5").write_bytes(b"")   # the steering-vector file beside it (not read)
    if finished:
        done(path)
    return path, key


def write_summary(run, rows):
    """rows: (task, method, seed, selected, metrics) in manifest order, as BasevecSweep::write_summary keeps them."""
    path = run / "basevec" / "summary.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        put(f, "/task", np.array([r[0] for r in rows], dtype=np.int64), ("row",))
        put(f, "/seed", np.array([r[2] for r in rows], dtype=np.int64), ("row",))
        put(f, "/selection", np.array([r[4]["selection_metric"] for r in rows], dtype=np.float64), ("row",))
        put(f, "/selected", np.array([r[3] for r in rows], dtype=np.int64), ("row",))
        put(f, "/method", [r[1] for r in rows], ("row",), dtype=STR)
        put(f, "/key", [basevec_key(r[1], r[2]) for r in rows], ("row",), dtype=STR)
        identity(f, "thinksteer.basevec_summary", "reduce")
        f.attrs["rule"] = RULE
        f.attrs["partial"] = np.int64(0)
        f.attrs["metrics"] = json.dumps([r[4] for r in rows], separators=(",", ":"))
    done(path)
    (path.parent / "summary.csv").write_text("task,key,method,seed,selection,selected,holdout_unsteered,holdout_steered,holdout_random_mean\n")
    sel = {r[1]: {"key": basevec_key(r[1], r[2]), "task": r[0], "seed": r[2], "file": f"x/tasks/{basevec_key(r[1], r[2])}.h5",
                  "vectors": f"x/tasks/{basevec_key(r[1], r[2])}.vectors.h5", "selection": r[4]["selection_metric"]} for r in rows if r[3]}
    (path.parent / "selected.json").write_text(json.dumps(sel, indent=2) + "\n")
    return path


def write_run(run):
    """Task files: correction seeds 1, 2; linear seeds 1, 3 (3 not in the summary); correction seed 9 unfinished.
    Summary: correction 1 (selected: the lower selection metric), 2; linear 1 (selected), 2 (no task file)."""
    write_task(run, "correction", 1, 0)
    write_task(run, "correction", 2, 1, mlp=False)
    write_task(run, "linear", 1, 2)
    write_task(run, "linear", 3, 4)
    write_task(run, "correction", 9, 5, finished=False)
    write_summary(run, [(0, "correction", 1, 1, correction_metrics(1)), (1, "correction", 2, 0, correction_metrics(2)),
                        (2, "linear", 1, 1, linear_metrics(1)), (3, "linear", 2, 0, linear_metrics(2))])
    return run


# ---- readers ---------------------------------------------------------------------------------------
def test_correction_task_round_trip(tmp_path):
    path, key = write_task(tmp_path, "correction", 1, task=0)
    t = read_basevec_task(tmp_path, key)
    assert isinstance(t, BasevecTask) and t.path == path and key == basevec_key("correction", 1)
    assert (t.task, t.key, t.method, t.seed, t.layer, t.c, t.d) == (0, key, "correction", 1, 3, C, D)
    assert t.categories == ["idx0", "idx1", "idx2"] and t.counts.tolist() == [10, 5, 0] and not t.vectors[2].any()
    assert t.bias is None and t.mlp is not None and t.mlp["w1"].shape == (H, D) and t.mlp["w2"].shape == (C, H)
    np.testing.assert_allclose(t.norms, np.linalg.norm(t.vectors, axis=1), rtol=1e-6)
    assert t.curve_epoch.tolist() == [0.5, 1.0, 1.5, 2.0] and t.curve_holdout.tolist() == [1.5, 0.8, 0.5, 0.55] and not t.curve_phase.any()
    assert t.selection_metric == pytest.approx(0.5) and t.metric("best_evaluation") == 3 and math.isnan(t.metric("absent"))
    h = t.holdout()
    assert (h.unsteered, h.steered, h.top1) == (2.0, 0.5, 0.25)
    assert (h.random_mean, h.random_min, h.random_max) == (pytest.approx(1.7), 1.0, 2.6)
    assert h.unsteered_per_category[:2].tolist() == [2.5, 1.5] and math.isnan(h.steered_per_category[2]) and np.isnan(h.random_per_category).all()
    assert t.holdout("selection").steered == pytest.approx(0.5) and math.isnan(t.holdout("absent").steered)
    assert t.records_hash == "r" * 64 and t.base_model == "models/toy-base" and t.provenance["stage"] == "sweep run"
    assert read_basevec_task(path).key == key     # the file itself


def test_linear_task_round_trip(tmp_path):
    path, key = write_task(tmp_path, "linear", 3, task=4)
    t = read_basevec_task(path)
    assert (t.method, t.seed, t.task) == ("linear", 3, 4) and t.bias is not None and t.bias.shape == (D,) and t.mlp is None
    assert t.curve_phase.tolist() == [-1, -1, 0, 0, 2, 2] and np.isnan(t.curve_holdout).all()
    assert [t.phase_name(p) for p in (-1, 0, 2)] == ["bias", "idx0", "idx2"]
    h = t.holdout()
    assert (h.unsteered, h.steered, h.random_mean) == (0.8, 0.65, 0.79) and math.isnan(h.top1)
    assert h.random_per_category[0] == 0.88 and math.isnan(h.random_per_category[1]) and h.steered_per_category[2] == 0.5
    assert holdout_scores({}, "linear").unsteered != holdout_scores({}, "linear").unsteered   # NaN without the split


def test_finished_tasks_skip_unfinished_and_vector_files(tmp_path):
    write_run(tmp_path)
    names = [p.stem for p in finished_basevec_tasks(tmp_path)]
    want = sorted(basevec_key(m, s) for m, s in (("correction", 1), ("correction", 2), ("linear", 1), ("linear", 3)))
    assert names == want    # not correction seed 9 (no .done), not the <key>.vectors.h5 files


def test_summary_and_selected_round_trip(tmp_path):
    write_run(tmp_path)
    s = read_basevec_summary(tmp_path)
    assert len(s) == 4 and s.method.tolist() == ["correction", "correction", "linear", "linear"] and s.seed.tolist() == [1, 2, 1, 2]
    assert s.selection.tolist() == pytest.approx([0.5, 0.6, 0.71, 0.72]) and s.rule == RULE and not s.partial
    assert s.selected_rows() == {"correction": 0, "linear": 2} and s.row_of(basevec_key("linear", 2)) == 3 and s.row_of("0" * 16) is None
    assert s.metrics[2]["holdout"]["steered"] == 0.65
    sel = read_basevec_selected(tmp_path)
    assert sorted(sel) == ["correction", "linear"]
    assert (sel["linear"].key, sel["linear"].task, sel["linear"].seed, sel["linear"].selection) == (basevec_key("linear", 1), 2, 1, pytest.approx(0.71))
    assert sel["correction"].vectors.endswith(".vectors.h5")


# ---- malformed inputs ------------------------------------------------------------------------------

def bad_metrics(**holdout):
    m = correction_metrics(1)
    m["holdout"].update(holdout)
    return json.dumps(m)


MALFORMED = [  # (which file, method, what to replace, value, field named, problem)
    ("task", "correction", "@format", "thinksteer.taxonomy_task", "attribute 'format'", "'thinksteer.taxonomy_task', expected 'thinksteer.basevec_task'"),
    ("task", "correction", "@schema_version", np.int64(2), "attribute 'schema_version'", "2 of thinksteer.basevec_task is not the version"),
    ("task", "correction", "/curves/train", np.zeros(3), "/curves/train", "shape (3,), expected [E=4]"),
    ("task", "correction", "/norms", np.zeros(C, dtype=np.int64), "/norms", "expected float"),
    ("task", "correction", "@method", "other", "attribute 'method'", "'other', expected correction or linear"),
    ("task", "correction", "@seed", np.int64(7), "attribute 'point'", "seed 1, but the file's attributes say task 0 key"),
    ("task", "correction", "@categories", '["idx0"]', "attribute 'categories'", "list of C = 3 names"),
    ("task", "correction", "@metrics", bad_metrics(random_kl=2.0), "attribute 'metrics': key 'holdout'", "random_kl must be a list"),
    ("task", "correction", "/curves/phase", np.array([0, 0, 1, 0]), "/curves/phase", "point 2: 1, expected 0"),
    ("task", "linear", "/bias", None, "/bias", "missing dataset"),
    ("task", "linear", "/curves/phase", np.array([-1, -1, 0, 0, 2, 3]), "/curves/phase", "point 5: 3"),
    ("summary", None, "/selected", np.array([1, 1, 1, 0]), "/selected", "rows 0 and 1 are both selected for method correction"),
    ("summary", None, "/method", ["correction", "correction", "linear", "pca"], "/method", "row 3: 'pca' is not correction or linear"),
    ("summary", None, "@metrics", "[{}]", "attribute 'metrics'", "list of 4 JSON objects"),
    ("summary", None, "@format", "thinksteer.basevec_task", "attribute 'format'", "expected 'thinksteer.basevec_summary'"),
]


@pytest.mark.parametrize("which,method,name,value,field,problem", MALFORMED, ids=[f"{m[0]}-{m[1]}-{m[2]}" for m in MALFORMED])
def test_malformed_files_name_file_and_field(tmp_path, which, method, name, value, field, problem):
    if which == "task":
        path, _ = write_task(tmp_path, method, 1)
        read = read_basevec_task
    else:
        path = write_run(tmp_path) / "basevec" / "summary.h5"
        read = read_basevec_summary
    replace(path, name, value)
    with pytest.raises(SchemaError) as e:
        read(path)
    assert str(e.value).startswith(f"{path}: {field}: ") and problem in str(e.value), str(e.value)


def test_task_filed_under_another_key(tmp_path):
    path, key = write_task(tmp_path, "correction", 1)
    other = basevec_key("correction", 2)
    path.rename(path.with_name(f"{other}.h5"))
    with pytest.raises(SchemaError, match=rf"{other}\.h5: attribute 'key': '{key}', but the file is filed under '{other}'"):
        read_basevec_task(tmp_path, other)


def test_malformed_selected_json(tmp_path):
    path = write_run(tmp_path) / "basevec" / "selected.json"
    obj = json.loads(path.read_text())
    path.write_text(json.dumps({"pca": obj["linear"]}))
    with pytest.raises(SchemaError, match=r"selected\.json: key 'pca': is not a method"):
        read_basevec_selected(tmp_path)
    del obj["linear"]["vectors"]
    path.write_text(json.dumps(obj))
    with pytest.raises(SchemaError, match=r"selected\.json: key 'linear': missing key 'vectors'"):
        read_basevec_selected(tmp_path)
    path.write_text("{not json")
    with pytest.raises(SchemaError, match=r"selected\.json: \(file\): not JSON"):
        read_basevec_selected(tmp_path)


# ---- figures and the command -----------------------------------------------------------------------

def test_inputs_in_method_seed_order(tmp_path):
    from thinksteer_analysis.basevec_figures import load_basevec_inputs
    inputs = load_basevec_inputs(write_run(tmp_path), log=lambda _: None)
    assert [(t.method, t.seed) for t in inputs.tasks] == [("correction", 1), ("correction", 2), ("linear", 1), ("linear", 3)]
    assert inputs.summary is not None and inputs.selected is not None and not inputs.empty


def test_figures_with_only_a_linear_task(tmp_path):
    from thinksteer_analysis.basevec_figures import basevec_curves, basevec_kl
    path, _ = write_task(tmp_path, "linear", 1)
    t = read_basevec_task(path)
    for fig in (basevec_curves([t]), basevec_kl([])):   # no correction panels; no task with holdout metrics
        fig.savefig(tmp_path / "x.png")


def table_rows(out):
    """{(method, seed): cells} of the markdown table rows in `out`."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 10 and cells[0].isdigit():
            rows[(cells[2], int(cells[3]))] = cells
    return rows


def test_basevec_command_prints_the_table_and_writes_figures(tmp_path, capsys):
    from thinksteer_analysis.cli import main
    run = write_run(tmp_path / "run")
    assert main(["basevec", str(run)]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert sorted(rows) == [("correction", 1), ("correction", 2), ("linear", 1), ("linear", 2), ("linear", 3)], out
    c1 = rows[("correction", 1)]
    assert c1[:5] == ["0", f"`{basevec_key('correction', 1)}`", "correction", "1", "yes"]
    assert c1[5:] == ["2.0000", "0.5000", "1.7000", "0.5000 (selection)", "0.250"]
    assert rows[("correction", 2)][4] == "no" and rows[("correction", 2)][8] == "0.6000 (selection)"
    assert rows[("linear", 1)][4:] == ["yes", "0.8000", "0.6500", "0.7900", "0.7100 (selection)", "-"]
    assert rows[("linear", 2)][4] == "no (no task file)" and rows[("linear", 3)][4] == "not in summary"
    assert f"selected.json: linear -> task 2, key `{basevec_key('linear', 1)}`, seed 1" in out
    assert f"1 finished task file(s) not in summary.h5 ({basevec_key('linear', 3)})" in out and "disagrees" not in out
    for name in ("basevec_curves.png", "basevec_kl.png"):
        assert f"wrote {run / 'figures' / name}" in out
    check_png(run / "figures" / "basevec_curves.png", (640, 800))   # 2 correction panels + 2 linear: 2 x 2 panels of 4 x 3.2 in
    check_png(run / "figures" / "basevec_kl.png", (1320, 800))      # a row of 3.2 in per task (+0.4 in title), 8 in wide


def test_basevec_command_without_summary_and_on_an_empty_run(tmp_path, capsys):
    from thinksteer_analysis.cli import main
    write_task(tmp_path, "correction", 1)
    assert main(["basevec", str(tmp_path), "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    assert "no summary.h5" in out and table_rows(out)[("correction", 1)][4] == "n/a (no summary)"
    assert (tmp_path / "figs" / "basevec_kl.png").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["basevec", str(empty)]) == 1
    assert "no finished task file and no summary.h5" in capsys.readouterr().err
    bad, _ = write_task(tmp_path / "bad", "linear", 1)
    replace(bad, "@format", "thinksteer.other")
    assert main(["basevec", str(tmp_path / "bad")]) == 1
    assert f"{bad}: attribute 'format'" in capsys.readouterr().err
