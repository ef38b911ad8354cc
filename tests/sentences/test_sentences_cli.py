"""`thinksteer sentences` end to end, under mpiexec (docs/algorithms.md §B.3).

Setup: `generate` samples 6 traces of 64 tokens from the demo checkpoint (random weights, temperature 1),
`annotate` labels them with the lexicon (with model.path, so the spans index the same generations), and
`sentences` runs with those spans as its reference, at every layer, 2 traces per batch.

- (a) 1 rank, 2 data-parallel ranks and 2 pipeline stages write the same file: every integer and string
  dataset and the sentence attributes exactly equal, every float dataset within 1e-6 absolute.
- (b) a float64 recomputation from HF transformers' decoder-layer outputs (resid_post[l]) on the same
  token ids: each sentence's raw mean over [token_begin - 1, token_end), each trace's overall mean over
  [min token_begin, max token_end), their mean over the traces (/layer_l/mean), the centred unit
  vectors, their norms, and raw read back as mean + norm * vectors all agree within 1e-4 absolute.
- (c) texts and ranges: text[char_begin:char_end] (Python code points of the generation's `text`) is
  the stored sentence (a NUL stored as U+FFFD, as every HDF5 string is), inside the thinking part, in order; where the thinking part holds no '"' (the
  C++ splitter hands a quote to the sentence before) the sentences are exactly those of a Python §B.3
  splitter; token_begin / token_end are the tokens holding the first character and the character
  after the sentence, recomputed from the tokens' bytes (a lossy UTF-8 decode, as the sampled bytes
  are often not valid UTF-8); the
  labels are those of the lexicon spans with the same range ("" where the lexicon left a sentence).
- (d) a rerun with the same config skips: the file and its .done marker are untouched.
- (e) bad input (a missing generations file, a sentences.layers entry out of range): exit 2, one line
  naming the file or key, no sentences.h5. And the file's reader (artifacts/sentences.h, through the
  taxonomy that reads it) refuses a missing dataset, a wrong shape and a wrong format tag the same way.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import ENV, binary, demo_model  # noqa: E402,F401  (fixtures)

N_PROMPTS = 6
SENTENCES = ["--sentences.batch_size", "2"]
FLOAT_TOL = 1e-6      # (a) between rank layouts, absolute
REFERENCE_TOL = 1e-4  # (b) against HF transformers, absolute


def run(binary, ranks, stage, run_dir, *extra, check=True):
    cmd = ["mpiexec", "-n", str(ranks), binary, stage, "--run.dir", str(run_dir), "--run.threads", "1", "--log.progress_seconds", "0.01", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=ENV, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def rows_of(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def base(binary, demo_model, tmp_path_factory):
    """A run directory with generate's traces and annotate's lexicon spans of them."""
    run_dir = tmp_path_factory.mktemp("base")
    prompts = run_dir / "prompts.jsonl"
    questions = ["What is 12 * 12?", "Is 91 a prime number?", "How many legs do 3 spiders have?",
                 "Solve 2x + 1 = 7.", "What comes next: 1, 4, 9, 16?", "A train goes 60 km/h for 2 h. How far?"]
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "question": q}) + "\n" for i, q in enumerate(questions[:N_PROMPTS])))
    run(binary, 1, "generate", run_dir, "--model.path", str(demo_model), "--data.prompts", str(prompts), "--generate.max_new_tokens", "64",
        "--generate.temperature", "1", "--generate.seed", "0", "--generate.batch_size", str(N_PROMPTS))
    run(binary, 1, "annotate", run_dir, "--model.path", str(demo_model))
    return run_dir


@pytest.fixture(scope="module")
def layouts(binary, demo_model, base, tmp_path_factory):
    """sentences.h5 of 1 rank, 2 data-parallel ranks and a 2-stage pipeline (same config)."""
    out = {}
    for name, ranks, extra in [("one", 1, []), ("two", 2, []), ("pipeline", 2, ["--parallel.pipeline_stages", "2"])]:
        run_dir = tmp_path_factory.mktemp(name)
        shutil.copytree(base, run_dir, dirs_exist_ok=True)
        reference = run_dir / "annotate" / "spans.h5"
        proc = run(binary, ranks, "sentences", run_dir, "--model.path", str(demo_model), "--sentences.reference", str(reference), *SENTENCES, *extra)
        out[name] = (run_dir, proc)
    return out


def read_file(path):
    """{dataset path: values} and the root attributes."""
    data = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: data.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        attrs = dict(f.attrs)
    return data, attrs


SENTENCE_ATTRS = ["format", "schema_version", "hook", "layers", "d_model", "n_sentences", "n_traces", "n_mean_traces", "model_path"]


def test_rank_layouts_write_the_same_file(layouts):
    ref, ref_attrs = read_file(layouts["one"][0] / "sentences" / "sentences.h5")
    assert ref_attrs["format"] == "thinksteer.sentences" and ref_attrs["n_sentences"] >= 10, ref_attrs
    for name in ("two", "pipeline"):
        got, attrs = read_file(layouts[name][0] / "sentences" / "sentences.h5")
        assert sorted(got) == sorted(ref), name
        for key in SENTENCE_ATTRS:
            assert np.array_equal(attrs[key], ref_attrs[key]), (name, key)
        for key, value in ref.items():
            if value.dtype.kind == "f":
                assert np.abs(got[key] - value).max(initial=0) <= FLOAT_TOL, (name, key)
            else:
                assert np.array_equal(got[key], value), (name, key)


# ---------------------------------------------------------------------------------------------------
# (b) HF transformers

def resid_posts(model, ids):
    """[L, T, d] float64: every decoder layer's output (resid_post[l]; the last one before the final norm)."""
    import torch
    out = []
    hooks = [layer.register_forward_hook(lambda m, i, o: out.append((o[0] if isinstance(o, tuple) else o)[0].double().numpy()))
             for layer in model.model.layers]
    with torch.no_grad():
        model(torch.tensor([ids]))
    for h in hooks:
        h.remove()
    return np.stack(out)


