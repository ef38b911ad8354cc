"""analysis/thinksteer_analysis: the reasoning-direction readers (directions, intervene), tables and figures
(directions_table, directions_figures; `thinksteer-analysis directions RUN_DIR`) and the §A.8 base-versus-thinking
comparison (compare; `thinksteer-analysis compare RUN_A RUN_B`) on fixtures this file writes to the layouts of
docs/directions.md (the C++ writers: src/artifacts/directions.cpp, src/stages/directions_contrast.cpp) and of
annotate/spans.h5 (src/stages/annotate.cpp):
  <run>/directions/contrast.csv                layer, hook, n_a, n_b, norm, cos_refusal (one cell empty)
  <run>/directions/probes.h5                   thinksteer.probes, 4 hooks (ln_final as layer -1), 2 classes
  <run>/directions/lens.h5, lens.csv, lens_top.jsonl   thinksteer.logit_lens, R = 4 rows, L = 3 layers, k = 2
  <run>/directions/cka.h5                      thinksteer.cka, 3 x 3, linear and rbf
  <run>/intervene/summary.csv (and .h5)        thinksteer.intervene_summary: ablate and patch at 3 layers
  <a|b>/annotate/spans.h5 (+ generate/generations.jsonl)   thinksteer.spans, 4 prompts, labels in two orders
Planted numbers come back in the printed tables (a share computed by hand from the spans, the paired B − A), each
figure is drawn, a part the run lacks is skipped with a note, and bad input (a wrong `format`, no results at all,
different label sets) is exit 2 with one line."""
import json
import sys
from fractions import Fraction

import h5py
import numpy as np
import pytest

try:
    import thinksteer_analysis  # noqa: F401  installed into the project venv, editable, by scripts/setup.sh
except ImportError as e:
    raise ImportError(f"thinksteer_analysis is not installed for {sys.executable}: run scripts/setup.sh") from e
from analysis_checks import check_png, done, identity, put, replace  # noqa: E402
from thinksteer_analysis.cli import main
from thinksteer_analysis.compare import behaviours, compare
from thinksteer_analysis.directions import lens_table, read_cka, read_contrast, read_lens, read_lens_csv, read_lens_top, read_probes
from thinksteer_analysis.intervene import INTERVENE_FLOATS, read_intervene
from thinksteer_analysis.schema import SchemaError
from thinksteer_analysis.spans import load_spans

STR = h5py.string_dtype("utf-8")
NAN = float("nan")
HOOKS = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.2.hook_resid_post", "ln_final.hook_normalized"]
# per hook: accuracy, lo, hi, macro-F1, lo, hi, shuffled accuracy, shuffled macro-F1
PROBES = [(0.6, 0.5, 0.7, 0.55, 0.45, 0.65, 0.5, 0.45), (0.8, 0.7, 0.9, 0.78, 0.68, 0.88, 0.52, 0.5),
          (0.9, 0.85, 0.95, 0.89, 0.8, 0.96, 0.49, 0.47), (0.85, 0.8, 0.9, 0.84, 0.79, 0.9, 0.51, 0.5)]
# lens.h5: rows x layers
KL = np.array([[2.0, 1.0, 0.0], [4.0, 0.5, 0.0], [3.0, 1.5, 0.0], [1.0, 1.0, 0.0]], dtype=np.float32)
PROB = np.array([[0.1, 0.4, 0.9], [0.0, 0.5, 0.7], [0.2, 0.3, 0.8], [0.1, 0.6, 1.0]], dtype=np.float32)
RANK = np.array([[5, 0, 0], [9, 1, 0], [3, 0, 0], [7, 2, 0]], dtype=np.int32)
LINEAR = np.array([[1.0, 0.8, 0.5], [0.8, 1.0, 0.7], [0.5, 0.7, 1.0]])
# intervene rows: dataset, mode, site, layer, n, logp, logp_clean, delta_logp (lo, hi), exact, exact_clean, delta_exact (lo, hi), recovery (lo, hi)
INTERVENE = [("control", "ablate", "resid_post", l, 40, -2.0 - d, -2.0, -d, -d - 0.3, -d + 0.3, 0.5, 0.6, -0.1, -0.2, 0.0, NAN, NAN, NAN)
             for l, d in ((0, 0.1), (1, 0.5), (2, 0.9))]
