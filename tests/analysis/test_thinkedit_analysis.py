"""analysis/thinksteer_analysis: ThinkEdit's readers (thinkedit), sweep statistics (thinkedit_sweeps), figures
(thinkedit_figures) and tables (thinkedit_table, `thinksteer-analysis thinkedit RUN_DIR`) on a run directory this
file writes to the layouts the C++ writers produce (src/artifacts/thinkedit.h, src/stages/thinkedit_direction.cpp,
thinkedit_edit.cpp, src/artifacts/sweep_task.cpp):
  <run>/thinkedit/lengths.jsonl, thresholds.json      the probe traces' split (tokens: long > 1000, short < 100)
  <run>/thinkedit/heads.h5 (+.done)                   thinksteer.thinkedit_heads schema_version 1, [L=4, H=3]
  <run>/thinkedit/edit.json (+.done)                  {format thinksteer.thinkedit_edit, heads, scores, k, ...}
  <run>/alpha/sweep, layerwise/sweep, eval/{original,edited}/sweep   steer sweeps (manifest.jsonl, tasks/<key>.h5)
Planted numbers come back: length grows with α (Spearman 1.0, Δ length exactly 1000 α), each layer's Δ length
is ±10 (layer + 1), the shortest 10% / 20% of each evaluation run and the threshold curve are hand-checked; a
file that breaks its layout fails with a SchemaError naming the file and the dataset, key or line; the command
prints the tables and draws the five figures."""
import hashlib
import json
import math
import sys

import numpy as np
import pytest

try:
    import thinksteer_analysis  # noqa: F401  installed into the project venv, editable, by scripts/setup.sh
except ImportError as e:
    raise ImportError(f"thinksteer_analysis is not installed for {sys.executable}: run scripts/setup.sh") from e
from analysis_checks import check_png, done, identity, put, replace, write_sweep_manifest, write_sweep_task  # noqa: E402
from thinksteer_analysis.schema import SchemaError
from thinksteer_analysis.thinkedit import check_split, read_edit, read_heads, read_lengths, read_thresholds, stale_scores
from thinksteer_analysis.thinkedit_sweeps import (alpha_rows, alpha_spearman, bootstrap_mean, eval_rows, layer_rows, load_sweep, shortest_accuracy,
                                                   spearman, threshold_curves)

L, H = 4, 3
ALPHAS = (-0.08, -0.04, 0.04, 0.08)
SEEDS = (1, 2)
P = 5                                              # alpha and layerwise prompts; p4 has no reference answer
# Probe traces: (think_tokens, closed); sets by long > 1000, short < 100.
TRACES = [(5, True), (50, True), (120, True), (900, True), (1500, True), (2000, True), (80, True), (3000, False)]
SCORES = np.array([[0.1, -0.2, 0.05], [0.9, 0.3, -0.4], [0.2, 1.5, 0.0], [-0.1, 0.7, 0.25]])
# Evaluation runs, 10 prompts: (think_tokens, correct) per run.
ORIGINAL = [([50, 10, 30, 10, 90, 70, 60, 80, 20, 40], [1, 0, 1, 1, 1, 1, 1, 1, 0, 1]),
            ([15, 25, 35, 45, 55, 65, 75, 85, 95, 5], [1] * 10)]
EDITED = [([100 + 10 * p for p in range(10)], [1] * 10), ([110 + 8 * p for p in range(10)], [0] + [1] * 9)]


# ---- fixtures --------------------------------------------------------------------------------------
def sweep_row(task, kind, coef=0.0, layers=(), seed=0, dataset="gsm8k"):
    """A manifest row as `thinksteer sweep plan` writes it (the key: a stable hash of the parameters)."""
    vector = kind != "baseline"
    row = {"task": task, "dataset": dataset, "kind": kind, "vector": "length" if vector else "", "layers": list(layers),
           "hook": "hook_mlp_out" if vector else "", "coef": coef, "op": "add" if vector else "", "positions": "all" if vector else "",
           "seed": seed, "layer_scale": 1.0}
    if seed:
        row["sample_seed"] = seed
    row["key"] = hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:16]
    return row


def write_sweep(sweep_dir, points):
    """A sweep of (kind, coef, layers, seed, correct, think_tokens) points: the manifest and every task file."""
    rows = [sweep_row(i, kind, coef, layers, seed) for i, (kind, coef, layers, seed, _, _) in enumerate(points)]
    write_sweep_manifest(sweep_dir, rows)
    for row, (*_, correct, think) in zip(rows, points):
        write_sweep_task(sweep_dir, row, correct, think)
    return rows


