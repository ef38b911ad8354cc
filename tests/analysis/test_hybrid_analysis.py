"""analysis/thinksteer_analysis: the hybrid sweep's readers (hybrid), figures (hybrid_figures) and table
(hybrid_table, `thinksteer-analysis hybrid RUN_DIR`) on fixtures this file writes with h5py to the layouts the
C++ writers produce (src/artifacts/hybrid_task.cpp, hybrid_summary.cpp, src/stages/hybrid_sweep.cpp):
  <run>/hybrid/tasks/<key>.h5 (+.done)   thinksteer.hybrid_task schema_version 1
  <run>/hybrid/summary.h5 (+.done)       thinksteer.hybrid_summary schema_version 1
  <run>/hybrid/manifest.jsonl            {task, key, dataset, role, rule, ablation, layer, seed}
Datasets carry what h5::SerialFile::write_dataset attaches (a "dtype" attribute, an int64 0..n-1 dimension
scale per axis in the dataset's group, named as netCDF names them); strings are variable-length UTF-8;
randpos_fraction and ci are numbers written as strings (std::to_string). The run's config says run.dir =
runs/r and basevec.base_model = models/tok, so the trace's tokenizer (a byte-level one this file builds with
`tokenizers`, "×" two tokens) is found against the run's root. The planted values come back; a file that
breaks the layout fails with a SchemaError naming the file and the dataset or attribute; the command prints
the table and writes hybrid_accuracy.png, hybrid_gap.png and hybrid_trace.png."""
import hashlib
import json
import sys

import h5py
import numpy as np
import pytest

try:
    import thinksteer_analysis  # noqa: F401  installed into the project venv, editable, by scripts/setup.sh
except ImportError as e:
    raise ImportError(f"thinksteer_analysis is not installed for {sys.executable}: run scripts/setup.sh") from e
from analysis_checks import check_png, done, identity, put, replace  # noqa: E402
from thinksteer_analysis.hybrid import HybridTask, finished_hybrid_tasks, read_hybrid_summary, read_hybrid_task
from thinksteer_analysis.schema import SchemaError

STR = h5py.string_dtype("utf-8")
C = 3
CONFIG = "[model]\npath = models/thinker\n\n[run]\ndir = runs/r\n\n[basevec]\nbase_model = models/tok\n\n[hybrid]\nrules = fixed,mlp\n"
# The trace: prompt 0 of the d1 fixed/none row. (text, kind, category) per token: 0 agree, 1 steered, 2 skipped
# disagreement, 3 forced answer prefix, 4 answer. "×" is two byte-level tokens; "</think>" one special token.
TRACE = [("Okay", 1, 0), (",", 0, -1), (" so", 1, 2), (" 3", 0, -1), (" ×", 2, -1), (" 4", 0, -1), (" =", 0, -1), (" 12", 1, 2), (".", 0, -1),
         ("\n", 0, -1), ("</think>", 3, -1), ("\n\nThe", 4, -1), (" answer", 4, -1), (" is", 4, -1), (" 12", 4, -1), (".", 4, -1)]
