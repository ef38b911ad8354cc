"""analysis/thinksteer_analysis: the taxonomy's readers (sentences, taxonomy, taxonomy_figures) on fixtures
that taxonomy_fixtures.py writes with h5py / json to the layouts the C++ writers produce:
  <run>/sentences/sentences.h5            thinksteer.sentences schema_version 1
  <run>/taxonomy/tasks/<key>.h5 (+.done)  thinksteer.taxonomy_task schema_version 1
  <run>/taxonomy/summary.h5               thinksteer.taxonomy_summary schema_version 1
  <run>/titles/<key>/titles.json          "format": "thinksteer.titles", "version": 1
The planted values come back; a file that breaks the layout fails with a SchemaError naming the file and
the dataset, attribute or key; `figures RUN_DIR` draws the taxonomy's figures and titles tables when the
run has them (and only then)."""
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

try:
    import thinksteer_analysis as ta  # installed into the project venv, editable, by scripts/setup.sh
except ImportError as e:
    raise ImportError(f"thinksteer_analysis is not installed for {sys.executable}: run scripts/setup.sh") from e
from analysis_checks import check_png, replace  # noqa: E402
from thinksteer_analysis.schema import SchemaError

from taxonomy_fixtures import (ASSIGN, D, KS, LABELS, LONG, METRICS_REF, N, N_TRACES, STR, TEXTS, layer_arrays, planted_groups,
                               point_key, titles_object, write_sentences, write_summary, write_task, write_titles)


# ---- readers ---------------------------------------------------------------------------------------
def test_sentences_round_trip(tmp_path):
    path = write_sentences(tmp_path)
    s = ta.read_sentences(tmp_path)
    assert s.path == path and len(s) == N and s.layers == [2, 5] and s.d_model == D and s.n_traces == N_TRACES and s.n_mean_traces == N_TRACES
    assert s.text.tolist() == TEXTS and s.labels.tolist() == LABELS and s.trace_id[3] == "t1" and s.trace.tolist()[-1] == 2
    assert s.hook == "blocks.{l}.hook_resid_post" and s.model_path == "models/toy" and s.provenance["stage"] == "sentences"
    vectors, norm, mean = layer_arrays(5)
    np.testing.assert_array_equal(s.vectors(5), vectors)
    np.testing.assert_array_equal(s.vectors(5, rows=slice(2, 4)), vectors[2:4])
    np.testing.assert_allclose(s.raw(5), mean + norm[:, None] * vectors, rtol=1e-6)
    with pytest.raises(KeyError, match="no layer 3"):
        s.vectors(3)
    assert ta.read_sentences(write_sentences(tmp_path / "plain", labels=False)).labels is None


def test_taxonomy_task_round_trip(tmp_path):
    from thinksteer_analysis.taxonomy import finished_taxonomy_tasks
    path, key = write_task(tmp_path)
    t = ta.read_taxonomy_task(tmp_path, key)
    assert (t.task, t.key, t.layer, t.k, t.method, t.seed, t.n, t.d) == (0, key, 5, 3, "sae", 0, N, D)
    assert t.assign.tolist() == ASSIGN.tolist() and t.sizes.tolist() == [3, 3, 2] and t.loss.shape == (3,)
    assert sorted(t.sae) == ["b_dec", "b_enc", "w_dec", "w_enc"] and t.sae["b_dec"].shape == (D,)
    assert t.metric("fvu") == 0.25 and np.isnan(t.metric("nmi")) and np.isnan(t.metric("absent")) and t.config_sha256 == "c" * 64
    km_path, km_key = write_task(tmp_path, k=2, method="kmeans", task=1)
    km = ta.read_taxonomy_task(km_path)
    assert km.sae is None and km.method == "kmeans" and km.sizes.tolist() == [5, 3]
    Path(f"{km_path}.done").unlink()
    assert finished_taxonomy_tasks(tmp_path) == [path]