def alpha_think(alpha, seed):
    """Planted: every prompt's length moves by exactly 1000 α."""
    return [round(100 + 10 * p + 1000 * alpha + seed) for p in range(P)]


def alpha_correct(alpha):
    return [1, 1, 1 if alpha >= -0.04 else 0, 0 if alpha < 0.08 else 1, -1]


def write_alpha(run):
    points = [("baseline", 0.0, (), s, alpha_correct(0.0), alpha_think(0.0, s)) for s in SEEDS]
    points += [("vector", a, tuple(range(L)), s, alpha_correct(a), alpha_think(a, s)) for a in ALPHAS for s in SEEDS]
    return write_sweep(run / "alpha", points)


def write_layerwise(run):
    base = [100 + 10 * p for p in range(P)]
    points = [("baseline", 0.0, (), 0, [1, 1, 0, 0, -1], base)]
    for layer in range(L):
        for sign in (1, -1):
            correct = [1, 1, 1 if sign > 0 and layer == 1 else 0, 0, -1]   # layer 1, α = +1: one more right of 4
            points.append(("vector", float(sign), (layer,), 0, correct, [t + sign * 10 * (layer + 1) for t in base]))
    return write_sweep(run / "layerwise", points)


def write_eval(run):
    for name, runs in (("original", ORIGINAL), ("edited", EDITED)):
        write_sweep(run / "eval" / name, [("baseline", 0.0, (), s, correct, think) for s, (think, correct) in zip(SEEDS, runs)])


def write_lengths(run, traces=TRACES, split="tokens", long_above=1000, short_below=100):
    d = run / "thinkedit"
    d.mkdir(parents=True, exist_ok=True)
    sets = ["invalid" if not c else "long" if t > long_above else "short" if t < short_below else "mid" for t, c in traces]
    (d / "lengths.jsonl").write_text("".join(json.dumps({"id": f"gsm8k-{i}", "think_tokens": t, "closed": c, "set": s}) + "\n"
                                             for i, ((t, c), s) in enumerate(zip(traces, sets))))
    thresholds = {"split": split, "long_above": long_above, "short_below": short_below, "n_long": sets.count("long"),
                  "n_short": sets.count("short"), "n_valid": sum(c for _, c in traces), "n_traces": len(traces)}
    (d / "thresholds.json").write_text(json.dumps(thresholds, indent=2) + "\n")
    return d / "lengths.jsonl", d / "thresholds.json"


def ranking(scores):
    order = np.argsort(-scores.ravel(), kind="stable")
    return np.stack([order // scores.shape[1], order % scores.shape[1]], axis=1).astype(np.int64)


def write_heads(run, scores=SCORES):
    path = run / "thinkedit" / "heads.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    import h5py
    with h5py.File(path, "w") as f:
        identity(f, "thinksteer.thinkedit_heads", "thinkedit direction")
        put(f, "/scores", scores.astype(np.float64), ("layer", "head"))
        put(f, "/ranking", ranking(scores), ("rank", "layer_head"))
        f.attrs.update({"n_short": np.int64(3), "hook": "blocks.{l}.attn.hook_z", "direction": "/runs/r/thinkedit/attn.h5",
                        "direction_sha256": "d" * 64})
    done(path)
    return path


def edit_record(k=2, **changes):
    heads = ranking(SCORES)[:k].tolist()
    record = {"format": "thinksteer.thinkedit_edit", "heads": heads, "scores": [float(SCORES[l, h]) for l, h in heads], "k": k,
              "n_heads_total": L * H, "source": "/models/thinker", "out": "/runs/r/thinkedit/edited", "dtype": "source", "weight": 1.0,
              "direction": {"file": "/runs/r/thinkedit/attn.h5", "sha256": "d" * 64}, "provenance": {"stage": "thinkedit edit"}, "files": {}}
    record.update(changes)
    return record


def write_edit(run, record=None):
    path = run / "thinkedit" / "edit.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record or edit_record(), indent=2) + "\n")
    done(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("te") / "r"
    write_lengths(run)
    write_heads(run)
    write_edit(run)
    write_alpha(run)
    write_layerwise(run)
    write_eval(run)
    return run


# ---- statistics ------------------------------------------------------------------------------------
def test_spearman_and_bootstrap():
    assert spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2], [5, 5])) and math.isnan(spearman([1], [2]))
    x, y = [1, 2, 2, 3, 5, 8, 8], [3, 1, 4, 1, 5, 9, float("nan")]   # ties: mean ranks; the NaN pair left out
    assert spearman(x, y) == pytest.approx(0.6029411764705883)    # scipy.stats.spearmanr(x[:6], y[:6])
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 5, 40), rng.integers(0, 5, 40)
    assert spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a, b).statistic)
    iv = bootstrap_mean([[1.0, 1.0, 1.0]])
    assert (iv.value, iv.lo, iv.hi) == (1.0, 1.0, 1.0)
    iv = bootstrap_mean([[0.0, 1.0, float("nan"), 1.0], [1.0, 1.0, 0.0, float("nan")]])   # 6 responses, 4 right
    assert iv.value == pytest.approx(4 / 6) and 0 <= iv.lo <= iv.value <= iv.hi <= 1
    assert math.isnan(bootstrap_mean([[float("nan")]]).value)