INTERVENE += [("control", "patch", "resid_post", l, 40, -1.5, -3.0, 1.5, 1.2, 1.8, 0.4, 0.2, 0.2, 0.1, 0.3, r, r - 0.2, r + 0.2)
              for l, r in ((0, 0.1), (1, 0.6), (2, 0.95))]
# spans: labels and, per prompt id, its spans' label names (A: base, B: thinking; B's file stores the labels in another order)
LABELS_A = ["initializing", "deduction", "backtracking"]
LABELS_B = ["backtracking", "initializing", "deduction"]
I, D, B = "initializing", "deduction", "backtracking"
SPANS_A = {"p0": [I, D, D, D], "p1": [D, D], "p2": [], "p3": [I, D, B, D, D]}
SPANS_B = {"p2": [B, D], "p0": [I, B, D, B], "p3": [I, D, D, D, D, B, B, D], "p1": [D, B, D, D, B, D]}


# ---- fixtures --------------------------------------------------------------------------------------
def write_contrast(run):
    d = run / "directions"
    d.mkdir(parents=True, exist_ok=True)
    rows = ["layer,hook,n_a,n_b,norm,cos_refusal"] + [f"{l},blocks.{l}.hook_resid_post,10,12,{n},{c}"
                                                       for l, n, c in ((0, 0.5, 0.1), (1, 2.25, ""), (2, 7.5, -0.42))]
    (d / "contrast.csv").write_text("\n".join(rows) + "\n")
    done(d / "contrast.csv")


def write_probes(run):
    path = run / "directions" / "probes.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    v = np.array(PROBES)
    with h5py.File(path, "w") as f:
        identity(f, "thinksteer.probes", "directions probe")
        put(f, "/hooks", HOOKS, ("hook",), dtype=STR)
        put(f, "/classes", ["reasoning", "control"], ("class",), dtype=STR)
        put(f, "/layer", np.array([0, 1, 2, -1], dtype=np.int64), ("hook",))
        for j, name in ((0, "accuracy"), (3, "macro_f1"), (6, "shuffled_accuracy"), (7, "shuffled_macro_f1")):
            put(f, f"/{name}", v[:, j], ("hook",))
        put(f, "/accuracy_ci", v[:, 1:3], ("hook", "bound"))
        put(f, "/macro_f1_ci", v[:, 4:6], ("hook", "bound"))
        for h in HOOKS:
            put(f, f"/weights/{h}", np.ones((2, 8), dtype=np.float32), ("class", "feature"))
            put(f, f"/bias/{h}", np.zeros(2, dtype=np.float32), ("class",))
        for name, x in (("n_train", 160), ("n_test", 80), ("n_train_traces", 16), ("n_test_traces", 8), ("seed", 3)):
            f.attrs[name] = np.int64(x)
        f.attrs.update({"majority_accuracy": 0.5, "l2": 0.01, "input": "runs/r/collect/activations.h5"})
    done(path)
    return path