# Summary rows: (dataset, role, rule, ablation, layer, accuracy, lo, hi, gap, lo, hi, vs_hybrid, lo, hi, steered share, think tokens)
NAN = float("nan")
ROWS = [
    ("d1", "base", "", "", -1, 0.4, 0.2, 0.6, NAN, NAN, NAN, NAN, NAN, NAN, 0.0, 60.0),
    ("d1", "thinking", "", "", -1, 0.9, 0.8, 1.0, NAN, NAN, NAN, NAN, NAN, NAN, 0.0, 90.0),
    ("d1", "hybrid", "fixed", "none", 3, 0.6, 0.4, 0.8, 0.4, 0.1, 0.7, NAN, NAN, NAN, 0.25, 70.5),
    ("d1", "hybrid", "mlp", "none", 3, 0.5, 0.3, 0.7, 0.2, -0.1, 0.5, NAN, NAN, NAN, 0.125, 66.25),
    ("d1", "hybrid", "fixed", "randcat", 3, 0.45, 0.25, 0.65, 0.1, -0.2, 0.4, 0.15, 0.05, 0.25, 0.25, 65.0),
    ("d1", "hybrid", "fixed", "randpos", 3, 0.4, 0.2, 0.6, 0.0, -0.3, 0.3, 0.2, -0.05, 0.45, 0.3, 61.0),
    ("d2", "base", "", "", -1, 0.3, 0.1, 0.5, NAN, NAN, NAN, NAN, NAN, NAN, 0.0, 50.0),
    ("d2", "thinking", "", "", -1, 0.7, 0.5, 0.9, NAN, NAN, NAN, NAN, NAN, NAN, 0.0, 80.0),
    ("d2", "hybrid", "fixed", "none", 3, 0.5, 0.3, 0.7, 0.5, 0.0, 1.0, NAN, NAN, NAN, 0.2, 55.0),
]
FLOATS = ("accuracy", "accuracy_lo", "accuracy_hi", "gap", "gap_lo", "gap_hi", "vs_hybrid", "vs_hybrid_lo", "vs_hybrid_hi", "steered_share", "think_tokens")
TRACE_ROW = 2


# ---- fixtures --------------------------------------------------------------------------------------
def hybrid_key(dataset, role, rule, ablation, layer, seed=0):
    """A stable 16-hex-digit key per point (the C++ hashes the point likewise; the reader only checks the form)."""
    return hashlib.sha256(f"hybrid {dataset} {role} {rule} {ablation} {layer} {seed}".encode()).hexdigest()[:16]


def make_tokenizer(root):
    """A byte-level tokenizer (one token per byte, no merges) with </think> and <eos> special, saved as
    <root>/models/tok/tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["</think>", "<eos>"])
    path = root / "models" / "tok" / "tokenizer.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return tok, path


def trace_tokens(tok):
    """(ids, kinds, categories, the token count of each TRACE piece) of prompt 0's trace."""
    ids, kinds, cats, lengths = [], [], [], []
    for text, kind, cat in TRACE:
        piece = tok.encode(text, add_special_tokens=False).ids
        ids += piece
        kinds += [kind] * len(piece)
        cats += [cat] * len(piece)
        lengths.append(len(piece))
    return ids, kinds, cats, lengths