def test_shortest_accuracy_by_hand():
    think, correct = ORIGINAL[0]
    assert math.isnan(shortest_accuracy(think, correct, 0.05))     # floor(0.5) = 0 responses
    assert shortest_accuracy(think, correct, 0.10) == 0.0          # the shortest: p1 (10, before p3 by prompt order), wrong
    assert shortest_accuracy(think, correct, 0.20) == 0.5          # p1 and p3
    assert shortest_accuracy(*ORIGINAL[1], 0.20) == 1.0            # p9 (5) and p0 (15), both right


# ---- readers ---------------------------------------------------------------------------------------
def test_thinkedit_files_round_trip(run):
    lengths, t = read_lengths(run), read_thresholds(run)
    check_split(lengths, t)
    assert lengths.think_tokens.tolist() == [x for x, _ in TRACES] and lengths.set.tolist()[:3] == ["short", "short", "mid"]
    assert (lengths.count("long"), lengths.count("short"), lengths.count("invalid")) == (2, 3, 1) and lengths.ids[7] == "gsm8k-7"
    assert (t.split, t.long_above, t.short_below, t.n_long, t.n_short, t.n_valid, t.n_traces) == ("tokens", 1000, 100, 2, 3, 7, 8)
    heads = read_heads(run)
    assert (heads.layers, heads.heads, heads.n_short, heads.hook) == (L, H, 3, "blocks.{l}.attn.hook_z")
    assert heads.top(3) == [(2, 1), (1, 0), (3, 1)] and heads.scores[2, 1] == 1.5 and heads.direction_sha256 == "d" * 64
    edit = read_edit(run, heads)
    assert edit.heads == ((2, 1), (1, 0)) and edit.scores == (1.5, 0.9) and (edit.k, edit.n_heads_total) == (2, 12)
    assert stale_scores(edit, heads) == []
    explicit = read_edit(write_edit(run.parent / "explicit", edit_record(heads=[[0, 2]], scores=[], k=1)), heads)
    assert explicit.heads == ((0, 2),) and explicit.scores == ()
    rescored = read_edit(write_edit(run.parent / "rescored", edit_record(scores=[1.5, 0.8])), heads)   # heads.h5 rescored after the edit
    assert stale_scores(rescored, heads) == [1]


def test_percentile_split_includes_the_thresholds(tmp_path):
    lp, _ = write_lengths(tmp_path, traces=[(10, True), (20, True), (30, True)], split="percentile", long_above=30, short_below=10)
    lines = [json.loads(x) for x in lp.read_text().splitlines()]
    for row, s in zip(lines, ("short", "mid", "long")):
        row["set"] = s
    lp.write_text("".join(json.dumps(r) + "\n" for r in lines))
    tp = tmp_path / "thinkedit" / "thresholds.json"
    tp.write_text(json.dumps({**json.loads(tp.read_text()), "n_long": 1, "n_short": 1}))
    check_split(read_lengths(tmp_path), read_thresholds(tmp_path))