def test_taxonomy_summary_round_trip(tmp_path):
    write_summary(tmp_path)
    s = ta.read_taxonomy_summary(tmp_path)
    groups = planted_groups()
    assert len(s) == len(groups) == 12 and s.metrics == METRICS_REF
    g = s.selected
    assert g is not None and (s.layer[g], s.k[g], s.method[g]) == (5, 4, "sae") and s.score[g] == pytest.approx(0.9)
    row = s.group(g)
    assert row["selected"] and row["nmi"] == pytest.approx(0.9) and row["nmi_lo"] == pytest.approx(0.88) and row["n_seeds"] == 3
    one = s.groups()[[i for i, x in enumerate(groups) if x[3] == 1][0]]
    assert one["n_seeds"] == 1 and np.isnan(one["fvu_lo"]) and np.isnan(one["fvu_hi"]) and np.isnan(one["score"])
    series = s.series()
    assert [key for key, _ in series] == [(2, "kmeans"), (2, "sae"), (5, "kmeans"), (5, "sae")]
    assert all(s.k[rows].tolist() == list(KS) for _, rows in series)
    assert "NMI" in s.rule and not s.partial and s.n_tasks == 60
    write_summary(tmp_path / "none", selected=False)
    assert ta.read_taxonomy_summary(tmp_path / "none").selected is None


def test_titles_round_trip(tmp_path):
    from thinksteer_analysis.taxonomy import titles_keys
    key = point_key(5, 3, "sae", 0)
    path = write_titles(tmp_path, key)
    t = ta.read_titles(tmp_path, key)
    assert t.path == path and (t.key, t.layer, t.k, t.method, t.seed, t.source, t.hook) == (key, 5, 3, "sae", 0, "offline", "blocks.5.hook_resid_post")
    assert [c.index for c in t.clusters] == [0, 1, 2] and t.clusters[1].title == "Title 1 | pipes" and t.clusters[0].examples[0] == LONG
    assert t.clusters[2].size == 2 and t.clusters[0].words == ("wait", "check") and t.clusters[0].random == ("r",)
    partial = tmp_path / "titles" / f"{key}.partial" / "titles.json"     # what `thinksteer titles` is still writing
    partial.parent.mkdir()
    partial.write_text("{")
    assert ta.read_titles(path).key == key and titles_keys(tmp_path) == [key]
    obj = titles_object(key)
    del obj["hook"], obj["clusters"][0]["random"]                          # optional here (the C++ writes both)
    t = ta.read_titles(write_titles(tmp_path / "lean", key, obj))
    assert t.hook == "" and t.clusters[0].random == () and t.clusters[1].random == ("r",)


# ---- malformed files name the file and the field ------------------------------------------------------
def _task(run):
    return write_task(run)[0]


H5 = {  # which -> (writer returning the path, reader taking the path)
    "sentences": (write_sentences, ta.read_sentences),
    "taxonomy_task": (_task, lambda p: ta.read_taxonomy_task(p)),
    "taxonomy_summary": (write_summary, ta.read_taxonomy_summary),
}