def write_lens(run, csv=True):
    d = run / "directions"
    d.mkdir(parents=True, exist_ok=True)
    R, L = KL.shape
    with h5py.File(d / "lens.h5", "w") as f:
        identity(f, "thinksteer.logit_lens", "directions lens")
        put(f, "/layers", np.array([0, 4, 8], dtype=np.int64), ("layer",))
        put(f, "/sequence", np.array([0, 0, 1, 1], dtype=np.int64), ("row",))
        put(f, "/token", np.array([3, 4, 2, 3], dtype=np.int64), ("row",))
        put(f, "/target", np.array([11, 12, 13, 14], dtype=np.int32), ("row",))
        put(f, "/kl", KL, ("row", "layer"))
        put(f, "/target_prob", PROB, ("row", "layer"))
        put(f, "/target_rank", RANK, ("row", "layer"))
        put(f, "/top_ids", np.zeros((R, L, 2), dtype=np.int32), ("row", "layer", "k"))
        put(f, "/top_probs", np.full((R, L, 2), 0.25, dtype=np.float32), ("row", "layer", "k"))
        f.attrs["input"] = "runs/r/collect/activations.h5"
    done(d / "lens.h5")
    if csv:   # as src/artifacts/directions.cpp lens_csv writes it ({:.6g})
        lines = ["layer,kl_mean,target_prob_mean,target_rank_median,top1_agreement"]
        for j, layer in enumerate((0, 4, 8)):
            lines.append(f"{layer},{KL[:, j].mean():.6g},{PROB[:, j].astype(np.float64).mean():.6g},{np.median(RANK[:, j]):.6g},{(RANK[:, j] == 0).mean():.6g}")
        (d / "lens.csv").write_text("\n".join(lines) + "\n")
    top = [{"row": r, "sequence_id": r // 2, "token_index": 3, "token_text": " so", "target_text": " the",
            "layers": [{"layer": l, "top": [[f" t{l}", 0.5], [" x", 0.1]]} for l in (0, 4, 8)]} for r in range(2)]
    (d / "lens_top.jsonl").write_text("".join(json.dumps(t) + "\n" for t in top))


def write_cka(run, rbf=True):
    path = run / "directions" / "cka.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    hooks = [f"blocks.{l}.hook_resid_post" for l in (0, 4, 8)]
    with h5py.File(path, "w") as f:
        identity(f, "thinksteer.cka", "directions cka")
        for s in "ab":
            put(f, f"/hooks_{s}", hooks, (f"hook_{s}",), dtype=STR)
            put(f, f"/layers_{s}", np.array([0, 4, 8], dtype=np.int64), (f"hook_{s}",))
        put(f, "/linear", LINEAR, ("hook_a", "hook_b"))
        if rbf:
            put(f, "/rbf", np.sqrt(LINEAR), ("hook_a", "hook_b"))
        for name, x in (("n_rows", 500), ("n_rows_total", 800), ("seed", 0)):
            f.attrs[name] = np.int64(x)
        f.attrs.update({"model_a": "thinker", "model_b": "thinker", "input_a": "a.h5", "input_b": "a.h5"})
    done(path)
    return path


COLUMNS = ("dataset", "mode", "site", "layer", "n", *INTERVENE_FLOATS)


def write_intervene(run, h5=False):
    d = run / "intervene"
    d.mkdir(parents=True, exist_ok=True)
    cell = lambda v: "" if isinstance(v, float) and np.isnan(v) else f"{v:.6g}" if isinstance(v, float) else str(v)   # noqa: E731
    (d / "summary.csv").write_text(",".join(COLUMNS) + "\n" + "".join(",".join(cell(v) for v in row) + "\n" for row in INTERVENE))
    if h5:
        with h5py.File(d / "summary.h5", "w") as f:
            identity(f, "thinksteer.intervene_summary", "reduce")
            for j, name in enumerate(COLUMNS):
                values = [row[j] for row in INTERVENE]
                put(f, f"/{name}", values if j < 3 else np.array(values, dtype=np.int64 if j < 5 else np.float64), ("task",),
                    dtype=STR if j < 3 else None)
        done(d / "summary.h5")
        return d / "summary.h5"
    return d / "summary.csv"