def test_numpy_reference(demo_model, base, layouts):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(str(demo_model), dtype=torch.float32).eval()
    tok = Tokenizer.from_file(str(demo_model / "tokenizer.json"))
    data, attrs = read_file(layouts["one"][0] / "sentences" / "sentences.h5")
    layers = list(attrs["layers"])
    assert layers == list(range(model.config.num_hidden_layers))
    trace, tb, te = data["sentences/trace"], data["sentences/token_begin"], data["sentences/token_end"]
    raw = np.zeros((len(trace), len(layers), attrs["d_model"]))
    overall = []
    for i, g in enumerate(rows_of(base / "generate" / "generations.jsonl")):
        rows = np.nonzero(trace == i)[0]
        if not len(rows):
            continue
        ids = tok.encode(g["prompt_text"], add_special_tokens=False).ids + g["token_ids"]
        assert te[rows].max() <= len(ids)
        acts = resid_posts(model, ids)[layers]
        for r in rows:
            raw[r] = acts[:, tb[r] - 1:te[r]].mean(axis=1)
        overall.append(acts[:, tb[rows].min():te[rows].max()].mean(axis=1))
    assert len(overall) == attrs["n_mean_traces"]
    mean = np.mean(overall, axis=0)
    for li, layer in enumerate(layers):
        g = f"layer_{layer}"
        vectors, norm = data[f"{g}/vectors"], data[f"{g}/norm"]
        centred = raw[:, li] - mean[li]
        assert np.abs(data[f"{g}/mean"] - mean[li]).max() <= REFERENCE_TOL, layer
        assert np.abs(norm - np.linalg.norm(centred, axis=1)).max() <= REFERENCE_TOL, layer
        assert np.abs(vectors - centred / np.linalg.norm(centred, axis=1, keepdims=True)).max() <= REFERENCE_TOL, layer
        assert np.abs(data[f"{g}/mean"] + norm[:, None] * vectors - raw[:, li]).max() <= REFERENCE_TOL, layer
        assert np.abs(np.linalg.norm(vectors, axis=1) - 1).max() <= 1e-5, layer


# ---------------------------------------------------------------------------------------------------
# (c) texts, token ranges, labels

