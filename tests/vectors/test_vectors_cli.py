"""`thinksteer vectors` end to end, under mpiexec.

- numpy reference: docs/algorithms.md §A.4 recomputed in float64 from HF transformers' decoder-layer outputs
  (resid_post[l]) on the same token ids and the spans file's token ranges, with the reference's running
  means; every stored vector agrees within 1e-5 relative (fp32 model), for both windows and rescale on/off.
- 1, 2 and 3 ranks (and 2 pipeline stages) give the same vectors within 1e-6 relative and the same counts.
- planted truth: on the shipped toy thinker's own greedy traces of held-out problems,
  the vectors from the toy annotator's ground-truth labels and from the lexicon annotation have cosine
  >= 0.95 at every layer for every behaviour with >= 20 spans in both.
- files: names, counts, hooks and provenance in HDF5 and safetensors; the GGUF exports read with gguf-py;
  a rerun skips; labels without spans are recorded, never stored as zero vectors.
- bad input (spans of other generations, labels without spans, malformed spans files): exit 2, a message
  naming the file and the field, and nothing that looks valid.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from safetensors.numpy import load_file
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import ENV, binary, demo_model, toy_model  # noqa: E402,F401  (fixtures)
LABELS = ["initializing", "deduction", "adding-knowledge", "example-testing", "uncertainty-estimation", "backtracking"]
R1_PROMPT = "<｜begin▁of▁sentence｜><｜User｜>{}<｜Assistant｜><think>\n"


def run(binary, ranks, stage, run_dir, *extra, check=True):
    cmd = ["mpiexec", "-n", str(ranks), binary, stage, "--run.dir", str(run_dir), "--log.progress_seconds", "0.01", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=ENV, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def rows_of(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def demo_run(binary, demo_model, tmp_path_factory):
    """A run directory with generations.jsonl rows as `generate` writes them (toy corpus traces
    tokenized by the demo tokenizer after an R1 prompt) and their lexicon spans."""
    run_dir = tmp_path_factory.mktemp("demo_run")
    corpus = tmp_path_factory.mktemp("corpus")
    subprocess.run([binary, "toy", "corpus", "--toy.n_problems", "24", "--run.dir", str(corpus)], check=True, capture_output=True)
    tok = Tokenizer.from_file(str(demo_model / "tokenizer.json"))
    gens = []
    for r in rows_of(corpus / "toy" / "corpus.jsonl"):
        ids = tok.encode(r["text"][len("<think>\n"):], add_special_tokens=False).ids
        gens.append({"id": r["id"], "prompt": r["question"], "prompt_text": R1_PROMPT.format(r["question"]), "token_ids": ids,
                     "text": tok.decode(ids, skip_special_tokens=False), "thinking_closed": True})
    (run_dir / "generate").mkdir()
    (run_dir / "generate" / "generations.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
    run(binary, 2, "annotate", run_dir, "--model.path", str(demo_model))
    return run_dir


def read_set(path):
    """{name: (values [L, d] float32, counts [L])}, layers, and the root attributes of vectors.h5."""
    with h5py.File(path, "r") as f:
        names = list(f["names"].asstr()[()])
        values, counts = f["vectors"][()], f["counts"][()]
        return {n: (values[i], counts[i]) for i, n in enumerate(names)}, list(f["layers"][()]), dict(f.attrs)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


# ---------------------------------------------------------------------------------------------------
# (a) numpy reference

def resid_posts(model, ids):
    """[L, T, d] float64: the output of every decoder layer (resid_post[l]; HF hidden_states[l+1] for
    l < L-1, the last one taken before the final norm)."""
    import torch
    out = []
    hooks = [layer.register_forward_hook(lambda m, i, o: out.append((o[0] if isinstance(o, tuple) else o)[0].double().numpy()))
             for layer in model.model.layers]
    with torch.no_grad():
        model(torch.tensor([ids]))
    for h in hooks:
        h.remove()
    return np.stack(out)


def reference_vectors(model_dir, run_dir, window, rescale):
    """docs/algorithms.md §A.4 with the reference code's running means, in float64."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    with h5py.File(run_dir / "annotate" / "spans.h5", "r") as f:
        labels = list(f["labels"].asstr()[()])
        trace, label, tb, te = (f["spans"][k][()] for k in ("trace", "label", "token_begin", "token_end"))
    means, counts = {}, {}

    def update(name, x):  # M <- M + (x - M) / (n + 1)
        n = counts.get(name, 0)
        means[name] = x.copy() if n == 0 else means[name] + (x - means[name]) / (n + 1)
        counts[name] = n + 1

    for i, g in enumerate(rows_of(run_dir / "generate" / "generations.jsonl")):
        rows = [r for r in np.nonzero(trace == i)[0] if tb[r] >= 0]
        if not rows:
            continue
        acts = resid_posts(model, tok.encode(g["prompt_text"], add_special_tokens=False).ids + g["token_ids"])
        update("overall", acts[:, min(tb[r] for r in rows):max(te[r] for r in rows)].mean(axis=1))
        for r in rows:
            start, end = int(tb[r]), int(te[r])
            if end <= start or start < 1:
                continue
            stop = min(end - 1, start + 10) if window == "s1" else end - 1
            update(labels[label[r]], acts[:, start - 1:stop].mean(axis=1))
    features = {}
    for name in labels:
        if name in means:
            f = means[name] - means["overall"]
            if rescale:
                f = f * (np.linalg.norm(means["overall"], axis=1) / np.linalg.norm(f, axis=1))[:, None]
            features[name] = f
    return means, counts, features