def write_spans(run, labels, spans, annotator="lexicon"):
    """annotate/spans.h5 as src/stages/annotate.cpp writes it (and generate/generations.jsonl's ids): one trace per
    prompt id in the dict's order, its spans' labels as given."""
    d = run / "annotate"
    d.mkdir(parents=True, exist_ok=True)
    ids = list(spans)
    n = np.array([len(spans[i]) for i in ids], dtype=np.int64)
    label = np.array([labels.index(x) for i in ids for x in spans[i]], dtype=np.int32)
    begin = np.concatenate([np.arange(k) * 10 for k in n]).astype(np.int64) if n.sum() else np.zeros(0, dtype=np.int64)
    with h5py.File(d / "spans.h5", "w") as f:
        identity(f, "thinksteer.spans", "annotate")
        put(f, "/labels", labels, ("label",), dtype=STR)
        put(f, "/traces/id", ids, ("trace",), dtype=STR)
        put(f, "/spans/trace", np.repeat(np.arange(len(ids)), n).astype(np.int64), ("span",))
        put(f, "/spans/label", label, ("span",))
        put(f, "/spans/char_begin", begin, ("span",))
        put(f, "/spans/char_end", begin + 8, ("span",))
        put(f, "/traces/span_offset", np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64), ("trace",))
        put(f, "/traces/n_spans", n, ("trace",))
        for name in ("part_begin", "part_end", "n_sentences", "n_problems"):
            put(f, f"/traces/{name}", np.zeros(len(ids), dtype=np.int64), ("trace",))
        f.attrs.update({"annotator": annotator, "part": "all", "token_sequence": "none"})
    done(d / "spans.h5")
    g = run / "generate"
    g.mkdir(parents=True, exist_ok=True)
    (g / "generations.jsonl").write_text("".join(json.dumps({"id": i, "text": "..."}) + "\n" for i in ids))
    return d / "spans.h5"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("dir") / "r"
    write_contrast(run)
    write_probes(run)
    write_lens(run)
    write_cka(run)
    write_intervene(run)
    return run


# ---- readers ---------------------------------------------------------------------------------------
def test_readers_round_trip(run, tmp_path):
    c = read_contrast(run)
    assert c.layer.tolist() == [0, 1, 2] and c.norm.tolist() == [0.5, 2.25, 7.5] and c.n_b.tolist() == [12] * 3
    assert c.cos["refusal"][0] == 0.1 and np.isnan(c.cos["refusal"][1])
    p = read_probes(run)
    assert p.hooks.tolist() == HOOKS and p.layer.tolist() == [0, 1, 2, -1] and p.classes.tolist() == ["reasoning", "control"]
    assert p.accuracy_ci[2].tolist() == [0.85, 0.95] and p.majority_accuracy == 0.5 and (p.n_test, p.n_test_traces) == (80, 8)
    assert p.d_model == {h: 8 for h in HOOKS}
    lens = read_lens(run)
    assert len(lens) == 4 and lens.top_k == 2 and lens.layers.tolist() == [0, 4, 8]
    from_h5, from_csv = lens_table(lens), read_lens_csv(run)
    for name in ("layer", "kl_mean", "target_prob_mean", "target_rank_median", "top1_agreement"):
        assert getattr(from_h5, name) == pytest.approx(getattr(from_csv, name), rel=1e-5), name
    assert from_csv.kl_mean.tolist() == [2.5, 1.0, 0.0] and from_csv.top1_agreement.tolist() == [0.0, 0.5, 1.0]
    assert from_csv.target_rank_median.tolist() == [6.0, 0.5, 0.0]
    top = read_lens_top(run)
    assert len(top) == 2 and top[1].sequence_id == "0" and top[0].layers[2] == (8, ((" t8", 0.5), (" x", 0.1)))
    k = read_cka(run)
    assert k.linear[0, 2] == 0.5 and k.rbf is not None and (k.n_rows, k.n_rows_total, k.model_a) == (500, 800, "thinker")
    s = read_intervene(run)
    assert len(s) == 6 and s["mode"].tolist() == ["ablate"] * 3 + ["patch"] * 3 and s["layer"].tolist() == [0, 1, 2] * 2
    assert np.isnan(s["recovery"][0]) and s["recovery"][4] == pytest.approx(0.6)
    h5 = read_intervene(write_intervene(tmp_path, h5=True).parent.parent)     # summary.h5 preferred
    assert h5.path.name == "summary.h5" and h5["delta_logp"].tolist() == pytest.approx(s["delta_logp"].tolist())


