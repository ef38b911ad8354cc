"""analysis/thinksteer_analysis: one module per run artifact. Each reader on a fixture written here with
h5py (or as JSON lines) to the layout the C++ writer produces (src/stages/generate.cpp, annotate.cpp,
collect.cpp, src/io/vectors.cpp, src/steer/sweep_plan.cpp, src/stages/sweep.cpp): the planted values come
back, and a file that breaks the layout fails with a SchemaError naming the file and the dataset,
attribute or line. Also: the artifacts' paths and identities, and the installed console command."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

try:
    import thinksteer_analysis as ta  # installed into the project venv, editable, by scripts/setup.sh
except ImportError as e:
    raise ImportError(f"thinksteer_analysis is not installed for {sys.executable}: run scripts/setup.sh") from e
from analysis_checks import write_sweep_manifest, write_sweep_task  # noqa: E402
from thinksteer_analysis.schema import SchemaError

STR = h5py.string_dtype("utf-8")


def strings(f, name, values):
    f.create_dataset(name, data=list(values), dtype=STR)


def identity(f, fmt, stage):
    """Root attributes of write_h5_provenance (src/stages/common.cpp)."""
    f.attrs["format"] = fmt
    f.attrs["schema_version"] = np.int64(1)
    f.attrs["stage"] = stage
    f.attrs["provenance"] = json.dumps({"stage": stage, "config": "[run]\ndir = x\n"})


def done(path):
    Path(f"{path}.done").write_text("0" * 64)


# ---- generations ----------------------------------------------------------------------------------------
G_NEW = [3, 0, 2]
G_PROMPT = [2, 4, 1]


def write_generations(run):
    d = run / "generate"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "generations.h5"
    N = len(G_NEW)
    with h5py.File(path, "w") as f:
        for name in ("id", "user_prompt", "prompt_text", "reference_answer", "text", "thinking", "answer_text"):
            strings(f, f"/prompts/{name}", [f"{name}-{i}" for i in range(N)])
        strings(f, "/prompts/finish_reason", ["eos", "length", "stop_string"])
        f["/prompts/n_prompt_tokens"] = np.array(G_PROMPT, dtype=np.int64)
        f["/prompts/n_new_tokens"] = np.array(G_NEW, dtype=np.int64)
        f["/prompts/n_thinking_tokens"] = np.array([2, 0, 2], dtype=np.int64)
        f["/prompts/thinking_closed"] = np.array([1, 0, 0], dtype=np.uint8)
        f["/prompts/token_offset"] = np.array([0, 3, 3], dtype=np.int64)
        f["/prompts/prompt_token_offset"] = np.array([0, 2, 6], dtype=np.int64)
        f["/tokens/id"] = np.array([10, 11, 12, 20, 21], dtype=np.int32)
        f["/tokens/prompt_index"] = np.array([0, 0, 0, 2, 2], dtype=np.int64)
        f["/prompt_tokens/id"] = np.arange(sum(G_PROMPT), dtype=np.int32)
        identity(f, "thinksteer.generations", "generate")
    done(path)
    rows = [{"id": f"id-{i}", "prompt": "p", "prompt_text": "pt", "prompt_tokens": G_PROMPT[i], "token_ids": [1] * G_NEW[i], "text": "t",
             "thinking": "th", "answer_text": "a", "thinking_closed": i == 0, "n_new_tokens": G_NEW[i], "n_thinking_tokens": 0,
             "finish_reason": "eos", "reference_answer": "1"} for i in range(N)]
    (d / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_generations(tmp_path):
    path = write_generations(tmp_path)
    g = ta.load_generations(tmp_path)
    assert len(g) == 3 and g.id.tolist() == ["id-0", "id-1", "id-2"] and g.thinking[2] == "thinking-2"
    assert g.tokens(0).tolist() == [10, 11, 12] and g.tokens(1).tolist() == [] and g.tokens(2).tolist() == [20, 21]
    assert g.prompt_tokens(1).tolist() == [2, 3, 4, 5] and g.thinking_closed.tolist() == [True, False, False]
    assert g.trace_ids()[str(g.id[1])] == g.prompt_tokens(1).tolist() + g.tokens(1).tolist()
    assert g.provenance["stage"] == "generate" and ta.load_generations(path).path == path
    s = ta.summarize_traces(ta.load_traces(tmp_path))
    assert s["traces"] == 3 and s["finish_reasons"] == {"eos": 3} and s["new_tokens_mean"] == pytest.approx(5 / 3)


def test_generations_jsonl_row_without_a_key_is_named(tmp_path):
    write_generations(tmp_path)
    jsonl = tmp_path / "generate" / "generations.jsonl"
    lines = jsonl.read_text().splitlines()
    row = json.loads(lines[1])
    del row["finish_reason"]
    jsonl.write_text("\n".join([lines[0], json.dumps(row), lines[2]]) + "\n")
    with pytest.raises(SchemaError, match=r"generations\.jsonl: line 2: missing key 'finish_reason'"):
        ta.load_traces(tmp_path)


# ---- spans --------------------------------------------------------------------------------------------
def write_spans(run, tokens=True):
    d = run / "annotate"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "spans.h5"
    with h5py.File(path, "w") as f:
        strings(f, "/labels", ["initializing", "deduction", "backtracking"])
        strings(f, "/traces/id", ["a", "b"])
        f["/spans/trace"] = np.array([0, 0, 1], dtype=np.int64)
        f["/spans/label"] = np.array([0, 2, 1], dtype=np.int32)
        f["/spans/char_begin"] = np.array([0, 10, 0], dtype=np.int64)
        f["/spans/char_end"] = np.array([10, 25, 7], dtype=np.int64)
        f["/traces/span_offset"] = np.array([0, 2], dtype=np.int64)
        f["/traces/n_spans"] = np.array([2, 1], dtype=np.int64)
        for name in ("part_begin", "part_end", "n_sentences", "n_problems"):
            f[f"/traces/{name}"] = np.array([0, 1], dtype=np.int64)
        if tokens:
            f["/spans/token_begin"] = np.array([5, 8, -1], dtype=np.int64)
            f["/spans/token_end"] = np.array([8, 12, -1], dtype=np.int64)
            f["/traces/n_tokens"] = np.array([12, 9], dtype=np.int64)
            f["/traces/n_prompt_tokens"] = np.array([5, 4], dtype=np.int64)
        identity(f, "thinksteer.spans", "annotate")
        f.attrs["annotator"], f.attrs["part"] = "lexicon", "thinking"
        f.attrs["token_sequence"] = "generation" if tokens else "none"
    done(path)
    return path


def test_spans(tmp_path):
    write_spans(tmp_path)
    s = ta.load_spans(tmp_path)
    assert s.labels == ["initializing", "deduction", "backtracking"] and len(s) == 3
    assert list(s.rows(0)) == [0, 1] and list(s.rows(1)) == [2] and s.labels[s.label[1]] == "backtracking"
    assert s.token_end.tolist() == [8, 12, -1] and s.annotator == "lexicon" and s.token_sequence == "generation"
    without = ta.load_spans(write_spans(tmp_path / "plain", tokens=False))
    assert without.token_begin is None and without.n_tokens is None


# ---- activations ----------------------------------------------------------------------------------------
def write_activations(run, dtype="float32"):
    d = run / "collect"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "activations.h5"
    n_tokens, R = [3, 2], 5
    x = np.arange(R * 4, dtype=np.float32).reshape(R, 4) / 8
    with h5py.File(path, "w") as f:
        if dtype == "bfloat16":
            ds = f.create_dataset("/activations/blocks.0.hook_resid_post", data=(x.view(np.uint32) >> 16).astype(np.uint16))
            ds.attrs["encoding"] = "bfloat16"
        else:
            ds = f.create_dataset("/activations/blocks.0.hook_resid_post", data=x.astype(dtype))
        ds.attrs.update({"hook": "blocks.0.hook_resid_post", "layer": "0", "positions": "all", "dtype": dtype})
        z = f.create_dataset("/activations/blocks.0.attn.hook_z", data=np.zeros((R, 2, 2), dtype=np.float32))
        z.attrs.update({"hook": "blocks.0.attn.hook_z", "layer": "0", "positions": "all", "dtype": "float32"})
        f["/activations/sequence"] = np.array([0, 0, 0, 1, 1], dtype=np.int64)
        f["/activations/token_begin"] = np.array([0, 1, 2, 0, 1], dtype=np.int64)
        f["/activations/token_end"] = np.array([1, 2, 3, 1, 2], dtype=np.int64)
        f["/activations"].attrs.update({"positions": "all", "source": "prompts"})
        strings(f, "/sequences/id", ["s0", "s1"])
        strings(f, "/sequences/text", ["abc", "de"])
        f["/sequences/n_tokens"] = np.array(n_tokens, dtype=np.int64)
        f["/sequences/n_prompt_tokens"] = np.array(n_tokens, dtype=np.int64)
        f["/sequences/token_offset"] = np.array([0, 3], dtype=np.int64)
        f["/sequences/row_offset"] = np.array([0, 3], dtype=np.int64)
        f["/sequences/n_rows"] = np.array(n_tokens, dtype=np.int64)
        f["/tokens/id"] = np.array([7, 8, 9, 7, 8], dtype=np.int32)
        f["/tokens/sequence"] = np.array([0, 0, 0, 1, 1], dtype=np.int64)
        f["/tokens/position"] = np.array([0, 1, 2, 0, 1], dtype=np.int64)
        f["/tokens/char_begin"] = np.array([0, 1, 2, 0, 1], dtype=np.int64)
        f["/tokens/char_end"] = np.array([1, 2, 3, 1, 2], dtype=np.int64)
        identity(f, "thinksteer.activations", "collect")
    done(path)
    return path, x


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_activations(tmp_path, dtype):
    _, x = write_activations(tmp_path, dtype)
    np.testing.assert_array_equal(ta.load_activations(tmp_path, "blocks.0.hook_resid_post"), x)   # exact in all three
    ix = ta.load_activation_index(tmp_path)
    assert sorted(ix.hooks) == ["blocks.0.attn.hook_z", "blocks.0.hook_resid_post"] and len(ix) == 5
    assert ix.hooks["blocks.0.hook_resid_post"].dtype == dtype and ix.hooks["blocks.0.attn.hook_z"].shape == (5, 2, 2)
    assert ix.sequence_text.tolist() == ["abc", "de"] and ix.positions == "all" and ix.row_label is None
    with pytest.raises(KeyError, match="no hook 'blocks.9.hook_resid_post'"):
        ta.load_activations(tmp_path, "blocks.9.hook_resid_post")


def test_activations_need_the_done_marker(tmp_path):
    path, _ = write_activations(tmp_path)
    Path(f"{path}.done").unlink()
    with pytest.raises(FileNotFoundError, match="collect stage has not finished"):
        ta.load_activation_index(tmp_path)


# ---- vectors ------------------------------------------------------------------------------------------
def write_vectors(run):
    d = run / "vectors"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "vectors.h5"
    v = np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 4)
    v[1, 0] = 0.0
    with h5py.File(path, "w") as f:
        f["/vectors"] = v
        strings(f, "/names", ["backtracking", "mean.backtracking", "mean.overall"])
        f["/layers"] = np.array([1, 3], dtype=np.int64)
        f["/counts"] = np.array([[5, 5], [0, 5], [9, 9]], dtype=np.int64)
        f.attrs.update({"format": "thinksteer.vectors", "format_version": np.int64(1), "hook_measured": "blocks.{l}.hook_resid_post",
                        "hook_applied": "blocks.{l}.hook_resid_post", "architecture": "qwen2", "model": "/m", "provenance": "{}"})
    done(path)
    return path, v


def test_vectors(tmp_path):
    _, v = write_vectors(tmp_path)
    s = ta.load_vectors(tmp_path)
    assert s.names[0] == "backtracking" and s.layers.tolist() == [1, 3] and s.d_model == 4
    np.testing.assert_array_equal(s.vector("mean.overall", 3), v[2, 1])
    assert s.missing("mean.backtracking") == [1] and s.missing("backtracking") == [] and s.hook_applied == "blocks.{l}.hook_resid_post"
    with pytest.raises(KeyError, match="no layer 2"):
        s.vector("backtracking", 2)


# ---- sweep manifest and task ----------------------------------------------------------------------------
MANIFEST = [
    {"task": 0, "key": "00000000000000aa", "dataset": "builtin:toy-test", "kind": "baseline", "vector": "", "layers": [], "hook": "",
     "coef": 0.0, "op": "", "positions": "", "seed": 0, "layer_scale": 1.0},
    {"task": 1, "key": "00000000000000bb", "dataset": "builtin:toy-test", "kind": "vector", "vector": "backtracking", "layers": [1, 2],
     "hook": "hook_resid_post", "coef": 3.0, "op": "add", "positions": "generated", "seed": 0, "layer_scale": 1.0},
]


def write_manifest(run, rows=MANIFEST):
    return write_sweep_manifest(run, rows)


def write_task(run, row):
    return write_sweep_task(run, row, [1, 0, -1], [10, 20, 30], closed=[1, 1, 0], new_tokens=[12, 25, 30],
                            label_tokens=np.arange(6).reshape(3, 2), label_spans=np.ones((3, 2)), answer=["1", "2", ""])


def test_sweep_manifest_and_tasks(tmp_path):
    write_manifest(tmp_path)
    points = ta.load_sweep_manifest(tmp_path)
    assert [p.kind for p in points] == ["baseline", "vector"] and points[1].layers == (1, 2) and points[1].layers_text == "1+2"
    assert points[1].hook_names() == ["blocks.1.hook_resid_post", "blocks.2.hook_resid_post"] and points[0].layers_text == ""
    path = write_task(tmp_path, MANIFEST[1])
    t = ta.load_sweep_task(tmp_path, "00000000000000bb")
    assert t.point == points[1] and t.labels == ["deduction", "backtracking"] and t.accuracy() == pytest.approx(0.5)
    assert t.label_tokens[:, 1].tolist() == [1, 3, 5] and t.closed.tolist() == [True, True, False]
    assert ta.load_sweep_task(path).key == "00000000000000bb"
    from thinksteer_analysis.sweep_task import finished_tasks
    assert finished_tasks(tmp_path) == [(points[1], path)]


@pytest.mark.parametrize("change,expect", [
    (lambda rows: rows[1].pop("coef"), r"manifest\.jsonl: line 2: missing key 'coef'"),
    (lambda rows: rows[1].update(kind="steer"), r"manifest\.jsonl: line 2: key 'kind' must be baseline, vector, random"),
    (lambda rows: rows[1].update(layers=[-1]), r"manifest\.jsonl: line 2: key 'layers' must hold non-negative integers"),
    (lambda rows: rows[1].update(task=5), r"manifest\.jsonl: line 2: task 5: tasks must be numbered 0, 1, \.\.\. in order"),
    (lambda rows: rows[1].update(seed="0"), r"manifest\.jsonl: line 2: key 'seed' is str '0', expected int"),
])
def test_bad_manifest_row_is_named(tmp_path, change, expect):
    rows = json.loads(json.dumps(MANIFEST))
    change(rows)
    write_manifest(tmp_path, rows)
    with pytest.raises(SchemaError, match=expect):
        ta.load_sweep_manifest(tmp_path)


def test_task_filed_under_another_key_is_named(tmp_path):
    path = write_task(tmp_path, MANIFEST[1])
    shutil.copy(path, path.with_name("00000000000000cc.h5"))
    with pytest.raises(SchemaError, match=r"00000000000000cc\.h5: attribute 'key': '00000000000000bb', but the file is filed under"):
        ta.load_sweep_task(tmp_path, "00000000000000cc")


# ---- every HDF5 artifact: identity and malformed datasets name the file and the dataset ------------------
WRITERS = {
    "generations": (write_generations, ta.load_generations),
    "spans": (write_spans, ta.load_spans),
    "activations": (lambda run: write_activations(run)[0], ta.load_activation_index),
    "vectors": (lambda run: write_vectors(run)[0], ta.load_vectors),
    "sweep_task": (lambda run: write_task(run, MANIFEST[1]), lambda p: ta.load_sweep_task(p)),
}


def corrupt(path, name, replacement=None):
    """Deletes dataset `name`, or replaces it keeping its attributes (a hook dataset stays a hook)."""
    with h5py.File(path, "a") as f:
        attrs = dict(f[name].attrs)
        del f[name]
        if replacement is not None:
            f[name] = replacement
            f[name].attrs.update(attrs)


@pytest.mark.parametrize("which,name,replacement,expect", [
    ("generations", "/prompts/thinking", None, "missing dataset"),
    ("generations", "/tokens/prompt_index", np.zeros(4, dtype=np.int64), "shape (4,)"),
    ("generations", "/prompts/token_offset", np.array([0, 3, 4], dtype=np.int64), "row 2: offset 4, expected 3"),
    ("generations", "/prompts/finish_reason", np.zeros(3, dtype=np.int64), "expected strings"),
    ("spans", "/spans/label", np.array([0, 3, 1], dtype=np.int32), "row 1: 3 is not an index into /labels"),
    ("spans", "/spans/trace", np.array([0, 1, 1], dtype=np.int64), "row 1: 1 is not the trace"),
    ("spans", "/spans/token_end", np.array([8, 13, -1], dtype=np.int64), "row 1: 13 is past the trace's 12 tokens"),
    ("spans", "/traces/n_tokens", None, "missing dataset"),
    ("activations", "/sequences/row_offset", np.array([0, 2], dtype=np.int64), "row 1: offset 2, expected 3"),
    ("activations", "/activations/blocks.0.hook_resid_post", np.zeros((4, 4), dtype=np.float32), "shape (4, 4)"),
    ("activations", "/tokens/char_end", None, "missing dataset"),
    ("vectors", "/layers", np.array([3, 1], dtype=np.int64), "strictly ascending"),
    ("vectors", "/names", np.array([b"a", b"b"], dtype=object), "shape (2,)"),
    ("vectors", "/vectors", np.full((3, 2, 4), np.nan, dtype=np.float32), "not finite"),
    ("sweep_task", "/prompts/label_tokens", np.zeros((3, 3), dtype=np.int64), "shape (3, 3)"),
    ("sweep_task", "/prompts/correct", np.array([1, 2, 0], dtype=np.int64), "row 1: 2 is not 1, 0 or -1"),
])
def test_malformed_dataset_is_named(tmp_path, which, name, replacement, expect):
    write, load = WRITERS[which]
    path = write(tmp_path)
    if replacement is not None and replacement.dtype == object:
        replacement = replacement.astype(STR)
    corrupt(path, name, replacement)
    with pytest.raises(SchemaError) as e:
        load(path if which == "sweep_task" else tmp_path)
    assert str(path) in str(e.value) and name in str(e.value) and expect in str(e.value), str(e.value)


@pytest.mark.parametrize("which", sorted(WRITERS))
def test_identity_is_checked(tmp_path, which):
    write, load = WRITERS[which]
    path = write(tmp_path)
    target = path if which == "sweep_task" else tmp_path
    version = "format_version" if which == "vectors" else "schema_version"
    known = ta.ARTIFACTS[which].format_version if which == "vectors" else ta.ARTIFACTS[which].schema_version
    with h5py.File(path, "a") as f:
        f.attrs[version] = np.int64(known + 1)
    with pytest.raises(SchemaError, match=rf"{path.name}: attribute '{version}': {known + 1} of thinksteer\.\w+ is not the version this reader knows \({known}\)"):
        load(target)
    with h5py.File(path, "a") as f:
        f.attrs["format"] = "thinksteer.other"
    with pytest.raises(SchemaError, match=rf"{path.name}: attribute 'format': 'thinksteer.other', expected 'thinksteer\.\w+'"):
        load(target)


def test_artifact_paths_and_identities():
    """Paths and identities as the C++ writes them (src/stages/*.cpp, src/artifacts/*.h, src/io/vectors.h)."""
    got = {name: (a.relpath, a.format, a.schema_version, a.format_version) for name, a in ta.ARTIFACTS.items()}
    assert got == {
        "generations": ("generate/generations.h5", "thinksteer.generations", 1, None),
        "spans": ("annotate/spans.h5", "thinksteer.spans", 1, None),
        "activations": ("collect/activations.h5", "thinksteer.activations", 1, None),
        "attribution": ("attribute/attribution.h5", "thinksteer.attribution", 1, None),
        "vectors": ("vectors/vectors.h5", "thinksteer.vectors", None, 1),
        "sweep_manifest": ("sweep/manifest.jsonl", None, None, None),
        "sweep_task": ("sweep/tasks/{key}.h5", "thinksteer.sweep_task", 2, None),
        "sweep_summary": ("sweep/summary.h5", "thinksteer.sweep_summary", 1, 1),
        "sentences": ("sentences/sentences.h5", "thinksteer.sentences", 1, None),
        "taxonomy_task": ("taxonomy/tasks/{key}.h5", "thinksteer.taxonomy_task", 1, None),
        "taxonomy_summary": ("taxonomy/summary.h5", "thinksteer.taxonomy_summary", 1, None),
        "basevec_task": ("basevec/tasks/{key}.h5", "thinksteer.basevec_task", 1, None),
        "basevec_summary": ("basevec/summary.h5", "thinksteer.basevec_summary", 1, None),
        "titles": ("titles/{key}/titles.json", "thinksteer.titles", 1, None),     # JSON: keys format and version
    }
    assert ta.SWEEP_TASK.path("/r", key="abc") == Path("/r/sweep/tasks/abc.h5")
    assert ta.TAXONOMY_TASK.path("/r", key="abc") == Path("/r/taxonomy/tasks/abc.h5") and ta.TITLES.path("/r", key="abc") == Path("/r/titles/abc/titles.json")
    assert ta.SPANS.path("/r/x/spans.h5") == Path("/r/x/spans.h5")


def test_console_command_is_installed(tmp_path):
    """scripts/setup.sh installs the package (editable) with its console command beside the venv's python."""
    exe = Path(sys.executable).with_name("thinksteer-analysis")
    assert exe.exists(), f"{exe}: not installed (run scripts/setup.sh)"
    env = dict(os.environ, MPLBACKEND="Agg")
    for cmd in ([str(exe)], [sys.executable, "-m", "thinksteer_analysis"]):
        p = subprocess.run([*cmd, "summary", str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert p.returncode == 1 and "summary.h5: no such file" in p.stderr, p.stderr
        p = subprocess.run([*cmd, "--help"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert p.returncode == 0 and "figures" in p.stdout and "acceptance" in p.stdout