@pytest.mark.parametrize("window,rescale", [("s1", "true"), ("whole-span", "false")])
def test_numpy_reference(binary, demo_model, demo_run, tmp_path, window, rescale):
    out = tmp_path / "run"
    shutil.copytree(demo_run, out)
    run(binary, 2, "vectors", out, "--model.path", str(demo_model), "--vectors.window", window, "--vectors.rescale", rescale)
    got, layers, attrs = read_set(out / "vectors" / "vectors.h5")
    means, counts, features = reference_vectors(demo_model, out, window, rescale == "true")
    assert layers == [0, 1, 2, 3] and attrs["hook_measured"] == attrs["hook_applied"] == "blocks.{l}.hook_resid_post"
    worst = 0.0
    for name, m in means.items():
        v, c = got["mean." + name]
        assert list(c) == [counts[name]] * 4, name
        for l in range(4):
            worst = max(worst, rel(v[l], m[l]))
    for name, f in features.items():
        v, c = got[name]
        assert list(c) == [counts[name]] * 4, name
        for l in range(4):
            worst = max(worst, rel(v[l], f[l]))
    print(f"numpy reference ({window}, rescale {rescale}): {len(means)} means, {len(features)} features, worst relative difference {worst:.2e}")
    assert worst <= 1e-5
    assert len(features) >= 4 and counts["overall"] == 24


# ---------------------------------------------------------------------------------------------------
# (b) rank layouts

def test_ranks_agree(binary, demo_model, demo_run, tmp_path):
    layouts = {"np1": (1, []), "np2": (2, []), "np3": (3, []), "np2_pipeline": (2, ["--parallel.pipeline_stages", "2"])}
    sets = {}
    for key, (ranks, extra) in layouts.items():
        out = tmp_path / key
        shutil.copytree(demo_run, out)
        run(binary, ranks, "vectors", out, "--model.path", str(demo_model), "--vectors.batch_size", "5", *extra)
        sets[key] = read_set(out / "vectors" / "vectors.h5")[0]
    for key in layouts:
        worst = 0.0
        assert sets[key].keys() == sets["np1"].keys()
        for name, (v, c) in sets["np1"].items():
            np.testing.assert_array_equal(sets[key][name][1], c, err_msg=name)
            for l in range(v.shape[0]):
                worst = max(worst, rel(sets[key][name][0][l], v[l]))
        print(f"{key} vs np1: worst relative difference {worst:.2e}")
        assert worst <= 1e-6, key


# ---------------------------------------------------------------------------------------------------
# Files, skips and reruns