MALFORMED = [  # (writer, file, change, field named, problem)
    (write_probes, "directions/probes.h5", ("@format", "thinksteer.cka"), "attribute 'format'", "'thinksteer.cka', expected 'thinksteer.probes'"),
    (write_probes, "directions/probes.h5", ("@schema_version", np.int64(2)), "attribute 'schema_version'", "2 of thinksteer.probes"),
    (write_probes, "directions/probes.h5", (f"/weights/{HOOKS[1]}", None), f"/weights/{HOOKS[1]}", "missing dataset"),
    (write_probes, "directions/probes.h5", ("/accuracy", np.array([0.6, 1.8, 0.9, 0.85])), "/accuracy", "hook 'blocks.1.hook_resid_post': 1.8"),
    (write_probes, "directions/probes.h5", ("/macro_f1_ci", np.array([[0.5, 0.6]] * 3 + [[0.9, 0.8]])), "/macro_f1_ci", "is not an interval"),
    (write_cka, "directions/cka.h5", ("/linear", LINEAR[:2]), "/linear", "shape (2, 3), expected [hook_a=3, hook_b=3]"),
    (write_cka, "directions/cka.h5", ("/rbf", LINEAR + 0.5), "/rbf", "outside [0, 1]"),
    (write_cka, "directions/cka.h5", ("@n_rows", np.int64(900)), "attribute 'n_rows'", "expected 0 <= n_rows <= n_rows_total = 800"),
    (write_lens, "directions/lens.h5", ("/target_prob", PROB[:, :2]), "/target_prob", "shape (4, 2)"),
    (write_lens, "directions/lens.h5", ("/top_probs", None), "/top_probs", "missing dataset"),
    (lambda r: write_intervene(r, h5=True), "intervene/summary.h5", ("@format", "thinksteer.sweep_summary"), "attribute 'format'",
     "expected 'thinksteer.intervene_summary'"),
]


