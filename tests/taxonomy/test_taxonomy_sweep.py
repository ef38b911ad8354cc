"""The taxonomy sweep (sweep.kind = taxonomy, `thinksteer taxonomy`) end to end on a sentences file with
planted clusters (planted_sentences.py: 6 categories at layer 5, noise at layer 2, reference labels).

- planted truth: over K in {4, 6, 8} x {sae, kmeans} x seeds {0, 1} at layers 2 and 5, the offline rule
  (docs/algorithms.md §B.4, "Choosing (layer, K) offline": the SAE groups' mean NMI with the reference)
  chooses layer 5; there k-means at K = 6 recovers the categories (NMI >= 0.95) and the SAE's argmax
  clusters follow them (NMI >= 0.6 at every K; its clusters are noisier, as §B.4's SAE is: top-3, no
  ReLU), at layer 2 (noise) nothing does (NMI < 0.05); summary.csv has one row per (layer, K, method)
  with seeds = 2 and a t interval. On k-means alone over K in {3, 6, 12} the rule chooses K = 6.
- data parallel: one SAE task run by 1 and by 2 ranks for a fixed number of epochs (patience larger than
  the epochs): parameters within 1e-5 (absolute), identical cluster assignments.
- memory budget: taxonomy.memory_mb = 0 (every minibatch read from the file) gives the same task file
  values, bit for bit, as holding the layer in memory.
- resume: a STOP file ends an SAE task after its first epoch with exit 75 and its state saved; the rerun
  finishes it, equal bit for bit to an uninterrupted run.
- reduce with a task missing: exit 3, missing.txt names it, no summary.
- titles and export: `thinksteer titles` on the chosen group writes, per seed, a SAELens-style
  directory; numpy recomputes every sentence's cluster from cfg.json, sae_weights.safetensors and
  centering.safetensors (raw activations = mean + norm * vector) and gets the task's clusters; on
  `all`, each k-means K = 6 cluster at the planted layer is titled by its category's word; a task key
  that is not in the manifest exits 2.
- bad input: a layer the file does not hold, K larger than the sentences, a missing sentences file: exit
  2, one line naming the file or key, no manifest or task file; a NaN in a sentence vector: exit 2 naming
  the dataset and the row, no task file.
"""
import csv
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from planted_sentences import PLANTED, WORDS, write_planted_sentences  # noqa: E402
from thinksteer_testing import ENV, binary  # noqa: E402,F401  (fixtures)

FAST = ["--taxonomy.max_epochs", "40", "--taxonomy.patience", "5", "--taxonomy.batch_size", "256"]


def run(binary, run_dir, sentences, *args, ranks=1, stage=("taxonomy",), check=True):
    cmd = [str(binary), *stage, "--run.dir", str(run_dir), "--taxonomy.sentences", str(sentences), "--run.threads", "1", *args]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def task_files(run_dir):
    return sorted((Path(run_dir) / "taxonomy" / "tasks").glob("*.h5"))


def read_task(path):
    with h5py.File(path, "r") as f:
        return {name: f[name][()] for name in ("assign", "sizes", "centres", "loss", "sae/w_enc", "sae/b_enc", "sae/w_dec", "sae/b_dec") if name in f}


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted") / "sentences.h5"
    write_planted_sentences(path)
    return path