# ---- statistics of the planted sweeps --------------------------------------------------------------
def test_alpha_rows_and_spearman(run):
    rows = alpha_rows(load_sweep(run / "alpha"))
    assert [r.alpha for r in rows] == [0.0, *ALPHAS] and rows[0].baseline and not rows[1].baseline
    base = rows[0].stats
    assert (base.runs, base.n) == (2, 2 * P) and base.accuracy.value == pytest.approx(0.75)
    assert base.think_tokens.value == pytest.approx(100 + 10 * 2 + 1.5)
    for r in rows[1:]:
        d = r.stats.delta_think
        assert (d.value, d.lo, d.hi) == pytest.approx((1000 * r.alpha,) * 3)   # every pair moved by exactly 1000 α
        assert r.stats.think_tokens.value == pytest.approx(121.5 + 1000 * r.alpha)
    assert rows[1].stats.accuracy.value == pytest.approx(0.5) and rows[4].stats.accuracy.value == pytest.approx(1.0)
    assert rows[4].stats.delta_accuracy.value == pytest.approx(0.25)
    assert alpha_spearman(rows) == {("gsm8k", "length", "hook_mlp_out"): pytest.approx(1.0)}


def test_layer_rows(run):
    rows = layer_rows(load_sweep(run / "layerwise"))
    assert [(r.layer, r.alpha) for r in rows] == [(l, a) for l in range(L) for a in (1.0, -1.0)]
    for r in rows:
        d = r.stats.delta_think
        assert (d.value, d.lo, d.hi) == pytest.approx((r.alpha * 10 * (r.layer + 1),) * 3)
    acc = {(r.layer, r.alpha): r.stats.delta_accuracy.value for r in rows}
    assert acc[(1, 1.0)] == pytest.approx(0.25) and acc[(1, -1.0)] == 0 and acc[(0, 1.0)] == 0


def test_eval_rows_and_threshold_curve(run):
    original, edited = load_sweep(run / "eval" / "original"), load_sweep(run / "eval" / "edited")
    o, e = eval_rows(original, edited)
    assert (o.model, o.dataset, o.runs, o.n) == ("original", "gsm8k", 2, 20)
    assert o.accuracy == pytest.approx(0.9) and o.accuracy_std == pytest.approx(math.sqrt(0.02))
    assert math.isnan(o.shortest[0]) and o.shortest[1:] == pytest.approx((0.5, 0.75))   # runs: (0, 1) and (0.5, 1)
    assert e.model == "edited" and e.shortest[1:] == pytest.approx((0.5, 0.75)) and e.accuracy == pytest.approx(0.95)
    thresholds, curves = threshold_curves(original, edited, "gsm8k")
    assert len(thresholds) == 30 and (thresholds[0], thresholds[-1]) == (5.0, 190.0)
    assert curves["original"][0] == 1.0 and math.isnan(curves["edited"][0])          # only original's 5-token response
    assert curves["original"][-1] == pytest.approx(0.9) and curves["edited"][-1] == pytest.approx(0.95)
    i = int(np.searchsorted(thresholds, 110.0))                                      # the first threshold >= 110 (113.4)
    assert curves["edited"][i] == pytest.approx(2 / 3)                                # run 1's 100 and 110 (right), run 2's 110 (wrong)


# ---- malformed inputs ------------------------------------------------------------------------------
HEADS_MALFORMED = [  # (what to replace, value, field named, problem)
    ("@format", "thinksteer.sweep_task", "attribute 'format'", "'thinksteer.sweep_task', expected 'thinksteer.thinkedit_heads'"),
    ("@schema_version", np.int64(2), "attribute 'schema_version'", "2 of thinksteer.thinkedit_heads is not the version"),
    ("/ranking", ranking(SCORES)[:11], "/ranking", "shape (11, 2), expected [rank=12, layer_head=2]"),
    ("/ranking", ranking(SCORES)[:, :1], "/ranking", "shape (12, 1)"),
    ("/ranking", ranking(SCORES)[[0, 0, *range(2, 12)]], "/ranking", "row 1: (2, 1) repeats row 0"),
    ("/ranking", ranking(SCORES)[[1, 0, *range(2, 12)]], "/ranking", "row 1: score 1.5 above row 0's 0.9"),
    ("/ranking", np.full((12, 2), 4, dtype=np.int64), "/ranking", "row 0: (4, 4) outside [0, L = 4) x [0, H = 3)"),
    ("/ranking", ranking(SCORES).astype(np.float64), "/ranking", "expected int"),
    ("/scores", None, "/scores", "missing dataset"),
    ("/scores", np.where(SCORES == 0.0, np.nan, SCORES), "/scores", "layer 2, head 2: nan, expected a finite score"),
    ("@n_short", np.int64(-1), "attribute 'n_short'", "-1, expected >= 0"),
    ("@hook", np.int64(3), "attribute 'hook'", "3, expected a string"),
]