@pytest.mark.parametrize("writer,file,change,field,problem", MALFORMED, ids=[f"{m[1]}-{i}" for i, m in enumerate(MALFORMED)])
def test_malformed_files_exit_2_with_one_line(tmp_path, capsys, writer, file, change, field, problem):
    writer(tmp_path)
    path = tmp_path / file
    replace(path, *change)
    assert main(["directions", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured
    assert captured.err.startswith(f"error: {path}: {field}: ") and problem in captured.err, captured.err


@pytest.mark.parametrize("text,field,problem", [
    ("layer,hook,n_a,norm\n0,h,1,0.5\n", "line 1", "no column 'n_b'"),
    ("layer,hook,n_a,n_b,norm\n0,h,1,2,0.5\n0,h,1,2,0.7\n", "line 3", "layer 0 has a row already"),
    ("layer,hook,n_a,n_b,norm,cos_x\n0,h,1,2,abc,0.1\n", "line 2", "column 'norm': 'abc' is not a number"),
    ("layer,hook,n_a,n_b,norm,cos_x\n0,h,1,2,0.5,1.7\n", "column 'cos_x'", "line 2: 1.7 outside [-1, 1]"),
])
def test_malformed_contrast_csv(tmp_path, text, field, problem):
    path = tmp_path / "directions" / "contrast.csv"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(SchemaError) as e:
        read_contrast(tmp_path)
    assert str(e.value).startswith(f"{path}: {field}: ") and problem in str(e.value), str(e.value)


# ---- the directions command ------------------------------------------------------------------------
SIZES = {"directions_contrast": (380, 860), "directions_probes": (380, 860), "directions_lens": (380, 1080), "directions_cka": (460, 960),
         "directions_intervene": (380, 1060)}


def table_rows(out, first):
    """[cells] of the markdown rows in `out` whose first cell is `first`."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in out.splitlines()
            if line.startswith("|") and line.strip("|").split("|")[0].strip() == first]


def test_directions_command_prints_the_tables_and_draws_five_figures(run, tmp_path, capsys):
    out_dir = tmp_path / "figs"
    assert main(["directions", str(run), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "note:" not in out
    assert table_rows(out, "1") == [["1", "blocks.1.hook_resid_post", "10", "12", "2.25", "n/a"]]
    assert table_rows(out, "2")[0] == ["2", "blocks.2.hook_resid_post", "10", "12", "7.5", "-0.420"]
    assert table_rows(out, HOOKS[2]) == [[HOOKS[2], "2", "0.900 [0.850, 0.950]", "0.890 [0.800, 0.960]", "0.490", "0.470"]]
    assert table_rows(out, HOOKS[3])[0][1] == "ln_final"
    assert "majority baseline (always the most frequent training class): accuracy 0.500" in out
    assert table_rows(out, "4") == [["4", "1.000", "0.450", "0.5", "0.500"]]                   # lens.csv, layer 4
    assert "row 0 (sequence 0, token 3) ' so' → ' the': L0 ' t0' 0.50, L4 ' t4' 0.50, L8 ' t8' 0.50" in out
    assert "linear CKA, layers of thinker against themselves; 500 of 800 rows; RBF CKA also in the file" in out
    lines = out.splitlines()
    i = lines.index("```")
    assert [x.split() for x in lines[i + 1:i + 5]] == [["0", "4", "8"], ["0", "1.00", "0.80", "0.50"], ["4", "0.80", "1.00", "0.70"],
                                                       ["8", "0.50", "0.70", "1.00"]]
    ablate, patch = table_rows(out, "control")[1], table_rows(out, "control")[4]
    assert ablate == ["control", "ablate", "resid_post", "1", "40", "-2.000", "-2.500", "-0.500 [-0.800, -0.200]", "-0.100 [-0.200, +0.000]", "-"]
    assert patch[7:] == ["+1.500 [+1.200, +1.800]", "+0.200 [+0.100, +0.300]", "0.600 [0.400, 0.800]"]
    for name, shape in SIZES.items():
        assert f"wrote {out_dir / name}.png" in out
        check_png(out_dir / f"{name}.png", shape)


def test_missing_parts_and_the_figures_command(run, tmp_path, capsys):
    from thinksteer_analysis.figures import make_figures
    written = make_figures(run, tmp_path / "all", log=lambda _: None)
    assert {p.name for p in written} == {f"{n}.png" for n in SIZES}
    part = tmp_path / "part"
    write_cka(part, rbf=False)
    write_lens(part, csv=False)          # lens.csv missing: the table comes from lens.h5
    assert main(["directions", str(part)]) == 0
    out = capsys.readouterr().out
    for note in ("directions/contrast.csv: the contrast table and directions_contrast skipped", "directions/probes.h5: the probe table",
                 "intervene/summary.h5 or summary.csv: the intervention table and directions_intervene skipped"):
        assert note in out, out
    assert "## Logit lens (lens.h5; no lens.csv)" in out and table_rows(out, "4") == [["4", "1.000", "0.450", "0.5", "0.500"]]
    assert sorted(p.name for p in (part / "figures").iterdir()) == ["directions_cka.png", "directions_lens.png"]
    check_png(part / "figures" / "directions_cka.png", (460, 480))
    (tmp_path / "nothing").mkdir()
    assert main(["directions", str(tmp_path / "nothing")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and f"{tmp_path / 'nothing'}: no directions/ or intervene/ results" in captured.err


# ---- compare (§A.8) --------------------------------------------------------------------------------
def share(spans, label):
    """§A.8 by hand: per response label spans / all spans (0 without spans), averaged over responses."""
    return sum((Fraction(s.count(label), len(s)) if s else Fraction(0)) for s in spans.values()) / len(spans)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    write_spans(root / "base", LABELS_A, SPANS_A)
    write_spans(root / "think", LABELS_B, SPANS_B)
    return root


def test_compare_numbers(pair):
    c = compare(behaviours(load_spans(pair / "base"), "base"), behaviours(load_spans(pair / "think"), "think"))
    assert c.labels == LABELS_A and c.paired
    assert share(SPANS_A, B) == Fraction(1, 20) and share(SPANS_B, B) == Fraction(19, 48)     # 1/5 / 4; (1/2 + 1/2 + 1/4 + 1/3) / 4
    assert c.a_stats[0].value == pytest.approx(11 / 4) and c.b_stats[0].value == pytest.approx(5)
    for k, label in enumerate(LABELS_A):
        assert c.a_stats[1 + k].value == pytest.approx(float(share(SPANS_A, label)))
        assert c.b_stats[1 + k].value == pytest.approx(float(share(SPANS_B, label)))
        d = c.diff[1 + k]
        assert d.value == pytest.approx(float(share(SPANS_B, label) - share(SPANS_A, label))) and d.lo <= d.value <= d.hi
    assert c.a_stats[3].lo == 0.0 and c.a_stats[3].hi == pytest.approx(0.15)   # backtracking only in p3: resampled means k / 20


def test_compare_command(pair, tmp_path, capsys):
    assert main(["compare", str(pair / "base"), str(pair / "think"), "--labels", "Qwen-Instruct,R1-Distill"]) == 0
    out = capsys.readouterr().out
    header = table_rows(out, "model")[0]
    assert header == ["model", "spans [lo, hi]", "initializing % [lo, hi]", "deduction % [lo, hi]", "backtracking % [lo, hi]"]
    base, think = table_rows(out, "Qwen-Instruct")[0], table_rows(out, "R1-Distill")[0]
    assert base[1].startswith("2.8 [") and base[3].startswith(f"{100 * float(share(SPANS_A, D)):.1f} [") and base[4].startswith("5.0 [0.0, ")
    assert think[1].startswith("5.0 [") and think[4].startswith("39.6 [")
    diff = table_rows(out, "R1-Distill − Qwen-Instruct")[0]
    assert diff[4].startswith("+34.6 [") and diff[1].startswith("+2.2 [")
    assert "paired by prompt id over 4 prompts" in out and "note:" not in out
    check_png(pair / "base" / "figures" / "compare_behaviours.png", (460, 830))
    other = tmp_path / "other"             # another prompt set: unpaired, names from the directories
    write_spans(other, LABELS_A, {"q0": [B, D], "q1": [D], "p2": [I]})
    assert main(["compare", str(pair / "base"), str(other), "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    assert "unpaired: the runs' prompt ids differ (1 in common)" in out and table_rows(out, "other − base")
    assert (tmp_path / "figs" / "compare_behaviours.png").exists()


def test_compare_bad_input(pair, tmp_path, capsys):
    odd = tmp_path / "odd"
    write_spans(odd, ["deduction", "other"], {"p0": ["deduction"]})
    assert main(["compare", str(pair / "base"), str(odd)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{odd / 'annotate' / 'spans.h5'}: /labels: deduction, other: not the labels of" in err
    replace(odd / "annotate" / "spans.h5", "@format", "thinksteer.generations")
    assert main(["compare", str(odd), str(pair / "base")]) == 2
    assert "attribute 'format': 'thinksteer.generations', expected 'thinksteer.spans'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["compare", str(pair / "base"), str(odd), "--labels", "justone"])
    assert e.value.code == 2
