"""The taxonomy's planted truth on the shipped toy thinker, at reduced size (about 30 s on 2 cores), and the
taxonomy annotator (docs/algorithms.md §B.7) on the same traces.

300 greedy traces of held-out problems (toy seed 3, a seed the toy pair was not tuned on) are labelled by the
toy annotator (the six planted behaviours), `sentences` writes their §B.3 activations at every layer with those
labels as the reference, and the taxonomy sweep runs SAEs and spherical k-means at K = 6 on two seeds:
- the offline rule chooses the SAE group of highest NMI; there the SAE's clusters match the planted behaviours
  with NMI >= 0.6 and one-to-one (Hungarian) accuracy >= 0.7 (README "The taxonomy on the toy thinker" has the
  full run: 1000 traces, K 4..10, 3 seeds, problem seeds 0 and 7); k-means reaches NMI >= 0.6 at that layer too;
- `titles` exports the chosen SAEs; `annotate.annotator = taxonomy` on that export labels every sentence of the
  traces with exactly the cluster the task assigned it (idx<k> spans over the same character ranges), and
  `vectors` computes a vector per learned category from those spans;
- an SAE whose d_in is not the sentences file's d_model exits 2 naming cfg.json's d_in, with no spans file.
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
from planted_sentences import write_planted_sentences  # noqa: E402
from thinksteer_testing import ENV, binary, toy_model  # noqa: E402,F401  (fixtures)

COMMON = ["--data.prompts", "builtin:toy-test", "--data.limit", "300", "--toy.seed", "3", "--toy.n_problems", "20000",
          "--generate.chat_format", "deepseek_r1", "--generate.max_new_tokens", "384", "--generate.batch_size", "100",
          "--run.threads", "1", "--sweep.kind", "taxonomy", "--taxonomy.clusters", "6", "--taxonomy.seeds", "0,1"]


def stage(binary, model, run_dir, name, *args, check=True):
    cmd = ["mpiexec", "--oversubscribe", "-n", "2", str(binary), *name.split(), "--model.path", str(model), "--run.dir", str(run_dir),
           *COMMON, *args]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def chain(binary, toy_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    stage(binary, toy_model, d, "generate")
    stage(binary, toy_model, d, "annotate", "--annotate.annotator", "toy")
    stage(binary, toy_model, d, "sentences", "--sentences.reference", str(d / "annotate" / "spans.h5"))
    stage(binary, toy_model, d, "taxonomy")
    stage(binary, toy_model, d, "titles")
    return d


def test_sae_clusters_match_the_planted_behaviours(chain):
    with open(chain / "taxonomy" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    [chosen] = [r for r in rows if r["selected"] == "1"]
    assert chosen["method"] == "sae" and chosen["k"] == "6"
    sae = [r for r in rows if r["method"] == "sae"]
    assert float(chosen["nmi"]) == max(float(r["nmi"]) for r in sae)
    assert float(chosen["nmi"]) >= 0.6 and float(chosen["matched"]) >= 0.7, chosen
    [km] = [r for r in rows if r["method"] == "kmeans" and r["layer"] == chosen["layer"]]
    assert float(km["nmi"]) >= 0.6, km


def test_taxonomy_annotator_labels_sentences_by_their_cluster(binary, toy_model, chain, tmp_path):
    index = json.loads((chain / "titles" / "index.json").read_text())
    task = index["tasks"][0]
    export = chain / "titles" / task["dir"]
    out = tmp_path / "annotated"
    stage(binary, toy_model, out, "annotate", "--annotate.annotator", "taxonomy", "--annotate.taxonomy_sae", str(export),
          "--annotate.input", str(chain / "generate" / "generations.jsonl"),
          "--annotate.taxonomy_sentences", str(chain / "sentences" / "sentences.h5"))
    with h5py.File(chain / "taxonomy" / "tasks" / f"{task['key']}.h5", "r") as f:
        assign = f["assign"][()]
    with h5py.File(chain / "sentences" / "sentences.h5", "r") as f:
        ids = [s.decode() for s in f["sentences/trace_id"][()]]
        begin = f["sentences/char_begin"][()]
    expected = {(i, int(b)): f"idx{a}" for i, b, a in zip(ids, begin, assign)}
    got = {}
    for line in (out / "annotate" / "spans.jsonl").read_text().splitlines():
        row = json.loads(line)
        for s in row["spans"]:
            got[(row["id"], s["begin"])] = s["label"]
    assert got == expected
    # the learned categories feed the vectors stage like any annotator's labels
    stage(binary, toy_model, out, "vectors", "--vectors.generations", str(chain / "generate" / "generations.jsonl"),
          "--vectors.spans", str(out / "annotate" / "spans.h5"))
    from safetensors.numpy import load_file
    names = {n for n in load_file(str(out / "vectors" / "vectors.safetensors")) if not n.endswith(".counts")}
    assert set(expected.values()) <= names, names  # besides the overall mean


def test_an_sae_of_another_width_is_refused(binary, toy_model, chain, tmp_path):
    planted = tmp_path / "planted.h5"
    write_planted_sentences(planted)  # d_model 32 at layers 2 and 5; the toy thinker's is 128
    index = json.loads((chain / "titles" / "index.json").read_text())
    export = chain / "titles" / index["tasks"][0]["dir"]
    cfg = json.loads((export / "cfg.json").read_text())
    layer = cfg["hook_layer"]
    if layer not in (2, 5):
        pytest.skip(f"the chosen layer {layer} is not one of the planted file's")
    out = tmp_path / "bad"
    r = stage(binary, toy_model, out, "annotate", "--annotate.annotator", "taxonomy", "--annotate.taxonomy_sae", str(export),
              "--annotate.input", str(chain / "generate" / "generations.jsonl"), "--annotate.taxonomy_sentences", str(planted), check=False)
    assert r.returncode == 2 and "cfg.json" in r.stderr and "d_in" in r.stderr, r.stderr[-2000:]
    assert not (out / "annotate" / "spans.h5").exists()