@pytest.mark.parametrize("name,value,field,problem", HEADS_MALFORMED, ids=[f"{m[0]}-{i}" for i, m in enumerate(HEADS_MALFORMED)])
def test_malformed_heads_name_file_and_dataset(tmp_path, name, value, field, problem):
    path = write_heads(tmp_path)
    read_heads(tmp_path)   # well formed before the change
    replace(path, name, value)
    with pytest.raises(SchemaError) as e:
        read_heads(path)
    assert str(e.value).startswith(f"{path}: {field}: ") and problem in str(e.value), str(e.value)


def _line(n, **changes):
    """lengths.jsonl with line n's object changed."""
    def change(tmp_path):
        lp, _ = write_lengths(tmp_path)
        rows = [json.loads(x) for x in lp.read_text().splitlines()]
        rows[n - 1].update(changes)
        for k in [k for k, v in changes.items() if v is None]:
            del rows[n - 1][k]
        lp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return lp
    return change


def _json(file, **changes):
    def change(tmp_path):
        write_lengths(tmp_path)
        write_heads(tmp_path)
        path = tmp_path / "thinkedit" / file
        if file == "edit.json":
            write_edit(tmp_path)
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
        return path
    return change


JSON_MALFORMED = [  # (change, what names it, problem)
    (_line(3, set="long"), "line 3", "set 'long' with think_tokens 120, but thresholds.json puts it in 'mid'"),
    (_line(8, set="long"), "line 8", "set 'long' with closed false: a trace is invalid exactly when it did not close"),
    (_line(2, set="medium"), "line 2", "key 'set' must be long, short, mid, invalid, got 'medium'"),
    (_line(2, think_tokens=-4), "line 2", "key 'think_tokens' is -4, expected >= 0"),
    (_line(2, think_tokens=4.5), "line 2", "key 'think_tokens' is float 4.5, expected int"),
    (_line(2, closed=None), "line 2", "missing key 'closed'"),
    (_line(2, id="gsm8k-0"), "line 2", "id 'gsm8k-0' is also line 1's"),
    (_json("thresholds.json", split="median"), "top level", "key 'split' must be tokens or percentile, got 'median'"),
    (_json("thresholds.json", n_long=3), "key 'n_long'", "3, but lengths.jsonl has 2"),
    (_json("thresholds.json", short_below=2000), "top level", "short_below 2000 is above long_above 1000"),
    (_json("edit.json", format="thinksteer.titles"), "key 'format'", "'thinksteer.titles', expected 'thinksteer.thinkedit_edit'"),
    (_json("edit.json", k=3), "key 'heads'", "2 heads, but k = 3"),
    (_json("edit.json", heads=[[2, 1], [2, 1]]), "key 'heads'", "a head is listed twice"),
    (_json("edit.json", heads=[[2, 1], [4, 0]]), "key 'heads'", "entry 1: (4, 0) outside heads.h5's 4 layers x 3 heads"),
    (_json("edit.json", heads=[[2, 1], [1]]), "key 'heads'", "entry 1: [1], expected [layer, head]"),
    (_json("edit.json", scores=[1.5]), "key 'scores'", "expected k = 2 numbers (or none)"),
    (_json("edit.json", n_heads_total=20), "key 'n_heads_total'", "20, but heads.h5 has L x H = 4 x 3"),
    (_json("edit.json", dtype=None), "top level", "key 'dtype' is NoneType None, expected str"),
]


@pytest.mark.parametrize("change,field,problem", JSON_MALFORMED, ids=[f"{i}-{m[1]}" for i, m in enumerate(JSON_MALFORMED)])
def test_malformed_json_files_name_file_and_key(tmp_path, change, field, problem):
    from thinksteer_analysis.thinkedit_figures import load_thinkedit_inputs
    path = change(tmp_path)
    with pytest.raises(SchemaError) as e:
        load_thinkedit_inputs(tmp_path, log=lambda _: None)
    assert str(e.value).startswith(f"{path}: {field}: ") and problem in str(e.value), str(e.value)


# ---- the command and `figures` ---------------------------------------------------------------------
SIZES = {"thinkedit_lengths": (360, 800), "thinkedit_alpha": (400, 1000), "thinkedit_layerwise": (400, 1000), "thinkedit_heads": (500, 600),
         "thinkedit_eval": (320, 400)}


def table_rows(out, first):
    """[cells] of the markdown rows in `out` whose first cell is `first`."""
    rows = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            rows.append(cells)
    return rows