@pytest.mark.parametrize("which,name,value,field,expect", [
    ("sentences", "/layer_5/vectors", np.zeros((N, D + 1), dtype=np.float32), "/layer_5/vectors", "shape (8, 5), expected [n_sentences=8, d_model=4]"),
    ("sentences", "/layer_2/mean", None, "/layer_2/mean", "missing dataset"),
    ("sentences", "/sentences/text", ["a"] * (N - 1), "/sentences/text", "shape (7,)"),
    ("sentences", "/sentences/label", np.zeros(N, dtype=np.int64), "/sentences/label", "expected strings"),
    ("sentences", "/sentences/trace", np.array([0, 0, 0, 1, 1, 2, 2, 3], dtype=np.int64), "/sentences/trace", "row 7: 3 outside [0, n_traces = 3)"),
    ("sentences", "/sentences/token_end", np.zeros(N, dtype=np.int64), "/sentences/token_end", "row 0: [5, 0) is not a range"),
    ("sentences", "@layers", np.array([5, 2], dtype=np.int64), "attribute 'layers'", "ascending order"),
    ("sentences", "@d_model", "four", "attribute 'd_model'", "expected an integer"),
    ("taxonomy_task", "/sizes", np.array([3, 3], dtype=np.int64), "/sizes", "shape (2,), expected [K=3]"),
    ("taxonomy_task", "/sizes", np.array([3, 2, 3], dtype=np.int64), "/sizes", "cluster 1: 2, but /assign puts 3 sentences there"),
    ("taxonomy_task", "/assign", np.array([0, 1, 3, 0, 2, 2, 1, 0], dtype=np.int64), "/assign", "row 2: cluster 3 is outside [0, K = 3)"),
    ("taxonomy_task", "/centres", np.zeros(3, dtype=np.float32), "/centres", "shape (3,), expected [K, d]"),
    ("taxonomy_task", "/sae/b_dec", None, "/sae/b_dec", "missing dataset"),
    ("taxonomy_task", "@metrics", "[1, 2]", "attribute 'metrics'", "is not a JSON object"),
    ("taxonomy_task", "@point", json.dumps({"task": 0, "key": "x", "sweep": "taxonomy", "layer": 5, "k": 3, "method": "sae", "seed": 0}),
     "attribute 'point'", "key x, but the file is task 0 key"),
    ("taxonomy_summary", "/groups/k", np.zeros(11, dtype=np.int64), "/groups/k", "shape (11,), expected [G=12]"),
    ("taxonomy_summary", "/groups/nmi_hi", None, "/groups/nmi_hi", "missing dataset"),
    ("taxonomy_summary", "/groups/method", ["sae"] * 11 + ["pca"], "/groups/method", "row 11: 'pca' is not sae or kmeans"),
    ("taxonomy_summary", "@selected_k", np.int64(16), "attribute 'selected_layer'", "layer 5, K 16, method 'sae' is not a group"),
    ("taxonomy_summary", "@rule", None, "attribute 'rule'", "missing root attribute"),
])
def test_malformed_h5_is_named(tmp_path, which, name, value, field, expect):
    write, read = H5[which]
    path = write(tmp_path)
    if name == "@rule":
        with h5py.File(path, "a") as f:
            del f.attrs["rule"]
    else:
        replace(path, name, value)
    with pytest.raises(SchemaError) as e:
        read(path)
    assert e.value.path == str(path) and e.value.name == field and expect in e.value.problem, str(e.value)


@pytest.mark.parametrize("which", sorted(H5))
def test_identity_is_checked(tmp_path, which):
    write, read = H5[which]
    path = write(tmp_path)
    replace(path, "@schema_version", np.int64(2))
    with pytest.raises(SchemaError, match=rf"{path.name}: attribute 'schema_version': 2 of thinksteer\.{which} is not the version this reader knows \(1\)"):
        read(path)
    replace(path, "@format", "thinksteer.other")
    with pytest.raises(SchemaError, match=rf"{path.name}: attribute 'format': 'thinksteer.other', expected 'thinksteer\.{which}'"):
        read(path)


def _set(obj, path, value):
    *head, last = path
    for p in head:
        obj = obj[p]
    obj[last] = value


@pytest.mark.parametrize("change,field,expect", [
    ((["format"], "thinksteer.title"), "key 'format'", "'thinksteer.title', expected 'thinksteer.titles'"),
    ((["version"], 2), "key 'version'", "2 of thinksteer.titles is not the version this reader knows (1)"),
    ((["k"], 4), "clusters", "3 clusters, but k = 4"),
    ((["method"], "pca"), "top level", "key 'method' must be sae or kmeans"),
    ((["source"], "human"), "top level", "key 'source' must be offline or llm"),
    ((["layer"], "5"), "top level", "key 'layer' is str '5', expected int"),
    ((["clusters", 1, "index"], 2), "clusters[1]", "key 'index' is 2, expected 1"),
    ((["clusters", 2, "size"], 1.5), "clusters[2]", "key 'size' is float 1.5, expected int"),
    ((["clusters", 0, "examples"], ["ok", 3]), "clusters[0]", "key 'examples' must be a list of strings"),
    ((["clusters", 0], "a title"), "clusters[0]", "not a JSON object"),
])
def test_malformed_titles_are_named(tmp_path, change, field, expect):
    key = point_key(5, 3, "sae", 0)
    obj = titles_object(key)
    _set(obj, *change)
    path = write_titles(tmp_path, key, obj)
    with pytest.raises(SchemaError) as e:
        ta.read_titles(tmp_path, key)
    assert e.value.path == str(path) and e.value.name == field and expect in e.value.problem, str(e.value)


def test_titles_filed_under_another_key_and_not_json(tmp_path):
    key, other = point_key(5, 3, "sae", 0), point_key(5, 3, "sae", 1)
    write_titles(tmp_path, other, titles_object(key))
    with pytest.raises(SchemaError, match=rf"titles\.json: top level: key 'key' is '{key}', but the file is filed under '{other}'"):
        ta.read_titles(tmp_path, other)
    (tmp_path / "titles" / other / "titles.json").write_text("{not json")
    with pytest.raises(SchemaError, match=r"titles\.json: \(file\): not JSON"):
        ta.read_titles(tmp_path, other)


