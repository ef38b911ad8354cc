"""analysis/thinksteer_analysis (installed into the venv by scripts/setup.sh): the readers and
`python -m thinksteer_analysis figures|summary` on fixture
run directories whose HDF5 files are written here with h5py to the documented layouts:
  <run>/attribute/attribution.h5  as src/stages/attribute.cpp writes it (format thinksteer.attribution)
  <run>/sweep/summary.h5          as `thinksteer reduce` writes it (format thinksteer.sweep_summary v1)
Strings are variable-length UTF-8 like C++ HDF5 writes them (h5py reads them back as bytes). Checks: every
figure exists, decodes, has its size and is not blank; the reader API returns the planted numbers; the
summary table prints them; missing stages are skipped with a note; malformed files fail naming file and dataset."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

try:
    import thinksteer_analysis  # noqa: F401  (installed into the project venv, editable, by scripts/setup.sh)
except ImportError as e:
    raise ImportError(f"thinksteer_analysis is not installed for {sys.executable}: run scripts/setup.sh") from e
from analysis_checks import check_png  # noqa: E402

ENV = dict(os.environ, MPLBACKEND="Agg")

STR = h5py.string_dtype("utf-8")

# ---- attribution.h5 ---------------------------------------------------------------------------------
A_LABELS = ["adding-knowledge", "example-testing", "uncertainty-estimation", "backtracking"]
A_LAYERS = np.arange(6, dtype=np.int64)
A_E = 5
A_SELECTED = np.array([[3, 2], [2, 4], [4, -1], [2, 3]], dtype=np.int64)


def attribution_effect():
    rng = np.random.default_rng(7)
    K, L = len(A_LABELS), len(A_LAYERS)
    peak = np.array([3, 2, 4, 3])
    base = 1.0 / (1.0 + (A_LAYERS[None, :] - peak[:, None]) ** 2)                 # [K, L]
    return (base[:, :, None] * (1.0 + 0.3 * rng.standard_normal((K, L, A_E)))).astype(np.float32)


def scale(f, name, n):
    f[name] = np.arange(n, dtype=np.int64)
    f[name].make_scale(name)
    return f[name]


def write_attribution(run):
    d = run / "attribute"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "attribution.h5"
    K, L, E = len(A_LABELS), len(A_LAYERS), A_E
    eff = attribution_effect()
    config = "[model]\npath = models/toy-thinker\n\n[attribute]\nmetric = paper\nembed_cos = 0.5\nn_select = 2\n"
    with h5py.File(path, "w") as f:
        dims = {"label": scale(f, "label", K), "layer": scale(f, "layer", L), "example": scale(f, "example", E), "pick": scale(f, "pick", 2)}

        def ds(name, data, axes):
            f.create_dataset(name, data=data)
            f[name].attrs["dtype"] = str(np.asarray(data).dtype)
            for i, a in enumerate(axes):
                f[name].dims[i].attach_scale(dims[a])
        ds("/effect", eff, ["label", "layer", "example"])
        ds("/effect_signed", -eff, ["label", "layer", "example"])
        ds("/mean", eff.mean(axis=2), ["label", "layer"])
        ds("/std", eff.std(axis=2), ["label", "layer"])
        ds("/cos_embed", np.linspace(0.9, 0.2, K * L, dtype=np.float32).reshape(K, L), ["label", "layer"])
        ds("/cos_unembed", np.linspace(0.1, 0.6, K * L, dtype=np.float32).reshape(K, L), ["label", "layer"])
        ds("/n_examples", np.full(K, E, dtype=np.int64), ["label"])
        ds("/exclude_first", np.ones(K, dtype=np.int64), ["label"])
        ds("/exclude_last", np.ones(K, dtype=np.int64), ["label"])
        ds("/selected", A_SELECTED, ["label", "pick"])
        ds("/layers", A_LAYERS, ["layer"])
        ds("/positions", np.arange(K * E, dtype=np.int64).reshape(K, E) % 7 + 1, ["label", "example"])
        f.create_dataset("/labels", data=A_LABELS, dtype=STR)
        f.create_dataset("/example_id", data=[f"toy-{i:06d}" for i in range(E)], dtype=STR)
        f.attrs["format"] = "thinksteer.attribution"
        f.attrs["schema_version"] = np.int64(1)
        f.attrs["config"] = config
        f.attrs["provenance"] = json.dumps({"config": config, "stage": "attribute", "metric": "paper"})
        f.attrs["metric"], f.attrs["mode"], f.attrs["hook"] = "paper", "trace", "blocks.{l}.hook_resid_post"
    (d / "attribution.h5.done").write_text("0" * 64)
    return path


# ---- summary.h5 -------------------------------------------------------------------------------------
S_LABELS = ["initializing", "deduction", "adding-knowledge", "example-testing", "uncertainty-estimation", "backtracking"]
S_STEERABLE = np.array([0, 0, 1, 1, 1, 1], dtype=np.uint8)
BASE_FRACTION = {"adding-knowledge": 0.40, "example-testing": 0.20, "uncertainty-estimation": 0.25, "backtracking": 0.15}
# (kind, vector, layers, coef, seed) -> the vector's own token share
PLANTED = {
    ("vector", "backtracking", "1", -8.0, 0): 0.10, ("vector", "backtracking", "1", -4.0, 0): 0.12,
    ("vector", "backtracking", "1", 4.0, 0): 0.20, ("vector", "backtracking", "1", 8.0, 0): 0.25,
    ("vector", "backtracking", "2", -8.0, 0): 0.01, ("vector", "backtracking", "2", -4.0, 0): 0.05,
    ("vector", "backtracking", "2", 4.0, 0): 0.30, ("vector", "backtracking", "2", 8.0, 0): 0.40,
    ("vector", "backtracking", "1+2", 4.0, 0): 0.33,
    ("random", "backtracking", "2", -8.0, 1): 0.14, ("random", "backtracking", "2", 8.0, 1): 0.16,
    ("random", "backtracking", "2", -8.0, 2): 0.16, ("random", "backtracking", "2", 8.0, 2): 0.18,
    ("vector", "uncertainty-estimation", "1", -8.0, 0): 0.02, ("vector", "uncertainty-estimation", "1", -4.0, 0): 0.10,
    ("vector", "uncertainty-estimation", "1", 4.0, 0): 0.35, ("vector", "uncertainty-estimation", "1", 8.0, 0): 0.45,
    ("vector", "uncertainty-estimation", "2", -8.0, 0): 0.20, ("vector", "uncertainty-estimation", "2", -4.0, 0): 0.22,
    ("vector", "uncertainty-estimation", "2", 4.0, 0): 0.28, ("vector", "uncertainty-estimation", "2", 8.0, 0): 0.30,
}
CI_LO, CI_HI = 0.02, 0.03       # planted: delta_lo = delta - CI_LO, delta_hi = delta + CI_HI (thinking length: 2, 3 tokens)
BASE_ACCURACY, BASE_THINK = 0.6, 400.0


def accuracy_of(coef):
    return BASE_ACCURACY - 0.01 * abs(coef)


def think_of(vector, coef):
    return BASE_THINK + (10.0 if vector == "backtracking" else -5.0) * coef


def summary_rows():
    rows = [dict(kind="baseline", vector="", layers="", coef=0.0, seed=0, share=None)]
    rows += [dict(kind=k, vector=v, layers=l, coef=c, seed=s, share=x) for (k, v, l, c, s), x in PLANTED.items()]
    return rows


def write_summary(run, partial=False, datasets=("math500",)):
    """The planted sweep, once per dataset (each block: its baseline first, then summary_rows())."""
    d = run / "sweep"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "summary.h5"
    block = summary_rows()
    rows = [dict(r, dataset=ds, base=-1 if r["kind"] == "baseline" else j * len(block)) for j, ds in enumerate(datasets) for r in block]
    P, K = len(rows), len(S_LABELS)
    token = np.full((P, K), np.nan)
    span = np.full((P, K), np.nan)
    for i, r in enumerate(rows):
        fr = dict(BASE_FRACTION)
        if r["share"] is not None:
            rest = (1.0 - r["share"]) / (1.0 - fr[r["vector"]])
            fr = {l: (r["share"] if l == r["vector"] else x * rest) for l, x in fr.items()}
        for l, x in fr.items():
            token[i, S_LABELS.index(l)] = x
        span[i] = 0.1
        span[i, 2:] = token[i, 2:] * 0.8
    dtok = np.full((P, K), np.nan)
    dspan = np.full((P, K), np.nan)
    dacc, dthink = np.full(P, np.nan), np.full(P, np.nan)
    for i, r in enumerate(rows):
        if r["base"] >= 0:
            dtok[i] = token[i] - token[r["base"]]
            dspan[i] = span[i] - span[r["base"]]
            dacc[i] = accuracy_of(r["coef"]) - BASE_ACCURACY
            dthink[i] = think_of(r["vector"], r["coef"]) - BASE_THINK
    points = {
        "task": np.arange(P, dtype=np.int64),
        "key": [f"t{i:03d}" for i in range(P)],
        "dataset": [r["dataset"] for r in rows],
        "kind": [r["kind"] for r in rows],
        "vector": [r["vector"] for r in rows],
        "layers": [r["layers"] for r in rows],
        "layer": np.array([int(r["layers"].split("+")[0]) if r["layers"] else -1 for r in rows], dtype=np.int64),
        "hook": ["" if r["kind"] == "baseline" else "hook_resid_post" for r in rows],
        "coef": np.array([r["coef"] for r in rows], dtype=np.float64),
        "op": ["add"] * P,
        "positions": ["all"] * P,
        "seed": np.array([r["seed"] for r in rows], dtype=np.int64),
        "n_prompts": np.full(P, 50, dtype=np.int64),
        "accuracy": np.array([accuracy_of(r["coef"]) for r in rows]),
        "think_tokens": np.array([think_of(r["vector"], r["coef"]) if r["vector"] else BASE_THINK for r in rows]),
        "closed": np.full(P, 0.9),
        "baseline": np.array([r["base"] for r in rows], dtype=np.int64),
    }
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "thinksteer.sweep_summary"
        f.attrs["schema_version"] = np.int64(1)
        f.attrs["format_version"] = np.int64(1)
        f.attrs["provenance"] = json.dumps({"stage": "reduce", "config": "[run]\ndir = x\n"})
        f.attrs["partial"] = np.uint8(1 if partial else 0)
        f.attrs["ci"] = 0.95
        f.attrs["n_tasks"] = np.int64(P + (3 if partial else 0))
        f.attrs["n_missing"] = np.int64(3 if partial else 0)
        f.create_dataset("/labels", data=S_LABELS, dtype=STR)
        f.create_dataset("/steerable", data=S_STEERABLE)
        for name, v in points.items():
            if isinstance(v, list):
                f.create_dataset(f"/points/{name}", data=v, dtype=STR)
            else:
                f.create_dataset(f"/points/{name}", data=v)
        f["/fraction/token_share"] = token
        f["/fraction/span_share"] = span
        for name, dl in (("token_share", dtok), ("span_share", dspan), ("accuracy", dacc), ("think_tokens", dthink)):
            f[f"/delta/{name}"] = dl
            unit = 100.0 if name == "think_tokens" else 1.0
            f[f"/delta/{name}_lo"] = dl - CI_LO * unit
            f[f"/delta/{name}_hi"] = dl + CI_HI * unit
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    write_attribution(run)
    write_summary(run)
    return run


def cli(*args):
    return subprocess.run([sys.executable, "-m", "thinksteer_analysis", *map(str, args)], capture_output=True, text=True, env=ENV, timeout=120)


# Pixel sizes (height, width): panels of 4.0 x 3.2 in at 100 dpi; 4 behaviours -> 2 x 2, 2 -> 1 x 2.
EXPECTED = {
    "attribution_layers": (640, 800),
    "attribution_cosine": (380, 900),
    "fraction_bars": (450, 600),
    "fraction_vs_coef": (320, 800),
    "accuracy_length": (450, 1100),
    "vector_vs_random": (320, 400),     # one panel: backtracking at its first pick, layer 2
}



def test_figures_command_draws_every_figure(run, tmp_path):
    out = tmp_path / "figs"
    p = cli("figures", run, "--out", out)
    assert p.returncode == 0, p.stderr
    listed = [Path(line) for line in p.stdout.split("\n") if line.strip()]
    assert sorted(x.name for x in listed) == sorted(f"{n}.png" for n in EXPECTED)
    for name, shape in EXPECTED.items():
        check_png(out / f"{name}.png", shape)


def test_figures_default_out_and_pdf(run):
    p = cli("figures", run, "--format", "pdf")
    assert p.returncode == 0, p.stderr
    for name in EXPECTED:
        assert (run / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"


def test_missing_stages_are_skipped_with_a_note(tmp_path):
    only_sweep, only_attr, empty = tmp_path / "s", tmp_path / "a", tmp_path / "e"
    write_summary(only_sweep, partial=True)
    write_attribution(only_attr)
    empty.mkdir()
    p = cli("figures", only_sweep)
    assert p.returncode == 0, p.stderr
    assert "note: no attribute" in p.stdout and "partial" in p.stdout
    assert sorted(x.name for x in (only_sweep / "figures").iterdir()) == ["accuracy_length.png", "fraction_bars.png", "fraction_vs_coef.png",
                                                                          "vector_vs_random.png"]
    from thinksteer_analysis.figures import make_figures   # in process: the same code path, one interpreter less
    notes = []
    written = make_figures(only_attr, log=notes.append)
    assert sorted(x.name for x in written) == ["attribution_cosine.png", "attribution_layers.png"]
    assert any("no sweep" in n for n in notes)
    p = cli("figures", empty)
    assert p.returncode == 1 and "nothing to draw" in p.stderr


def test_load_attribution_returns_planted_numbers(run):
    from thinksteer_analysis import load_attribution
    a = load_attribution(run)
    eff = attribution_effect()
    assert a.labels == A_LABELS and all(type(x) is str for x in a.labels)
    np.testing.assert_array_equal(a.layers, A_LAYERS)
    np.testing.assert_array_equal(a.effect, eff)
    np.testing.assert_allclose(a.mean, eff.mean(axis=2), rtol=1e-6)
    np.testing.assert_allclose(a.std, eff.std(axis=2), rtol=1e-6)
    assert a.selected_layers("backtracking") == [2, 3] and a.selected_layers("uncertainty-estimation") == [4]
    assert a.example_id[2] == "toy-000002" and a.metric == "paper" and a.hook == "blocks.{l}.hook_resid_post"
    assert a.embed_cos_threshold() == 0.5
    assert a.cos_embed.shape == (4, 6) and a.n_examples.tolist() == [A_E] * 4


def test_load_sweep_summary_returns_planted_numbers(run):
    from thinksteer_analysis import fraction_bars, load_sweep_summary
    s = load_sweep_summary(run)
    rows = summary_rows()
    assert len(s) == len(rows) and s.labels == S_LABELS and s.steerable.tolist() == S_STEERABLE.astype(bool).tolist()
    assert s.points["kind"].tolist() == [r["kind"] for r in rows] and isinstance(s.points["kind"][0], str)
    assert s.points["hook"][1] == "hook_resid_post" and s.points["layers"][9] == "1+2"
    assert s.hook_names(9) == ["blocks.1.hook_resid_post", "blocks.2.hook_resid_post"] and s.hook_names(0) == []
    kb = s.label_index("backtracking")
    for i, r in enumerate(rows[1:], start=1):
        k = s.label_index(r["vector"])
        assert s.fraction["token_share"][i, k] == pytest.approx(r["share"])
        assert s.delta["token_share_hi"][i, k] == pytest.approx(r["share"] - BASE_FRACTION[r["vector"]] + CI_HI)
        assert s.points["accuracy"][i] == pytest.approx(accuracy_of(r["coef"]))
    assert s.fraction["token_share"][0, kb] == pytest.approx(0.15) and np.isnan(s.fraction["token_share"][0, 0])
    assert np.isnan(s.delta["accuracy"][0]) and not s.partial and s.n_tasks == len(rows)

    bars = {b.label: b for b in fraction_bars(s)}
    assert list(bars) == ["uncertainty-estimation", "backtracking"]
    b = bars["backtracking"]     # layer 2 separates most (40% vs 1%); 1+2 has no negative point
    assert (b.layers, b.pos_coef, b.neg_coef) == ("2", 8.0, -8.0)
    assert (b.baseline, b.pos, b.neg) == pytest.approx((0.15, 0.40, 0.01))
    assert b.pos_err == pytest.approx((CI_LO, CI_HI)) and b.neg_err == pytest.approx((CI_LO, CI_HI))
    assert (b.random_pos, b.random_neg) == pytest.approx((0.17, 0.15))   # mean over seeds 1 and 2
    u = bars["uncertainty-estimation"]
    assert (u.layers, u.pos, u.neg) == ("1", pytest.approx(0.45), pytest.approx(0.02)) and np.isnan(u.random_pos)


def test_datasets_span_share_and_subsets(tmp_path):
    """Several datasets: figures per dataset, subsets renumber their baselines; the span-share fractions."""
    from thinksteer_analysis import fraction_bars, load_sweep_summary
    from thinksteer_analysis.figures import make_figures
    run = tmp_path / "run"
    write_summary(run, datasets=("math500", "gsm8k"))
    s = load_sweep_summary(run)
    assert s.datasets() == ["gsm8k", "math500"] and s.points["baseline"][30] == 22
    g = s.subset(s.points["dataset"] == "gsm8k")
    assert len(g) == 22 and g.points["baseline"].tolist() == [-1] + [0] * 21 and g.points["kind"][0] == "baseline"
    b = {x.label: x for x in fraction_bars(g, "span_share")}["backtracking"]
    assert (b.layers, b.baseline, b.pos, b.neg) == ("2", pytest.approx(0.12), pytest.approx(0.32), pytest.approx(0.008))
    written = make_figures(run, tmp_path / "out", log=lambda line: None)
    assert sorted(p.name for p in written) == sorted(f"{n}_{ds}.png" for n in ("fraction_bars", "fraction_vs_coef", "accuracy_length", "vector_vs_random")
                                                     for ds in ("gsm8k", "math500"))


def test_summary_command_prints_the_table(run):
    p = cli("summary", run)
    assert p.returncode == 0, p.stderr
    line = next(l for l in p.stdout.splitlines() if " vector " in l and "backtracking" in l and " 2 " in l and "  8 " in l)
    assert "15.0% -> 40.0%" in line and "+25.0% [+23.0, +28.0]" in line and "52.0% (-8.0% [-10.0, -5.0])" in line
    assert "480.0 (+80.0 [+78.0, +83.0])" in line
    assert "baselines" in p.stdout and "60.0%" in p.stdout and "bootstrap 95% CI" in p.stdout


def corrupt(path, name, replacement=None):
    with h5py.File(path, "a") as f:
        del f[name]
        if replacement is not None:
            f[name] = replacement


@pytest.mark.parametrize("which,name,replacement,expect", [
    ("sweep", "/delta/token_share_lo", None, "missing dataset"),
    ("sweep", "/points/coef", np.zeros(5), "shape (5,)"),
    ("sweep", "/fraction/span_share", np.zeros((22, 7)), "shape (22, 7)"),
    ("sweep", "/points/kind", np.zeros(22, dtype=np.int64), "expected strings"),
    ("attribute", "/cos_unembed", None, "missing dataset"),
    ("attribute", "/mean", np.zeros((4, 5), dtype=np.float32), "shape (4, 5)"),
])
def test_malformed_file_fails_naming_file_and_dataset(tmp_path, which, name, replacement, expect):
    run = tmp_path / "run"
    path = write_summary(run) if which == "sweep" else write_attribution(run)
    assert len(summary_rows()) == 22   # the shapes above
    corrupt(path, name, replacement)
    p = cli("figures", run)
    assert p.returncode == 1
    assert str(path) in p.stderr and name in p.stderr and expect in p.stderr, p.stderr
    assert not (run / "figures").exists()
    if which == "sweep" and name == "/points/coef":
        p = cli("summary", run)
        assert p.returncode == 1 and str(path) in p.stderr and name in p.stderr


def test_not_hdf5_is_named(tmp_path):
    (tmp_path / "run" / "sweep").mkdir(parents=True)
    (tmp_path / "run" / "sweep" / "summary.h5").write_bytes(b"not hdf5")
    p = cli("summary", tmp_path / "run")
    assert p.returncode == 1 and "summary.h5: (file): cannot be opened as HDF5" in p.stderr, p.stderr


def test_bad_baseline_index_is_named(tmp_path):
    from thinksteer_analysis import SchemaError, load_sweep_summary
    path = write_summary(tmp_path / "run")
    with h5py.File(path, "a") as f:
        f["/points/baseline"][3] = 5          # row 5 is a vector point, not a baseline
    with pytest.raises(SchemaError, match=r"summary\.h5: /points/baseline: row 3: points at row 5, which is not a baseline"):
        load_sweep_summary(tmp_path / "run")


def test_acceptance_table_on_planted_numbers(run):
    """At attribute's first pick: +c raises, -c lowers (intervals exclude 0), and the vector's estimate lies
    beyond every random direction's interval on its side; |c| and the number of directions are limited."""
    from thinksteer_analysis.acceptance import acceptance_rows, agreement, behaviour_verdicts, first_picks
    from thinksteer_analysis.sweep_summary import load_sweep_summary
    picks = first_picks(run)
    assert picks == {"adding-knowledge": "3", "example-testing": "2", "uncertainty-estimation": "4", "backtracking": "2"}
    rows = acceptance_rows(load_sweep_summary(run), picks=picks)
    by = {(r["vector"], r["layers"], r["c"]): r for r in rows}
    bt = by[("backtracking", "2", 8.0)]
    assert np.isclose(bt["plus"][0], 0.25) and np.isclose(bt["minus"][0], -0.14)
    assert bt["raises"] and bt["lowers"] and bt["beyond_random"] and bt["ok"] and bt["first_pick"]
    assert len(bt["random_plus"]) == 2 and len(bt["random_minus"]) == 2          # seeds 1 and 2
    assert bt["random_with_zero"] == 3                                          # the strict reading
    assert not by[("backtracking", "1", 8.0)]["ok"] and by[("backtracking", "1", 8.0)]["first_pick"] is False
    loose = dict(min_prompts=50, max_c=8.0, min_random=2)
    verdicts = behaviour_verdicts(rows, **loose)
    assert [(r["layers"], r["c"]) for r in verdicts["backtracking"]] == [("2", 8.0)]
    assert verdicts["uncertainty-estimation"] == []                              # its first pick, 4, was not swept
    assert behaviour_verdicts(rows, **dict(loose, min_prompts=100))["backtracking"] == []   # 50 prompts < 100
    assert behaviour_verdicts(rows, **dict(loose, max_c=1.5))["backtracking"] == []         # c = 8 > 1.5
    assert behaviour_verdicts(rows, **dict(loose, min_random=5))["backtracking"] == []      # 2 directions < 5
    agree = {(a["vector"], a["c"]): a for a in agreement(rows, picks)}
    assert agree[("backtracking", 8.0)]["best"] == "2" and agree[("backtracking", 8.0)]["agrees"]
    assert np.isclose(agree[("backtracking", 8.0)]["effects"]["1"], 0.075)
    assert agree[("uncertainty-estimation", 8.0)]["best"] == "1" and agree[("uncertainty-estimation", 8.0)]["agrees"] is False
    r = cli("acceptance", run, "--min-prompts", "50", "--max-c", "8", "--min-random", "2")
    assert r.returncode == 1, r.stderr                                           # uncertainty fails
    assert "backtracking: PASS at layer 2 c=8" in r.stdout and "uncertainty-estimation: FAIL" in r.stdout, r.stdout
    assert "Attribution against steering" in r.stdout and "L2* +19.5" in r.stdout, r.stdout
    assert cli("acceptance", run, "--min-prompts", "50").returncode == 1         # defaults: c <= 1.5, 5 directions