@pytest.fixture(scope="module")
def sweep(binary, sentences, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("sweep")
    r = run(binary, run_dir, sentences, "--taxonomy.clusters", "4,6,8", "--taxonomy.methods", "sae,kmeans", "--taxonomy.seeds", "0,1", *FAST)
    return run_dir, r


def test_planted_layer_is_chosen_and_the_clusters_recovered(sweep):
    run_dir, r = sweep
    with open(run_dir / "taxonomy" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 * 2, rows  # layers x K x methods
    assert all(int(row["n_seeds"]) == 2 for row in rows)
    chosen = [row for row in rows if row["selected"] == "1"]
    assert [(int(c["layer"]), c["method"]) for c in chosen] == [(PLANTED, "sae")], chosen
    for row in rows:
        nmi = float(row["nmi"])
        assert float(row["nmi_lo"]) <= nmi <= float(row["nmi_hi"]), row
        if int(row["layer"]) != PLANTED:
            assert nmi < 0.05, row                      # noise: nothing to find
        elif row["method"] == "kmeans" and int(row["k"]) == 6:
            assert nmi >= 0.95, row                     # the planted categories
        elif row["method"] == "sae":
            assert nmi >= 0.6, row                      # the SAE's argmax clusters follow them too
    with h5py.File(run_dir / "taxonomy" / "summary.h5", "r") as f:
        assert f.attrs["selected_layer"] == PLANTED
        assert "NMI" in f.attrs["rule"]
    assert "chosen: layer 5" in r.stderr, r.stderr[-2000:]
    assert "epoch 1/40" in r.stderr  # a progress line per epoch


def test_the_rule_chooses_the_planted_k(binary, sentences, tmp_path):
    """k-means alone (the rule then judges the k-means groups): the planted K has the highest NMI."""
    r = run(binary, tmp_path, sentences, "--taxonomy.clusters", "3,6,12", "--taxonomy.methods", "kmeans", "--taxonomy.seeds", "0,1")
    with h5py.File(tmp_path / "taxonomy" / "summary.h5", "r") as f:
        assert (f.attrs["selected_layer"], f.attrs["selected_k"], f.attrs["selected_method"]) == (PLANTED, 6, "kmeans"), r.stderr[-2000:]


def one_task(binary, run_dir, sentences, *args, ranks=1):
    """Plans the sweep of one SAE (layer 5, K 6, seed 0) and runs its task."""
    common = ["--sweep.kind", "taxonomy", "--taxonomy.layers", str(PLANTED), "--taxonomy.clusters", "6", "--taxonomy.methods", "sae",
              "--taxonomy.batch_size", "256", *args]
    run(binary, run_dir, sentences, *common, stage=("sweep", "plan"))
    r = run(binary, run_dir, sentences, *common, "--task-id", "0", ranks=ranks, stage=("sweep", "run"), check=False)
    return r


def test_two_ranks_and_a_small_budget_agree_with_one(binary, sentences, tmp_path):
    fixed = ["--taxonomy.max_epochs", "3", "--taxonomy.patience", "100"]
    results = {}
    for name, ranks, extra in (("one", 1, []), ("two", 2, []), ("stream", 1, ["--taxonomy.memory_mb", "0"])):
        r = one_task(binary, tmp_path / name, sentences, *fixed, *extra, ranks=ranks)
        assert r.returncode == 0, r.stderr[-3000:]
        [path] = task_files(tmp_path / name)
        results[name] = read_task(path)
    one, two, stream = results["one"], results["two"], results["stream"]
    assert np.array_equal(one["assign"], two["assign"])
    for key in ("sae/w_enc", "sae/b_enc", "sae/w_dec", "sae/b_dec"):
        assert np.abs(one[key] - two[key]).max() <= 1e-5, key
    for key in one:
        assert np.array_equal(one[key], stream[key]), key


def test_stop_and_resume_equals_an_uninterrupted_run(binary, sentences, tmp_path):
    fixed = ["--taxonomy.max_epochs", "4", "--taxonomy.patience", "100"]
    whole = one_task(binary, tmp_path / "whole", sentences, *fixed)
    assert whole.returncode == 0, whole.stderr[-3000:]
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    (stopped / "STOP").write_text("")
    r = one_task(binary, stopped, sentences, *fixed)
    assert r.returncode == 75, r.stderr[-3000:]
    assert list((stopped / "taxonomy" / "tasks").glob("*.state.safetensors")), "no state saved"
    assert not task_files(stopped)
    (stopped / "STOP").unlink()
    r = one_task(binary, stopped, sentences, *fixed)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumes after epoch 1" in r.stderr, r.stderr[-2000:]
    a, b = read_task(task_files(tmp_path / "whole")[0]), read_task(task_files(stopped)[0])
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_reduce_reports_missing_tasks(binary, sentences, tmp_path):
    common = ["--sweep.kind", "taxonomy", "--taxonomy.layers", str(PLANTED), "--taxonomy.clusters", "4,6", "--taxonomy.methods", "kmeans"]
    run(binary, tmp_path, sentences, *common, stage=("sweep", "plan"))
    run(binary, tmp_path, sentences, *common, "--task-id", "1", stage=("sweep", "run"))
    r = run(binary, tmp_path, sentences, *common, stage=("reduce",), check=False)
    assert r.returncode == 3, r.stderr[-2000:]
    assert "missing: --array=0" in r.stdout
    assert (tmp_path / "taxonomy" / "missing.txt").read_text().strip() == "0"
    assert not (tmp_path / "taxonomy" / "summary.h5").exists()


@pytest.mark.parametrize("args, needle", [
    (["--taxonomy.layers", "9"], "taxonomy.layers"),
    (["--taxonomy.clusters", "5000"], "taxonomy.clusters"),
    (None, "/nonexistent/sentences.h5"),
])
def test_bad_input(binary, sentences, tmp_path, args, needle):
    given = Path("/nonexistent/sentences.h5") if args is None else sentences
    r = run(binary, tmp_path, given, "--taxonomy.clusters", "4", "--taxonomy.methods", "kmeans", *(args or []), check=False)
    assert r.returncode == 2, r.stderr[-2000:]
    assert needle in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "taxonomy" / "manifest.jsonl").exists()
    assert not task_files(tmp_path)


def titles(binary, run_dir, sentences, *args, check=True):
    return run(binary, run_dir, sentences, "--taxonomy.clusters", "4,6,8", "--taxonomy.methods", "sae,kmeans", "--taxonomy.seeds", "0,1", *FAST,
               *args, stage=("titles",), check=check)


def test_saelens_export_recomputes_the_clusters_with_numpy(binary, sweep, sentences):
    from safetensors.numpy import load_file
    run_dir, _ = sweep
    titles(binary, run_dir, sentences)
    index = json.loads((run_dir / "titles" / "index.json").read_text())
    assert (run_dir / "titles" / "index.json.done").exists()
    assert [t["seed"] for t in index["tasks"]] == [0, 1] and {t["method"] for t in index["tasks"]} == {"sae"}, index
    with h5py.File(sentences, "r") as f:
        g = f[f"layer_{PLANTED}"]
        raw = g["mean"][()].astype(np.float64) + g["norm"][()][:, None].astype(np.float64) * g["vectors"][()]
    for t in index["tasks"]:
        d = run_dir / "titles" / t["dir"]
        cfg = json.loads((d / "cfg.json").read_text())
        w = load_file(str(d / "sae_weights.safetensors"))
        mean = load_file(str(d / "centering.safetensors"))["mean"].astype(np.float64)
        assert (cfg["d_in"], cfg["d_sae"], cfg["k"], cfg["hook_name"]) == (32, t["k"], 3, f"blocks.{PLANTED}.hook_resid_post"), cfg
        assert cfg["thinksteer"]["no_relu"] is True and "unit" not in cfg["normalize_activations"]
        assert w["W_enc"].shape == (32, t["k"]) and w["W_dec"].shape == (t["k"], 32)
        x = raw - mean
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        a = (x - w["b_dec"]) @ w["W_enc"].astype(np.float64) + w["b_enc"]
        top2 = np.sort(a, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-4  # rows not at a tie within float32 rounding
        with h5py.File(run_dir / "taxonomy" / "tasks" / f"{t['key']}.h5", "r") as f:
            assign = f["assign"][()]
        assert clear.mean() > 0.99
        assert np.array_equal(a.argmax(axis=1)[clear], assign[clear])
        doc = json.loads((d / "titles.json").read_text())
        assert [c["size"] for c in doc["clusters"]] == np.bincount(assign, minlength=t["k"]).tolist()


def test_offline_titles_name_the_planted_categories(binary, sweep, sentences):
    run_dir, _ = sweep
    titles(binary, run_dir, sentences, "--taxonomy.titles", "all")
    index = json.loads((run_dir / "titles" / "index.json").read_text())
    assert len(index["tasks"]) == 2 * 3 * 2 * 2
    [km] = [t for t in index["tasks"] if (t["layer"], t["k"], t["method"], t["seed"]) == (PLANTED, 6, "kmeans", 0)]
    doc = json.loads((run_dir / "titles" / km["dir"] / "titles.json").read_text())
    assert not (run_dir / "titles" / km["dir"] / "cfg.json").exists()  # k-means: titles only
    named = set()
    for c in doc["clusters"]:
        words = [w for w in WORDS if w in c["title"].split(", ")[0].split()]
        assert len(words) == 1 and all(words[0] in e for e in c["examples"][:5]), c
        named.add(words[0])
    assert named == set(WORDS)
    r = titles(binary, run_dir, sentences, "--taxonomy.titles", "0123456789abcdef", check=False)
    assert r.returncode == 2 and "taxonomy.titles" in r.stderr, r.stderr[-2000:]


def test_a_nan_vector_is_refused(binary, tmp_path):
    """A sentences file with a NaN in one row: the task exits 2 naming the file, the layer's dataset and the row."""
    bad = tmp_path / "nan.h5"
    write_planted_sentences(bad)
    with h5py.File(bad, "r+") as f:
        f[f"layer_{PLANTED}/vectors"][17, 3] = np.nan
    r = run(binary, tmp_path, bad, "--taxonomy.layers", str(PLANTED), "--taxonomy.clusters", "6", "--taxonomy.methods", "sae", *FAST, check=False)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"/layer_{PLANTED}/vectors" in r.stderr and "row 17" in r.stderr and "NaN" in r.stderr, r.stderr[-2000:]
    assert not task_files(tmp_path)