def test_files_gguf_and_rerun(binary, demo_model, demo_run, tmp_path):
    from gguf import GGUFReader
    out = tmp_path / "run"
    shutil.copytree(demo_run, out)
    run(binary, 1, "vectors", out, "--model.path", str(demo_model), "--vectors.gguf", "true", "--vectors.layers", "1,3")
    vec = out / "vectors"
    got, layers, attrs = read_set(vec / "vectors.h5")
    assert layers == [1, 3] and attrs["format"] == "thinksteer.vectors" and attrs["architecture"] == "qwen2"
    prov = json.loads(attrs["provenance"])
    assert prov["stage"] == "vectors" and prov["window"] == "s1" and prov["rescale"] is True and prov["layers"] == [1, 3]
    spans_file = out / "annotate" / "spans.h5"
    assert prov["spans"] == str(spans_file) and prov["counts"]["overall"] == 24 and prov["annotator"]["name"] == "lexicon"
    present = [l for l in LABELS if l in got]
    assert list(got) == present + ["mean." + l for l in present] + ["mean.overall"]
    # safetensors holds the same vectors and counts.
    st = load_file(str(vec / "vectors.safetensors"))
    for name, (v, c) in got.items():
        np.testing.assert_array_equal(st[name], v)
        np.testing.assert_array_equal(st[name + ".counts"], c)
    # Features have the overall mean's norm at every layer (rescale); GGUF carries them as direction.{l}
    # (vectors.gguf_layer_map = same-block, the default: llama.cpp adds direction.N at block N's output).
    for label in present:
        v, c = got[label]
        if c[0] == 0:
            continue
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), np.linalg.norm(got["mean.overall"][0], axis=1), rtol=1e-5)
        reader = GGUFReader(str(vec / f"{label}.gguf"))
        assert [t.name for t in reader.tensors] == ["direction.1", "direction.3"]
        assert reader.fields["controlvector.model_hint"].contents() == "qwen2"
        assert reader.fields["thinksteer.hook_applied"].contents() == "blocks.{l}.hook_resid_post"
        for t, k in zip(reader.tensors, range(2)):
            np.testing.assert_array_equal(t.data, v[k])
    before = (vec / "vectors.h5").stat().st_mtime_ns
    proc = run(binary, 2, "vectors", out, "--model.path", str(demo_model), "--vectors.gguf", "true", "--vectors.layers", "1,3")
    assert "complete for this config" in proc.stderr and (vec / "vectors.h5").stat().st_mtime_ns == before
    # Another config redoes the work, and drops the previous run's GGUF files.
    run(binary, 1, "vectors", out, "--model.path", str(demo_model), "--vectors.hook", "blocks.2.hook_resid_mid")
    got, layers, attrs = read_set(vec / "vectors.h5")
    assert layers == [2] and attrs["hook_applied"] == "blocks.{l}.hook_resid_mid" and not list(vec.glob("*.gguf"))


def annotate_only_deduction(binary, demo_model, demo_run, out):
    """A copy of the demo run whose spans are all deduction (a lexicon without other matches)."""
    shutil.copytree(demo_run / "generate", out / "generate")
    lexicon = out / "lexicon.txt"
    lexicon.write_text("default = deduction\n[backtracking]\n\\bzzzzqqq\\b\n")
    run(binary, 1, "annotate", out, "--model.path", str(demo_model), "--annotate.lexicon", str(lexicon))


def test_labels_without_spans_are_recorded(binary, demo_model, demo_run, tmp_path):
    out = tmp_path / "run"
    annotate_only_deduction(binary, demo_model, demo_run, out)
    proc = run(binary, 2, "vectors", out, "--model.path", str(demo_model))
    assert "label 'backtracking' has no usable span" in proc.stderr
    got, _, _ = read_set(out / "vectors" / "vectors.h5")
    for label in LABELS:
        v, c = got[label]
        if label == "deduction":
            assert (c > 0).all() and np.linalg.norm(v) > 0
        else:  # missing, not a zero vector: count 0 says so
            assert (c == 0).all() and not v.any()
    skipped = rows_of(out / "vectors" / "skipped.jsonl")
    assert sorted(s["label"] for s in skipped if s["kind"] == "label_without_spans") == sorted(set(LABELS) - {"deduction"})
    prov = json.loads((out / "vectors" / "provenance.json").read_text())
    assert prov["skipped"]["label_without_spans"] == 5