def write_task(run, row, task, tok=None):
    """The task file of a summary row; the d1 fixed/none row (TRACE_ROW) saves tokens: prompt 0 the TRACE,
    prompt 1 two tokens, prompt 2 none. P = 3 prompts."""
    dataset, role, rule, ablation, layer = row[:5]
    key = hybrid_key(dataset, role, rule, ablation, layer)
    path = run / "hybrid" / "tasks" / f"{key}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    ids, kinds, cats = [], [], []
    per_prompt = [0, 0, 0]
    if tok is not None:
        ids, kinds, cats, _ = trace_tokens(tok)
        more = tok.encode("Hi.", add_special_tokens=False).ids[:2]
        per_prompt = [len(ids), len(more), 0]
        ids, kinds, cats = ids + more, kinds + [0] * len(more), cats + [-1] * len(more)
    steered = [int(sum(1 for k in kinds[:per_prompt[0]] if k == 1)), 0, 0]
    counts = np.zeros((3, C), dtype=np.int64)
    counts[0, 0], counts[0, 2] = 1, steered[0] - 1 if steered[0] else 0
    with h5py.File(path, "w") as f:
        put(f, "/prompts/correct", np.array([1, 0, -1], dtype=np.int64), ("prompt",), description="1 right, 0 wrong, -1 no reference answer")
        put(f, "/prompts/closed", np.array([1, 1, 0], dtype=np.int64), ("prompt",))
        put(f, "/prompts/new_tokens", np.array(per_prompt, dtype=np.int64), ("prompt",))
        put(f, "/prompts/think_tokens", np.array([10, 2, 0], dtype=np.int64), ("prompt",))
        put(f, "/prompts/steered", np.array(steered, dtype=np.int64), ("prompt",))
        put(f, "/prompts/disagree", np.array([steered[0] + 1, 0, 0], dtype=np.int64), ("prompt",))
        put(f, "/prompts/hits", np.array([1 if steered[0] else 0, 0, 0], dtype=np.int64), ("prompt",))
        put(f, "/prompts/category_counts", counts, ("prompt", "category"))
        put(f, "/tokens/offsets", np.concatenate([[0], np.cumsum(per_prompt)]).astype(np.int64), ("prompt_edge",))
        put(f, "/tokens/id", np.array(ids, dtype=np.int32), ("token",))
        put(f, "/tokens/kind", np.array(kinds, dtype=np.int32), ("token",))
        put(f, "/tokens/category", np.array(cats, dtype=np.int32), ("token",))
        put(f, "/tokens/coef", np.array([1.0 if k == 1 else 0.0 for k in kinds], dtype=np.float32), ("token",))
        put(f, "/tokens/base", np.array(ids, dtype=np.int32), ("token",))
        put(f, "/tokens/thinking", np.array([i if k != 4 else -1 for i, k in zip(ids, kinds)], dtype=np.int32), ("token",))
        put(f, "/prompts/id", ["p-0", "p-1", "p-2"], ("prompt",), dtype=STR)
        put(f, "/prompts/answer", ["12", "7", ""], ("prompt",), dtype=STR)
        put(f, "/prompts/reference", ["12", "8", ""], ("prompt",), dtype=STR)
        put(f, "/prompts/text", ["".join(t for t, _, _ in TRACE) if tok else "", "Hi" if tok else "", ""], ("prompt",), dtype=STR)
        identity(f, "thinksteer.hybrid_task", "sweep run", CONFIG, "/nonexistent/thinker")
        point = {"ablation": ablation, "dataset": dataset, "key": key, "layer": layer, "role": role, "rule": rule, "seed": 0, "task": task}
        for name, v in (("task", np.int64(task)), ("key", key), ("point", json.dumps(point, separators=(",", ":"))), ("role", role), ("rule", rule),
                        ("ablation", ablation), ("dataset", dataset), ("layer", np.int64(layer)), ("seed", np.int64(0)),
                        ("randpos_fraction", "0.300000" if ablation == "randpos" else "0.000000"), ("categories", np.int64(C)),
                        ("vectors_file", "runs/b/basevec/tasks/0123456789abcdef.h5"), ("vectors_hash", "v" * 64),
                        ("metrics", json.dumps({"accuracy": 0.5, "answered": 3, "steered": steered[0]}))):
            f.attrs[name] = v
    done(path)
    return path, key


def write_summary(run, rows=ROWS):
    path = run / "hybrid" / "summary.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    col = {name: np.array([r[5 + i] for r in rows], dtype=np.float64) for i, name in enumerate(FLOATS)}
    with h5py.File(path, "w") as f:
        for name, v in (("task", range(len(rows))), ("layer", [r[4] for r in rows]), ("seed", [0] * len(rows)), ("n", [3] * len(rows))):
            put(f, f"/{name}", np.array(list(v), dtype=np.int64), ("row",))
        for name in ("accuracy", "accuracy_lo", "accuracy_hi", "gap", "gap_lo", "gap_hi", "vs_hybrid", "vs_hybrid_lo", "vs_hybrid_hi", "steered_share"):
            put(f, f"/{name}", col[name], ("row",))
        put(f, "/disagree_share", col["steered_share"] + 0.05, ("row",))
        put(f, "/hit_share", np.full(len(rows), 0.5), ("row",))
        put(f, "/think_tokens", col["think_tokens"], ("row",))
        put(f, "/category_usage", np.tile([0.5, 0.0, 0.5], (len(rows), 1)), ("row", "category"), description="share of steered steps per category")
        put(f, "/key", [hybrid_key(*r[:5]) for r in rows], ("row",), dtype=STR)
        for i, name in enumerate(("dataset", "role", "rule", "ablation")):
            put(f, f"/{name}", [r[i] for r in rows], ("row",), dtype=STR)
        identity(f, "thinksteer.hybrid_summary", "reduce", CONFIG, "/nonexistent/thinker")
        f.attrs["partial"] = np.int64(0)
        f.attrs["bootstrap"] = np.int64(200)
        f.attrs["ci"] = "0.950000"
        f.attrs["categories"] = np.int64(C)
    done(path)
    manifest = [{"ablation": r[3], "dataset": r[0], "key": hybrid_key(*r[:5]), "layer": r[4], "role": r[1], "rule": r[2], "seed": 0, "task": i}
                for i, r in enumerate(rows)]
    (path.parent / "manifest.jsonl").write_text("".join(json.dumps(m, separators=(",", ":")) + "\n" for m in manifest))
    return path