def split_sentences(text):
    """The sentence splitter of docs/algorithms.md §B.3 (as tests/toy/test_toy_corpus_cli.py writes it)."""
    protected = re.sub(r"(\d+)\.(\d+)", r"\1<DOT>\2", text)
    protected = re.sub(r"\b([A-Za-z])\. (?=[a-z])", r"\1<DOT> ", protected)
    protected = re.sub(r"(\d)!", r"\1<BANG>", protected)
    protected = re.sub(r"([.!?;])\1+", r"\1", protected)
    parts = re.split(r"(?<=[.!?;\n])", protected)
    return [s for s in (p.replace("<DOT>", ".").replace("<BANG>", "!").strip() for p in parts) if len(s.split()) >= 3]


def as_stored(text):
    """A string as the HDF5 store keeps it: NUL (which ends an HDF5 string) becomes U+FFFD."""
    return text.replace("\x00", "\ufffd")


def thinking_part(text):
    """[begin, end) code points: after the first <think> (else from 0) to the first </think> after it (else the end)."""
    open_ = text.find("<think>")
    begin = 0 if open_ < 0 else open_ + len("<think>")
    close = text.find("</think>", begin)
    return begin, len(text) if close < 0 else close


def byte_decoder():
    """GPT-2's byte-level alphabet, reversed: token character -> byte."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), ord("ÿ") + 1))
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + n)] = b
            n += 1
    return table


def lossy_chars(data):
    """[(first byte, end byte)] of each character of `data` decoded as UTF-8 with every maximal invalid
    subpart one U+FFFD (Rust's from_utf8_lossy, which the decode follows), and the decoded text."""
    spans, text, i = [], [], 0
    while i < len(data):
        b = data[i]
        n, lo, hi = ((1, 0x80, 0xBF) if b < 0x80 else (2, 0x80, 0xBF) if 0xC2 <= b <= 0xDF else (3, 0xA0, 0xBF) if b == 0xE0 else
                     (3, 0x80, 0x9F) if b == 0xED else (3, 0x80, 0xBF) if 0xE1 <= b <= 0xEF else (4, 0x90, 0xBF) if b == 0xF0 else
                     (4, 0x80, 0xBF) if 0xF1 <= b <= 0xF3 else (4, 0x80, 0x8F) if b == 0xF4 else (0, 0, 0))
        j = i + 1  # n = 0: a byte that starts no character
        while j < min(i + n, len(data)):
            low, high = (lo, hi) if j == i + 1 else (0x80, 0xBF)
            if not low <= data[j] <= high:
                break
            j += 1
        text.append(data[i:j].decode() if j == i + n else "\ufffd")
        spans.append((i, j))
        i = j
    return spans, "".join(text)


def check_token_ranges(tok, g, rows, data):
    """token_begin / token_end of the trace's rows from the generated tokens' bytes: the token holding
    a character is the one holding its first byte (the text ends after the last token)."""
    decoder, added = byte_decoder(), {i: t.content for i, t in tok.get_added_tokens_decoder().items()}
    pieces = [added[i].encode() if i in added else bytes(decoder[c] for c in tok.id_to_token(i)) for i in g["token_ids"]]
    spans, text = lossy_chars(b"".join(pieces))
    assert text == g["text"]
    first_byte = [b for b, _ in spans] + [sum(len(p) for p in pieces)]
    starts = np.cumsum([0] + [len(p) for p in pieces])
    n_prompt = len(tok.encode(g["prompt_text"], add_special_tokens=False).ids)
    token = lambda c: n_prompt + int(np.searchsorted(starts, first_byte[c], side="right")) - 1  # noqa: E731
    for r in rows:
        cb, ce = int(data["sentences/char_begin"][r]), int(data["sentences/char_end"][r])
        assert (data["sentences/token_begin"][r], data["sentences/token_end"][r]) == (token(cb), token(ce)), r


def test_texts_ranges_and_labels(demo_model, base, layouts):
    data, attrs = read_file(layouts["one"][0] / "sentences" / "sentences.h5")
    prov = json.loads(attrs["provenance"])
    tok = Tokenizer.from_file(str(demo_model / "tokenizer.json"))
    gens = rows_of(base / "generate" / "generations.jsonl")
    assert attrs["n_traces"] == len(gens)
    texts = np.array([t.decode() for t in data["sentences/text"]])
    trace, cb, ce = data["sentences/trace"], data["sentences/char_begin"], data["sentences/char_end"]
    assert list(trace) == sorted(trace)
    compared = 0
    for i, g in enumerate(gens):
        rows = np.nonzero(trace == i)[0]
        assert all(data["sentences/trace_id"][r].decode() == g["id"] for r in rows)
        begin, end = thinking_part(g["text"])
        last = begin
        for r in rows:
            assert as_stored(g["text"][cb[r]:ce[r]]) == texts[r] and len(texts[r].split()) >= 3, r
            assert last <= cb[r] < ce[r] <= end, r
            last = ce[r]
        part = g["text"][begin:end]
        if '"' not in part and not re.search("[\x1c-\x1f]", part) and not prov["skipped"]:
            assert list(texts[rows]) == [as_stored(t) for t in split_sentences(part)], i
            compared += 1
        check_token_ranges(tok, g, rows, data)
    assert compared >= 1
    with h5py.File(base / "annotate" / "spans.h5", "r") as f:
        names = list(f["labels"].asstr()[()])
        spans = {(int(t), int(b), int(e)): names[k] for t, b, e, k in zip(*(f["spans"][c][()] for c in ("trace", "char_begin", "char_end", "label")))}
    labels = [t.decode() for t in data["sentences/label"]]
    assert [spans.get((int(trace[r]), int(cb[r]), int(ce[r])), "") for r in range(len(trace))] == labels
    assert any(labels)


def test_rerun_skips(binary, demo_model, layouts):
    run_dir, _ = layouts["one"]
    out = run_dir / "sentences" / "sentences.h5"
    done = Path(str(out) + ".done")
    before = (out.stat().st_mtime_ns, done.stat().st_mtime_ns, done.read_text())
    proc = run(binary, 1, "sentences", run_dir, "--model.path", str(demo_model), "--sentences.reference", str(run_dir / "annotate" / "spans.h5"), *SENTENCES)
    assert "is complete for this config" in proc.stdout + proc.stderr
    assert (out.stat().st_mtime_ns, done.stat().st_mtime_ns, done.read_text()) == before


@pytest.mark.parametrize("args, needles", [
    (["--sentences.generations", "/nonexistent/generations.jsonl"], ["/nonexistent/generations.jsonl", "sentences.generations"]),
    (["--sentences.layers", "0,99"], ["sentences.layers", "99"]),
])
def test_bad_input(binary, demo_model, base, tmp_path, args, needles):
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    proc = run(binary, 1, "sentences", tmp_path, "--model.path", str(demo_model), *args, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if all(n in line for n in needles)]
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert not (tmp_path / "sentences" / "sentences.h5").exists()
    assert not (tmp_path / "sentences" / "sentences.h5.done").exists()


@pytest.mark.parametrize("case, field", [
    ("missing_dataset", "/layer_1/norm"),
    ("wrong_shape", "/sentences/token_end"),
    ("wrong_format", "format"),
])
def test_reader_refuses_a_damaged_file(binary, layouts, tmp_path, case, field):
    """artifacts/sentences.h's reader, through its consumer (`thinksteer taxonomy`): exit 2, one line
    naming the file and the field."""
    path = tmp_path / "sentences.h5"
    shutil.copyfile(layouts["one"][0] / "sentences" / "sentences.h5", path)
    with h5py.File(path, "r+") as f:
        if case == "missing_dataset":
            del f["layer_1/norm"]
        elif case == "wrong_shape":
            del f["sentences/token_end"]
            f["sentences/token_end"] = np.zeros(3, dtype=np.int64)
        else:
            f.attrs["format"] = "thinksteer.spans"
    proc = run(binary, 1, "taxonomy", tmp_path / "run", "--taxonomy.sentences", str(path), "--taxonomy.clusters", "2",
               "--taxonomy.methods", "kmeans", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if str(path) in line and field in line]
    assert len(lines) == 1, proc.stdout + proc.stderr