def check_tables(out):
    """Every markdown table in `out` has as many cells in each row as in its header."""
    width = None
    for line in out.splitlines():
        cells = len(line.replace("\\|", "").split("|")) - 2 if line.startswith("|") else None
        assert cells is None or width is None or cells == width, line
        width = cells


def test_thinkedit_command_prints_the_tables_and_draws_five_figures(run, tmp_path, capsys):
    from thinksteer_analysis.cli import main
    out_dir = tmp_path / "figs"
    assert main(["thinkedit", str(run), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    check_tables(out)
    assert "8 traces: long 2, short 3, mid 2, invalid 1" in out and "split by tokens: long above 1000 thinking tokens (2)" in out
    assert table_rows(out, "1") == [["1", "2", "1", "1.5"]] and "edited, /models/thinker -> /runs/r/thinkedit/edited (source): L2.H1, L1.H0" in out
    alpha = table_rows(out, "gsm8k")[:5]
    assert alpha[0][:6] == ["gsm8k", "baseline", "-", "0", "2", "10"] and alpha[0][6].startswith("0.750 [") and alpha[0][8] == "-"
    assert alpha[4][:6] == ["gsm8k", "length", "hook_mlp_out", "+0.08", "2", "10"] and alpha[4][8] == "+80.0 [+80.0, +80.0]"
    assert "Spearman(α, mean thinking length) gsm8k length hook_mlp_out: 1.000 over 4 α values and the baseline" in out
    layer = [r for r in table_rows(out, "gsm8k") if len(r) == 7]
    assert layer[1] == ["gsm8k", "length", "1", "+20.0 [+20.0, +20.0]", "+0.250 [+0.000, +0.750]", "-20.0 [-20.0, -20.0]", "+0.000 [+0.000, +0.000]"]
    ev = [r for r in table_rows(out, "gsm8k") if r[1] in ("original", "edited")]
    assert ev[0] == ["gsm8k", "original", "2", "20", "0.900 ± 0.141", "n/a", "0.500", "0.750", "48.0"]
    assert ev[1][:5] == ["gsm8k", "edited", "2", "20", "0.950 ± 0.071"] and ev[1][6:8] == ["0.500", "0.750"]
    assert table_rows(out, "5.0") == [["5.0", "1.000", "n/a"]] and table_rows(out, "190.0") == [["190.0", "0.900", "0.950"]]
    for name, shape in SIZES.items():
        assert f"wrote {out_dir / name}.png" in out
        check_png(out_dir / f"{name}.png", shape)


def test_figures_command_and_missing_parts(run, tmp_path, capsys):
    from thinksteer_analysis.cli import main
    from thinksteer_analysis.figures import make_figures
    notes = []
    written = make_figures(run, tmp_path / "all", log=notes.append)
    assert sorted(p.name for p in written) == sorted(f"{n}.png" for n in SIZES)
    assert not [n for n in notes if "thinkedit/" in n or "sweep/manifest.jsonl" in n or "tasks finished" in n], notes
    part = tmp_path / "part"
    write_heads(part)
    write_alpha(part)
    (part / "alpha" / "sweep" / "tasks" / f"{sweep_row(0, 'baseline', seed=1)['key']}.h5.done").unlink()   # a task not finished
    assert main(["thinkedit", str(part)]) == 0
    out = capsys.readouterr().out
    for note in ("thinkedit/lengths.jsonl: thinkedit_lengths skipped", "thinkedit/edit.json: no heads marked as edited",
                 "layerwise/sweep/manifest.jsonl: the layerwise sweep skipped", "eval/edited/sweep/manifest.jsonl: the edited sweep skipped",
                 "alpha/sweep: 9 of 10 tasks finished"):
        assert note in out, out
    assert sorted(p.name for p in (part / "figures").iterdir()) == ["thinkedit_alpha.png", "thinkedit_heads.png"]
    check_png(part / "figures" / "thinkedit_alpha.png", SIZES["thinkedit_alpha"])
    (tmp_path / "nothing").mkdir()
    assert main(["thinkedit", str(tmp_path / "nothing")]) == 1
    assert "no thinkedit/ files and no alpha, layerwise or eval sweep" in capsys.readouterr().err
    path = write_heads(tmp_path / "bad")
    replace(path, "@format", "thinksteer.other")
    assert main(["figures", str(tmp_path / "bad")]) == 1
    assert f"{path}: attribute 'format': 'thinksteer.other'" in capsys.readouterr().err