def write_run(root, tokens=True):
    """<root>/runs/r: the summary and every row's task file (the trace row's with tokens), and
    <root>/models/tok/tokenizer.json (when tokens)."""
    run = root / "runs" / "r"
    tok = make_tokenizer(root)[0] if tokens else None
    write_summary(run)
    for i, row in enumerate(ROWS):
        write_task(run, row, i, tok if i == TRACE_ROW else None)
    return run


# ---- readers ---------------------------------------------------------------------------------------
def test_task_round_trip(tmp_path):
    tok, _ = make_tokenizer(tmp_path)
    path, key = write_task(tmp_path, ROWS[TRACE_ROW], 2, tok)
    t = read_hybrid_task(tmp_path, key)
    assert isinstance(t, HybridTask) and t.path == path and read_hybrid_task(path).key == key
    assert (t.task, t.role, t.rule, t.ablation, t.dataset, t.layer, t.seed, t.categories) == (2, "hybrid", "fixed", "none", "d1", 3, 0, C)
    assert t.ids.tolist() == ["p-0", "p-1", "p-2"] and t.references.tolist() == ["12", "8", ""] and t.prompts == 3
    assert t.correct.tolist() == [1, 0, -1] and t.accuracy == 0.5 and t.randpos_fraction == 0.0
    ids, kinds, cats, _ = trace_tokens(tok)
    r = t.tokens(0)
    assert t.token_id[r].tolist() == ids and t.token_kind[r].tolist() == kinds and t.token_category[r].tolist() == cats
    assert t.tokens(2) == slice(t.n_tokens, t.n_tokens) and t.steered[0] == kinds.count(1) and t.category_counts.shape == (3, C)
    assert t.token_coef.dtype == np.float32 and t.token_thinking[r][-1] == -1
    assert t.metrics["steered"] == kinds.count(1) and t.point["rule"] == "fixed" and t.provenance["stage"] == "sweep run" and t.vectors_hash == "v" * 64
    with pytest.raises(IndexError):
        t.tokens(3)


def test_summary_round_trip(tmp_path):
    run = write_run(tmp_path, tokens=False)
    s = read_hybrid_summary(run)
    assert len(s) == len(ROWS) and s.role.tolist() == [r[1] for r in ROWS] and s.rule.tolist()[:4] == ["", "", "fixed", "mlp"]
    assert s.datasets() == ["d1", "d2"] and s.rows("d1", "hybrid", "none") == [2, 3] and s.rows("d2") == [6, 7, 8]
    assert s.interval("vs_hybrid", 4) == (0.15, 0.05, 0.25) and np.isnan(s.gap[0]) and s.think_tokens[3] == 66.25
    assert (s.ci, s.bootstrap, s.categories, s.partial) == (0.95, 200, C, False) and s.category_usage.shape == (len(ROWS), C)
    assert s.row_of(hybrid_key(*ROWS[5][:5])) == 5 and s.row_of("0" * 16) is None
    assert len(finished_hybrid_tasks(run)) == len(ROWS)