# ---- figures ---------------------------------------------------------------------------------------

def test_figures_command_draws_the_taxonomy(tmp_path, capsys):
    from thinksteer_analysis.cli import main
    run = tmp_path / "run"
    write_summary(run)
    key = point_key(5, 3, "sae", 0)
    write_titles(run, key)
    assert main(["figures", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    files = sorted(Path(line).name for line in out if not line.startswith("note:"))
    assert files == ["taxonomy_metrics.png", "taxonomy_score.png", f"taxonomy_titles_{key}.md"], out
    check_png(run / "figures" / "taxonomy_score.png", (400, 800))          # 8 x 4 in
    check_png(run / "figures" / "taxonomy_metrics.png", (640, 1200))       # five metrics: 2 x 3 panels of 4 x 3.2 in
    table = (run / "figures" / f"taxonomy_titles_{key}.md").read_text().splitlines()
    assert table[0] == "# Cluster titles: layer 5, K = 3, sae, seed 0"
    assert table[4] == "| cluster | size | title | example 1 | example 2 |" and table[5] == "|---:|---:|---|---|---|"
    rows = table[6:]
    assert len(rows) == 3 and rows[0].startswith("| 0 | 3 | Title 0 \\| pipes | Wait \\| maybe I should recheck the very ")
    cells = rows[0].split(" | ")
    assert cells[3] == _cut(LONG) and len(cells[3].replace("\\|", "|")) <= 100 and cells[4] == "Short example 0. |"
    assert "A third example" not in rows[0] and rows[2].endswith("| 2 | Title 2 \\| pipes | " + _cut(LONG) + " |  |")


def _cut(text):
    return text[:99].rstrip().replace("|", "\\|") + "…"


def test_taxonomy_figures_only_when_present(tmp_path):
    from thinksteer_analysis.figures import make_figures
    notes = []
    only_titles = tmp_path / "t"
    key = point_key(5, 3, "sae", 0)
    write_titles(only_titles, key)
    assert [p.name for p in make_figures(only_titles, log=notes.append)] == [f"taxonomy_titles_{key}.md"]
    assert all(n.startswith(("note: no attribute", "note: no sweep")) for n in notes), notes   # no summary: skipped silently
    empty = tmp_path / "e"
    empty.mkdir()
    assert make_figures(empty, log=notes.append) == [] and not (empty / "figures").exists()


def test_one_seed_draws_no_error_bars_and_no_reference_two_panels(tmp_path):
    from matplotlib.container import ErrorbarContainer
    from thinksteer_analysis.taxonomy_figures import taxonomy_metrics, taxonomy_score
    write_summary(tmp_path / "one", reference=False, seeds=1)
    s = ta.read_taxonomy_summary(tmp_path / "one")
    assert s.metrics == ["fvu", "orthogonality", "dead", "epochs"] and np.isnan(s.lo["fvu"]).all()
    fig = taxonomy_metrics(s)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["FVU (fraction of variance unexplained)", "centroid orthogonality"]
    assert not any(isinstance(c, ErrorbarContainer) for ax in axes for c in ax.containers)
    assert tuple(fig.get_size_inches()) == (8.0, 3.2)
    write_summary(tmp_path / "three")
    fig = taxonomy_metrics(ta.read_taxonomy_summary(tmp_path / "three"))
    assert sum(isinstance(c, ErrorbarContainer) for c in fig.axes[0].containers) == 4   # a bar set per (layer, method)
    legend = taxonomy_score(ta.read_taxonomy_summary(tmp_path / "three")).axes[0].get_legend_handles_labels()[1]
    assert legend == ["layer 2 sae", "layer 5 sae", "selected: layer 5, K = 4 (sae)"]      # kmeans groups are not judged


def test_malformed_summary_stops_the_figures_command(tmp_path, capsys):
    from thinksteer_analysis.cli import main
    path = write_summary(tmp_path)
    replace(path, "/groups/score", np.zeros(3))
    assert main(["figures", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "/groups/score: shape (3,)" in err and not (tmp_path / "figures").exists()