# ---------------------------------------------------------------------------------------------------
# (d) bad input

def assert_nothing_valid(run_dir):
    vec = Path(run_dir) / "vectors"
    for name in ("vectors.h5", "vectors.h5.done", "vectors.safetensors", "skipped.jsonl"):
        assert not (vec / name).exists(), name


def bad(binary, ranks, run_dir, demo_model, *extra):
    proc = run(binary, ranks, "vectors", run_dir, "--model.path", str(demo_model), *extra, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_nothing_valid(run_dir)
    return proc.stderr


@pytest.mark.parametrize("ranks", [1, 2])
def test_spans_of_other_generations(binary, demo_model, demo_run, tmp_path, ranks):
    out = tmp_path / "run"
    shutil.copytree(demo_run, out)
    other = tmp_path / "other.jsonl"
    gens = rows_of(out / "generate" / "generations.jsonl")
    other.write_text("".join(json.dumps(g) + "\n" for g in gens[:-1]))
    err = bad(binary, ranks, out, demo_model, "--vectors.generations", str(other))
    spans_file = str(out / "annotate" / "spans.h5")
    assert f"{spans_file}: input_sha256: the spans were annotated from" in err and str(other) in err, err


def test_labels_without_spans_asked_for(binary, demo_model, demo_run, tmp_path):
    out = tmp_path / "run"
    annotate_only_deduction(binary, demo_model, demo_run, out)
    spans_file = str(out / "annotate" / "spans.h5")
    err = bad(binary, 2, out, demo_model, "--vectors.labels", "deduction,backtracking")
    assert f"{spans_file}: /spans/label: label 'backtracking' has no usable span" in err, err
    err = bad(binary, 1, out, demo_model, "--vectors.labels", "musing")
    assert f"{spans_file}: /labels: has no label 'musing'" in err, err


def edit_spans(path, edit):
    with h5py.File(path, "r+") as f:
        edit(f)


@pytest.mark.parametrize("case,field", [
    ("not_hdf5", "cannot open as HDF5"),
    ("missing_dataset", "/spans/token_end"),
    ("token_past_end", "/spans/token_end"),
    ("label_out_of_range", "/spans/label"),
    ("text_tokens", "token_sequence"),
    ("wrong_format", "format"),
    ("ids_differ", "/traces/id"),
])
def test_malformed_spans(binary, demo_model, demo_run, tmp_path, case, field):
    out = tmp_path / "run"
    shutil.copytree(demo_run, out)
    spans = out / "annotate" / "spans.h5"
    if case == "not_hdf5":
        spans.write_text("not an HDF5 file\n")
    elif case == "missing_dataset":
        edit_spans(spans, lambda f: f.__delitem__("spans/token_end"))
    elif case == "token_past_end":
        edit_spans(spans, lambda f: f["spans/token_end"].__setitem__(3, 10 ** 6))
    elif case == "label_out_of_range":
        edit_spans(spans, lambda f: f["spans/label"].__setitem__(0, 17))
    elif case == "text_tokens":
        edit_spans(spans, lambda f: f.attrs.__setitem__("token_sequence", "text"))
    elif case == "wrong_format":
        edit_spans(spans, lambda f: f.attrs.__setitem__("format", "thinksteer.activations"))
    elif case == "ids_differ":
        def rename(f):
            ids = list(f["traces/id"].asstr()[()])
            ids[2] = "someone-else"
            del f["traces/id"]
            f.create_dataset("traces/id", data=ids, dtype=h5py.string_dtype())
        edit_spans(spans, rename)
    err = bad(binary, 2, out, demo_model)
    assert str(spans) in err and field in err, err


def test_missing_inputs_and_options(binary, demo_model, demo_run, tmp_path):
    err = bad(binary, 1, tmp_path / "empty", demo_model)
    assert "generations.jsonl" in err and "vectors.generations" in err, err
    out = tmp_path / "run"
    shutil.copytree(demo_run / "generate", out / "generate")
    err = bad(binary, 1, out, demo_model)
    assert "spans.h5" in err and "vectors.spans" in err, err
    shutil.copytree(demo_run / "annotate", out / "annotate")
    for key, value, needle in (("vectors.window", "s3", "vectors.window"), ("vectors.hook", "blocks.*.attn.hook_z", "vectors.hook"),
                               ("vectors.layers", "9", "vectors.layers"), ("vectors.gguf_layer_map", "late", "vectors.gguf_layer_map")):
        err = bad(binary, 1, out, demo_model, f"--{key}", value)
        assert needle in err, err
    err = bad(binary, 1, out, demo_model, "--vectors.gguf", "true", "--vectors.hook", "blocks.*.hook_resid_mid")
    assert "vectors.gguf" in err, err


# ---------------------------------------------------------------------------------------------------
# (c) planted truth on the toy thinker

def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_planted_truth_toy_thinker(binary, toy_model, tmp_path):
    truth, lexicon = tmp_path / "truth", tmp_path / "lexicon"
    run(binary, 2, "generate", truth, "--model.path", str(toy_model), "--data.prompts", "builtin:toy-test", "--data.limit", "80",
        "--toy.n_problems", "20000", "--generate.chat_format", "deepseek_r1", "--generate.temperature", "0",
        "--generate.max_new_tokens", "512", "--generate.batch_size", "40")
    gens = truth / "generate" / "generations.jsonl"
    run(binary, 2, "annotate", truth, "--model.path", str(toy_model), "--annotate.annotator", "toy")
    run(binary, 2, "annotate", lexicon, "--model.path", str(toy_model), "--annotate.input", str(gens))
    run(binary, 2, "vectors", truth, "--model.path", str(toy_model))
    run(binary, 3, "vectors", lexicon, "--model.path", str(toy_model), "--vectors.generations", str(gens))
    a, layers, _ = read_set(truth / "vectors" / "vectors.h5")
    b, _, _ = read_set(lexicon / "vectors" / "vectors.h5")
    checked = {}
    for label in LABELS:
        n_truth, n_lex = int(a[label][1][0]), int(b[label][1][0])
        if min(n_truth, n_lex) < 20:
            print(f"planted truth: {label}: {n_truth} / {n_lex} spans, too few to compare")
            continue
        checked[label] = [cosine(a[label][0][l], b[label][0][l]) for l in range(len(layers))]
        print(f"planted truth: {label:<24} spans {n_truth:>4} (truth) {n_lex:>4} (lexicon)  cosine per layer "
              + " ".join(f"{c:.4f}" for c in checked[label]))
    assert len(checked) >= 4, checked
    assert all(c >= 0.95 for cs in checked.values() for c in cs), checked
    # The threshold discriminates: different behaviours' ground-truth vectors are far from parallel.
    for l in range(len(layers)):
        cross = max(cosine(a[x][0][l], a[y][0][l]) for x in checked for y in checked if x != y)
        print(f"planted truth: layer {l}: largest cosine between two behaviours' ground-truth vectors {cross:.3f}")
        assert cross < 0.95
    # How far the two annotations agree on the model's own traces (the spans themselves).
    with h5py.File(truth / "annotate" / "spans.h5", "r") as t, h5py.File(lexicon / "annotate" / "spans.h5", "r") as x:
        key = lambda f: {(int(i), int(b)): int(l) for i, b, l in zip(f["spans/trace"][()], f["spans/char_begin"][()], f["spans/label"][()])}
        kt, kx = key(t), key(x)
        same = sum(kx.get(k) == v for k, v in kt.items())
        problems = len(rows_of(truth / "annotate" / "problems.jsonl"))
    print(f"planted truth: {same} of {len(kt)} ground-truth spans have the same sentence and label in the lexicon annotation; "
          f"{problems} sentences the templates could not label")