def test_token_pieces_and_wrapping(tmp_path):
    from thinksteer_analysis.hybrid_figures import token_pieces, wrap_cells
    tok, _ = make_tokenizer(tmp_path)
    ids, _, _, lengths = trace_tokens(tok)
    pieces = token_pieces(tok, ids)
    assert "".join(pieces) == "".join(t for t, _, _ in TRACE)
    times = sum(lengths[:4])   # " ×": a space and the two bytes of "×"; the first byte decodes to nothing
    assert pieces[times:times + 3] == [" ", "", "×"]
    assert len(token_pieces(tok, ids, limit=5)) == 5
    cells = [(c, -1) for c in ("word " * 50 + "\nend")]
    lines = wrap_cells(cells, 100)
    assert [len(l) for l in lines] == [100, 100, 50, 3] and all("".join(c for c, _ in l[:-1]).endswith("word") for l in lines[:2])
    assert [len(l) for l in wrap_cells([("x", -1)] * 250, 100)] == [100, 100, 50]
    from thinksteer_analysis.hybrid_figures import trace_lines
    t = read_hybrid_task(write_task(tmp_path, ROWS[TRACE_ROW], 2, tok)[0])
    lines, shown, cut = trace_lines(t, 0, tok)
    assert ["".join(c for c, _ in l) for l in lines] == ["Okay, so 3 × 4 = 12.", "</think>", "", "The answer is 12."] and (shown, cut) == (48, False)
    assert lines[0][0] == ("O", 0) and lines[0][6] == ("s", 2) and lines[0][11] == ("×", -3) and lines[1][0] == ("<", -2)
    lines, shown, cut = trace_lines(t, 0, tok, limit=7)
    assert ["".join(c for c, _ in l) for l in lines] == ["Okay, s"] and (shown, cut) == (7, True)


# ---- malformed inputs ------------------------------------------------------------------------------
MALFORMED = [  # (which file, [(what to replace, value)], field named, problem)
    ("task", [("@format", "thinksteer.basevec_task")], "attribute 'format'", "'thinksteer.basevec_task', expected 'thinksteer.hybrid_task'"),
    ("task", [("@schema_version", np.int64(2))], "attribute 'schema_version'", "2 of thinksteer.hybrid_task is not the version"),
    ("task", [("/prompts/correct", np.array([1, 2, 0]))], "/prompts/correct", "prompt 1: 2, expected -1, 0 or 1"),
    ("task", [("/prompts/steered", np.zeros(2, dtype=np.int64))], "/prompts/steered", "shape (2,), expected [prompt=3]"),
    ("task", [("/prompts/hits", None)], "/prompts/hits", "missing dataset"),
    ("task", [("/prompts/id", np.arange(3))], "/prompts/id", "expected strings"),
    ("task", [("/prompts/category_counts", np.zeros((3, 2), dtype=np.int64))], "/prompts/category_counts", "expected [prompt=3, category=3]"),
    ("task", [("/tokens/offsets", np.array([0, 5, 5, 5]))], "/tokens/offsets", "runs from 0 to 5, expected 0 to N"),
    ("task", [("/tokens/offsets", np.array([0, 99, 2, 2]))], "/tokens/offsets", "prompt 1: offset 2 is below 99 (offsets must not decrease)"),
    ("task", [("/tokens/kind", np.array([0, 7], dtype=np.int32))], "/tokens/kind", "token 1: 7, expected 0..5"),
    ("task", [("/tokens/category", np.array([-1, 3], dtype=np.int32))], "/tokens/category", "token 1: 3, expected -1 or a category in [0, C = 3)"),
    ("task", [("/tokens/coef", np.zeros(2, dtype=np.int32))], "/tokens/coef", "expected float"),
    ("task", [("/tokens/thinking", np.zeros(3, dtype=np.int32))], "/tokens/thinking", "shape (3,), expected [token=2]"),
    ("task", [("@role", "other")], "attribute 'point'", "role 'hybrid', but the file's attribute 'role' is 'other'"),
    ("task", [("@rule", ""), ("@point", json.dumps({"task": 2, "key": hybrid_key(*ROWS[TRACE_ROW][:5]), "dataset": "d1", "role": "hybrid",
                                                   "rule": "", "ablation": "none", "layer": 3, "seed": 0}))],
     "attribute 'role'", "a hybrid row needs a rule and an ablation"),
    ("task", [("@point", json.dumps({"task": 2}))], "attribute 'point'", "missing key 'key'"),
    ("task", [("@randpos_fraction", "abc")], "attribute 'randpos_fraction'", "'abc', expected a number"),
    ("task", [("@metrics", "[1]")], "attribute 'metrics'", "is not a JSON object"),
    ("summary", [("@format", "thinksteer.hybrid_task")], "attribute 'format'", "expected 'thinksteer.hybrid_summary'"),
    ("summary", [("/role", [r[1] for r in ROWS[:3]] + ["pca"] + [r[1] for r in ROWS[4:]])], "/role: row 3", "role 'pca', expected base"),
    ("summary", [("/rule", ["fixed"] + [r[2] for r in ROWS[1:]])], "/role: row 0", "a base row has no rule or ablation"),
    ("summary", [("/key", [hybrid_key(*ROWS[0][:5])] * len(ROWS))], "/key", "row 1: "),
    ("summary", [("/accuracy", np.full(2, 0.5))], "/accuracy", f"shape (2,), expected [row={len(ROWS)}]"),
    ("summary", [("/accuracy_hi", np.full(len(ROWS), 1.5))], "/accuracy_hi", "row 0: 1.5, expected a share in [0, 1]"),
    ("summary", [("/category_usage", np.zeros((len(ROWS), 2)))], "/category_usage", f"expected [row={len(ROWS)}, category=3]"),
    ("summary", [("@ci", "x")], "attribute 'ci'", "'x', expected a number"),
    ("summary", [("@ci", "95")], "attribute 'ci'", "expected a level in (0, 1)"),
]


@pytest.mark.parametrize("which,changes,field,problem", MALFORMED, ids=[f"{m[0]}-{'+'.join(c[0] for c in m[1])}" for m in MALFORMED])
def test_malformed_files_name_file_and_field(tmp_path, which, changes, field, problem):
    if which == "task":   # a task with 2 tokens (prompt 1 of the trace row's layout, without the trace)
        path, _ = write_task(tmp_path, ROWS[TRACE_ROW], 2)
        with h5py.File(path, "a") as f:
            for name, v in (("/tokens/offsets", np.array([0, 0, 2, 2], dtype=np.int64)), ("/tokens/kind", np.zeros(2, dtype=np.int32)),
                            ("/tokens/category", np.full(2, -1, dtype=np.int32)), ("/tokens/coef", np.zeros(2, dtype=np.float32))):
                del f[name]
                f[name] = v
            for name in ("id", "base", "thinking"):
                del f[f"/tokens/{name}"]
                f[f"/tokens/{name}"] = np.array([5, 6], dtype=np.int32)
        read_hybrid_task(path)   # well formed before the change
        read = read_hybrid_task
    else:
        path = write_summary(tmp_path)
        read = read_hybrid_summary
    for name, value in changes:
        replace(path, name, value)
    with pytest.raises(SchemaError) as e:
        read(path)
    assert str(e.value).startswith(f"{path}: {field}: ") and problem in str(e.value), str(e.value)


def test_task_filed_under_another_key(tmp_path):
    path, key = write_task(tmp_path, ROWS[0], 0)
    other = hybrid_key(*ROWS[1][:5])
    path.rename(path.with_name(f"{other}.h5"))
    with pytest.raises(SchemaError, match=rf"{other}\.h5: attribute 'key': '{key}', but the file is filed under '{other}'"):
        read_hybrid_task(tmp_path, other)


# ---- figures and the command -----------------------------------------------------------------------
def table_rows(out):
    """[cells] of the markdown table's body rows in `out`."""
    rows = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 11 and cells[0] in ("d1", "d2"):
            rows.append(cells)
    return rows


def test_hybrid_command_prints_the_table_and_draws_three_figures(tmp_path, capsys):
    pytest.importorskip("tokenizers")
    from thinksteer_analysis.cli import main
    run = write_run(tmp_path)
    assert main(["hybrid", str(run)]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert len(rows) == len(ROWS), out
    assert rows[0] == ["d1", "base", "-", "-", "-", "0", "0.400 [0.200, 0.600]", "-", "-", "-", "60.0"]
    assert rows[2] == ["d1", "hybrid", "fixed", "none", "3", "0", "0.600 [0.400, 0.800]", "0.400 [0.100, 0.700]", "-", "0.250", "70.5"]
    assert rows[4][3] == "randcat" and rows[4][7:] == ["0.100 [-0.200, 0.400]", "0.150 [0.050, 0.250]", "0.250", "65.0"]
    assert "95% percentile bootstrap over prompts (200 resamples)" in out
    figures = run / "figures"
    for name in ("hybrid_accuracy.png", "hybrid_gap.png", "hybrid_trace.png"):
        assert f"wrote {figures / name}" in out
    check_png(figures / "hybrid_accuracy.png", (680, 800))   # a row of 3.2 in per dataset (+0.4 in title), 8 in wide
    check_png(figures / "hybrid_gap.png", (680, 800))
    check_png(figures / "hybrid_trace.png", (258, 800))      # 0.75 + 8 lines x 0.16 + 0.55 in high, 8 in wide


def test_trace_options_and_figures_command(tmp_path, capsys):
    pytest.importorskip("tokenizers")
    from thinksteer_analysis.cli import main
    from thinksteer_analysis.figures import make_figures
    run = write_run(tmp_path)
    tok = tmp_path / "models" / "tok"
    moved = tmp_path / "elsewhere"
    tok.rename(moved)                      # the run's base model no longer has it: the trace is skipped with a note
    notes = []
    written = make_figures(run, tmp_path / "figs", log=notes.append)
    assert sorted(p.name for p in written) == ["hybrid_accuracy.png", "hybrid_gap.png"]
    assert any("no tokenizer.json found" in n for n in notes), notes
    assert main(["hybrid", str(run), "--out", str(tmp_path / "o"), "--prompt", "1", "--tokenizer", str(moved)]) == 0
    assert f"wrote {tmp_path / 'o' / 'hybrid_trace.png'}" in capsys.readouterr().out
    assert main(["hybrid", str(run), "--prompt", "2", "--tokenizer", str(moved / "tokenizer.json"), "--out", str(tmp_path / "o2")]) == 0
    check_png(tmp_path / "o2" / "hybrid_trace.png", (258, 800))   # no tokens for prompt 2: a note in the figure
    assert main(["hybrid", str(run), "--prompt", "3", "--tokenizer", str(moved)]) == 1
    assert "--prompt 3" in capsys.readouterr().err
    assert main(["hybrid", str(run), "--tokenizer", str(tmp_path / "none")]) == 1
    assert "no such tokenizer file" in capsys.readouterr().err


def test_hybrid_command_on_an_empty_and_a_malformed_run(tmp_path, capsys):
    from thinksteer_analysis.cli import main
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["hybrid", str(empty)]) == 1
    assert "summary.h5: no such file" in capsys.readouterr().err
    run = write_run(tmp_path, tokens=False)
    bad = run / "hybrid" / "tasks" / f"{hybrid_key(*ROWS[TRACE_ROW][:5])}.h5"
    replace(bad, "/prompts/correct", np.array([1, 5, 0]))
    assert main(["hybrid", str(run)]) == 1
    assert f"{bad}: /prompts/correct: prompt 1: 5" in capsys.readouterr().err
