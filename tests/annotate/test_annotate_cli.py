"""`thinksteer annotate` end to end, under mpiexec.

- 1, 2 and 3 ranks write identical files (every dataset, spans.jsonl, problems.jsonl).
- spans.h5 opens in h5py with the documented names, shapes, dtypes, dimension scales and attributes;
  on toy corpus rows the spans are exactly the planted sentences and >= 98% carry the planted label.
- Token ranges: [first token overlapping the span, one past the last one) against HF `tokenizers`:
  in text mode tokenizer(text)'s offsets; in generation mode (generations.jsonl rows with token_ids)
  the sequence prompt tokens + generated tokens, the generated tokens' characters derived
  independently from their bytes.
- Nothing is skipped silently (problems.jsonl); a rerun skips; bad input exits 2 with a message
  naming the file and the field, and leaves nothing that looks valid.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import ENV, binary, demo_model  # noqa: E402,F401  (fixtures)
LABELS = ["initializing", "deduction", "adding-knowledge", "example-testing", "uncertainty-estimation", "backtracking"]
SPAN_SETS = ["trace", "label", "char_begin", "char_end"]
TRACE_SETS = ["span_offset", "n_spans", "part_begin", "part_end", "n_sentences", "n_problems"]


@pytest.fixture(scope="module")
def corpus(binary, tmp_path_factory):
    """60 toy corpus rows (thinker style): text with <think>...</think> and the planted sentences."""
    run_dir = tmp_path_factory.mktemp("corpus")
    subprocess.run([binary, "toy", "corpus", "--toy.n_problems", "60", "--run.dir", str(run_dir)], check=True, capture_output=True)
    return run_dir / "toy" / "corpus.jsonl"


def rows_of(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def annotate(binary, ranks, run_dir, *extra, check=True):
    cmd = ["mpiexec", "-n", str(ranks), binary, "annotate", "--run.dir", str(run_dir), "--log.progress_seconds", "0.01", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=ENV, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def read_spans(run_dir):
    with h5py.File(Path(run_dir) / "annotate" / "spans.h5", "r") as f:
        out = {f"spans/{k}": f["spans"][k][()] for k in f["spans"] if k != "span"}
        out.update({f"traces/{k}": f["traces"][k][()] for k in f["traces"] if k not in ("trace", "id")})
        out["traces/id"] = list(f["traces/id"].asstr()[()])
        out["labels"] = list(f["labels"].asstr()[()])
        out["attrs"] = dict(f.attrs)
    return out


def spans_of(h, i):
    """(char_begin, char_end, label name, token_begin, token_end) of trace i."""
    b, n = int(h["traces/span_offset"][i]), int(h["traces/n_spans"][i])
    rows = []
    for r in range(b, b + n):
        assert h["spans/trace"][r] == i
        tb = int(h["spans/token_begin"][r]) if "spans/token_begin" in h else None
        te = int(h["spans/token_end"][r]) if "spans/token_end" in h else None
        rows.append((int(h["spans/char_begin"][r]), int(h["spans/char_end"][r]), h["labels"][h["spans/label"][r]], tb, te))
    return rows


def assert_same_outputs(a, b):
    ha, hb = read_spans(a), read_spans(b)
    assert ha.keys() == hb.keys()
    for k in ha:
        if k != "attrs":
            np.testing.assert_array_equal(ha[k], hb[k], err_msg=k)
    for name in ("spans.jsonl", "problems.jsonl"):
        assert (Path(a) / "annotate" / name).read_text() == (Path(b) / "annotate" / name).read_text(), name


def assert_nothing_valid(run_dir):
    out = Path(run_dir) / "annotate"
    for name in ("spans.h5", "spans.h5.done", "spans.jsonl", "problems.jsonl"):
        assert not (out / name).exists(), name


def test_ranks_agree_layout_and_planted_labels(binary, corpus, tmp_path):
    for ranks in (1, 2, 3):
        annotate(binary, ranks, tmp_path / f"np{ranks}", "--annotate.input", str(corpus))
    assert_same_outputs(tmp_path / "np1", tmp_path / "np2")
    assert_same_outputs(tmp_path / "np1", tmp_path / "np3")

    rows = rows_of(corpus)
    h = read_spans(tmp_path / "np2")
    n, s = len(rows), len(h["spans/trace"])
    assert h["attrs"]["format"] == "thinksteer.spans" and h["attrs"]["stage"] == "annotate"
    assert h["attrs"]["token_sequence"] == "none" and h["attrs"]["annotator"] == "lexicon" and h["attrs"]["part"] == "thinking"
    assert h["attrs"]["world_size"] == 2
    assert h["labels"] == LABELS and h["traces/id"] == [r["id"] for r in rows]
    assert "spans/token_begin" not in h  # no tokenizer, no token ranges
    for k in SPAN_SETS:
        assert h[f"spans/{k}"].shape == (s,), k
    for k in TRACE_SETS:
        assert h[f"traces/{k}"].shape == (n,), k
    assert h["spans/label"].dtype == np.int32 and h["spans/char_begin"].dtype == np.int64
    assert list(h["traces/span_offset"]) == list(np.concatenate([[0], np.cumsum(h["traces/n_spans"])[:-1]]))
    with h5py.File(tmp_path / "np2" / "annotate" / "spans.h5", "r") as f:
        assert f["spans/char_begin"].dims[0][0].name == "/spans/span"
        assert f["traces/n_spans"].dims[0][0].name == "/traces/trace"
        assert f["spans/char_end"].attrs["units"] == "code points of the trace text"
        assert json.loads(f.attrs["provenance"])["stage"] == "annotate"

    # The spans are the planted sentences (same code-point ranges), and the labels agree.
    agree, total, per_label = 0, 0, {}
    for i, row in enumerate(rows):
        got = spans_of(h, i)
        assert [(b, e) for b, e, *_ in got] == [(x["begin"], x["end"]) for x in row["sentences"]], row["id"]
        think = row["text"].index("<think>") + len("<think>")
        assert h["traces/part_begin"][i] == think and h["traces/part_end"][i] == row["text"].index("</think>")
        for (b, e, label, _, _), x in zip(got, row["sentences"]):
            total += 1
            agree += label == x["label"]
            hit, count = per_label.get(x["label"], (0, 0))
            per_label[x["label"]] = (hit + (label == x["label"]), count + 1)
    print("planted-label agreement:", {k: f"{h_}/{c}" for k, (h_, c) in per_label.items()})
    assert agree >= 0.98 * total and total > 300

    # Human-readable copy: one line per trace, the span texts are the planted sentences' texts.
    lines = rows_of(tmp_path / "np2" / "annotate" / "spans.jsonl")
    assert [l["id"] for l in lines] == [r["id"] for r in rows]
    assert lines[0]["spans"][0]["text"] == rows[0]["text"][rows[0]["sentences"][0]["begin"]:rows[0]["sentences"][0]["end"]]
    assert (tmp_path / "np2" / "annotate" / "problems.jsonl").read_text() == ""
    prov = json.loads((tmp_path / "np2" / "annotate" / "provenance.json").read_text())
    assert prov["traces"] == n and prov["spans"] == s and sum(prov["summary"]["spans_per_label"].values()) == s

    # A rerun skips; another lexicon means redoing the work.
    before = (tmp_path / "np2" / "annotate" / "spans.h5").stat().st_mtime_ns
    proc = annotate(binary, 2, tmp_path / "np2", "--annotate.input", str(corpus))
    assert "complete for this config" in proc.stderr
    assert (tmp_path / "np2" / "annotate" / "spans.h5").stat().st_mtime_ns == before
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("default = deduction\n[backtracking]\n\\bwait\\b\n")
    proc = annotate(binary, 2, tmp_path / "np2", "--annotate.input", str(corpus), "--annotate.lexicon", str(lexicon))
    assert "complete for this config" not in proc.stderr
    assert set(read_spans(tmp_path / "np2")["spans/label"]) <= {1, 5}


def overlapping(offsets, b, e):
    """[first token overlapping [b, e), one past the last), by the rule ce > b and cb < e; (-1, -1) if none."""
    hits = [t for t, (cb, ce) in enumerate(offsets) if ce > b and cb < e]
    return (hits[0], hits[-1] + 1) if hits else (-1, -1)


def tokenizer_dirs(request, demo_model):
    dirs = [demo_model]
    toy = request.config.getoption("--toy-model")
    if toy and (Path(toy) / "tokenizer.json").exists():
        dirs.append(Path(toy))
    return dirs


def test_token_ranges_text_mode(binary, corpus, demo_model, request, tmp_path):
    rows = rows_of(corpus)
    for k, model in enumerate(tokenizer_dirs(request, demo_model)):
        run_dir = tmp_path / f"m{k}"
        annotate(binary, 2, run_dir, "--annotate.input", str(corpus), "--model.path", str(model))
        h = read_spans(run_dir)
        assert h["attrs"]["token_sequence"] == "text"
        tok = Tokenizer.from_file(str(model / "tokenizer.json"))
        for i, row in enumerate(rows):
            enc = tok.encode(row["text"])  # with the tokenizer's special tokens, as HF tokenizer(text)
            assert h["traces/n_tokens"][i] == len(enc.ids) and h["traces/n_prompt_tokens"][i] == 0
            for b, e, _, tb, te in spans_of(h, i):
                assert (tb, te) == overlapping(enc.offsets, b, e), (model.name, row["id"], b, e)


def byte_decoder():
    """GPT-2's byte-level alphabet, reversed: the character a byte is written as -> the byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def generated_offsets(tok, ids, base):
    """Code-point ranges of generated tokens: every character a token contributes bytes to."""
    dec, added = byte_decoder(), {t.content for t in tok.get_added_tokens_decoder().values()}
    pieces = []
    for t in ids:
        s = tok.id_to_token(t)
        pieces.append(s.encode() if s in added else bytes(dec[c] for c in s))
    data = b"".join(pieces)
    char_of = []  # byte -> code point index
    c = -1
    for byte in data:
        c += (byte & 0xC0) != 0x80
        char_of.append(c)
    out, pos = [], 0
    for p in pieces:
        out.append((base + char_of[pos], base + char_of[pos + len(p) - 1] + 1) if p else (base + c + 1, base + c + 1))
        pos += len(p)
    return out, data.decode()


def generations_from_corpus(rows, tok):
    """generations.jsonl rows as `generate` writes them: the R1 prompt (ending in <think>\\n) and the
    trace after it as token_ids, text = their decoding."""
    out = []
    for r in rows:
        prompt_text = "<｜begin▁of▁sentence｜><｜User｜>" + r["question"] + "<｜Assistant｜><think>\n"
        ids = tok.encode(r["text"][len("<think>\n"):], add_special_tokens=False).ids
        out.append({"id": r["id"], "prompt": r["question"], "prompt_text": prompt_text, "token_ids": ids,
                    "text": tok.decode(ids, skip_special_tokens=False), "thinking_closed": True})
    return out


def test_token_ranges_generation_mode(binary, corpus, demo_model, request, tmp_path):
    rows = rows_of(corpus)
    for k, model in enumerate(tokenizer_dirs(request, demo_model)):
        tok = Tokenizer.from_file(str(model / "tokenizer.json"))
        gens = generations_from_corpus(rows, tok)
        for ranks in (1, 2):
            run_dir = tmp_path / f"m{k}" / f"np{ranks}"
            (run_dir / "generate").mkdir(parents=True)
            (run_dir / "generate" / "generations.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
            annotate(binary, ranks, run_dir, "--model.path", str(model))  # default input and text_field
        assert_same_outputs(tmp_path / f"m{k}" / "np1", tmp_path / f"m{k}" / "np2")
        h = read_spans(tmp_path / f"m{k}" / "np2")
        assert h["attrs"]["token_sequence"] == "generation"
        for i, (g, row) in enumerate(zip(gens, rows)):
            prompt = tok.encode(g["prompt_text"], add_special_tokens=False)
            gen, decoded = generated_offsets(tok, g["token_ids"], len(g["prompt_text"]))
            assert decoded == g["text"]
            offsets = list(prompt.offsets) + gen
            assert h["traces/n_prompt_tokens"][i] == len(prompt.ids) and h["traces/n_tokens"][i] == len(offsets)
            got = spans_of(h, i)
            # The thinking starts at code point 0 of the generated text (the prompt holds <think>).
            assert [(b, e) for b, e, *_ in got] == [(x["begin"] - 8, x["end"] - 8) for x in row["sentences"]]
            for b, e, _, tb, te in got:
                assert (tb, te) == overlapping(offsets, len(g["prompt_text"]) + b, len(g["prompt_text"]) + e), (model.name, g["id"], b, e)
                assert len(prompt.ids) <= tb < te


def test_token_ranges_index_the_sequences_collect_runs(binary, corpus, demo_model, tmp_path):
    """`collect` with source = generations runs the same token sequences: same lengths, and a span's
    token range is exactly the tokens whose stored character range overlaps the span."""
    tok = Tokenizer.from_file(str(demo_model / "tokenizer.json"))
    gens = generations_from_corpus(rows_of(corpus)[:12], tok)
    (tmp_path / "generate").mkdir()
    (tmp_path / "generate" / "generations.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
    annotate(binary, 2, tmp_path, "--model.path", str(demo_model))
    cmd = ["mpiexec", "-n", "2", binary, "collect", "--run.dir", str(tmp_path), "--model.path", str(demo_model), "--collect.source",
           "generations", "--collect.hooks", "blocks.0.hook_resid_post", "--log.progress_seconds", "0.01"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    h = read_spans(tmp_path)
    with h5py.File(tmp_path / "collect" / "activations.h5", "r") as f:
        n_tokens, n_prompt = f["sequences/n_tokens"][()], f["sequences/n_prompt_tokens"][()]
        first, cb, ce = f["sequences/token_offset"][()], f["tokens/char_begin"][()], f["tokens/char_end"][()]
    np.testing.assert_array_equal(h["traces/n_tokens"], n_tokens)
    np.testing.assert_array_equal(h["traces/n_prompt_tokens"], n_prompt)
    for i, g in enumerate(gens):
        offsets = list(zip(cb[first[i]:first[i] + n_tokens[i]], ce[first[i]:first[i] + n_tokens[i]]))
        spans = spans_of(h, i)
        assert spans
        for b, e, _, tb, te in spans:
            assert (tb, te) == overlapping(offsets, len(g["prompt_text"]) + b, len(g["prompt_text"]) + e)


def test_skipped_work_is_recorded(binary, tmp_path):
    lexicon = tmp_path / "lex.txt"
    lexicon.write_text("# no default: unmatched sentences stay unlabelled\n[backtracking]\n\\bwait\\b\n")
    traces = [
        {"id": "a", "text": "<think>\nWait, that is wrong here. The sum is four in total. Hmm.\n</think> 4"},
        {"id": "b", "text": "<think>\n \n</think> The answer is 4."},
        {"id": 7, "text": "no tags at all. Wait, this whole text is thinking."},
    ]
    data = tmp_path / "traces.jsonl"
    data.write_text("".join(json.dumps(t) + "\n" for t in traces))
    annotate(binary, 2, tmp_path / "run", "--annotate.input", str(data), "--annotate.lexicon", str(lexicon))
    h = read_spans(tmp_path / "run")
    assert h["traces/id"] == ["a", "b", "7"]
    assert list(h["traces/n_spans"]) == [1, 0, 1] and list(h["traces/n_problems"]) == [2, 1, 1]
    assert spans_of(h, 0) == [(8, 33, "backtracking", None, None)]
    problems = rows_of(tmp_path / "run" / "annotate" / "problems.jsonl")
    assert [(p["id"], p["kind"]) for p in problems] == [("a", "unlabelled_sentence"), ("a", "short_fragment"), ("b", "no_thinking"),
                                                      ("7", "unlabelled_sentence")]
    assert problems[0]["text"] == "The sum is four in total." and problems[1]["text"] == "Hmm."
    prov = json.loads((tmp_path / "run" / "annotate" / "provenance.json").read_text())
    assert prov["summary"]["problems_per_kind"] == {"unlabelled_sentence": 2, "short_fragment": 1, "no_thinking": 1}
    assert prov["summary"]["traces_without_spans"] == 1


def write_lines(path, lines):
    path.write_bytes(b"".join(l if isinstance(l, bytes) else (l + "\n").encode() for l in lines))
    return path


GOOD = json.dumps({"id": "x", "text": "<think>\nLet me check this step.\n</think>"})


@pytest.mark.parametrize("case,lines,needles", [
    ("malformed_line", [GOOD, '{"id": "y", "text": '], [":2", "not valid JSON"]),
    ("missing_text", [GOOD, json.dumps({"id": "y", "txt": "hello"})], [":2", "text", "missing required field"]),
    ("text_not_string", [json.dumps({"id": "y", "text": 5})], [":1", "text", "expected a string"]),
    ("missing_id", [json.dumps({"text": "a b c."})], [":1", "id", "missing required field"]),
    ("duplicate_id", [GOOD, GOOD], [":2", "id", "duplicate id 'x'"]),
    ("invalid_utf8", [GOOD, b'{"id": "y", "text": "bad \xff byte here."}\n'], [":2", "UTF-8"]),
    ("empty_file", [], ["annotate.input", "no traces"]),
])
@pytest.mark.parametrize("ranks", [1, 2])
def test_bad_traces(binary, tmp_path, case, lines, needles, ranks):
    data = write_lines(tmp_path / "traces.jsonl", lines)
    proc = annotate(binary, ranks, tmp_path / "run", "--annotate.input", str(data), check=False)
    assert proc.returncode == 2, proc.stderr
    assert str(data) in proc.stderr and all(n in proc.stderr for n in needles), proc.stderr
    assert_nothing_valid(tmp_path / "run")


def test_bad_files_and_options(binary, tmp_path, demo_model):
    data = write_lines(tmp_path / "traces.jsonl", [GOOD])
    proc = annotate(binary, 1, tmp_path / "run", check=False)  # default input: no generate run yet
    assert proc.returncode == 2 and "generations.jsonl" in proc.stderr and "annotate.input" in proc.stderr, proc.stderr
    lexicon = write_lines(tmp_path / "lex.txt", ["[backtracking]", "wait", "[musing]", "hmm"])
    proc = annotate(binary, 2, tmp_path / "run", "--annotate.input", str(data), "--annotate.lexicon", str(lexicon), check=False)
    assert proc.returncode == 2 and f"{lexicon}: line 3: unknown label 'musing'" in proc.stderr, proc.stderr
    lexicon = write_lines(tmp_path / "lex.txt", ["[backtracking]", "wait(", "[deduction]", "so"])
    proc = annotate(binary, 1, tmp_path / "run", "--annotate.input", str(data), "--annotate.lexicon", str(lexicon), check=False)
    assert proc.returncode == 2 and f"{lexicon}: line 2: regex does not compile" in proc.stderr, proc.stderr
    proc = annotate(binary, 1, tmp_path / "run", "--annotate.input", str(data), "--annotate.lexicon", str(tmp_path / "none.txt"), check=False)
    assert proc.returncode == 2 and "none.txt" in proc.stderr, proc.stderr
    for key, value in (("annotate.part", "answer"), ("annotate.annotator", "oracle")):
        proc = annotate(binary, 1, tmp_path / "run", "--annotate.input", str(data), f"--{key}", value, check=False)
        assert proc.returncode == 2 and key in proc.stderr, proc.stderr
    # Generation rows whose text is not the decoding of their token ids, or with a foreign token id.
    tok = Tokenizer.from_file(str(demo_model / "tokenizer.json"))
    ids = tok.encode("Let me check this step.").ids
    row = {"id": "g", "prompt_text": "Q: <think>\n", "token_ids": ids, "text": "Let me check this other step."}
    gens = write_lines(tmp_path / "gens.jsonl", [json.dumps(row)])
    proc = annotate(binary, 2, tmp_path / "run", "--annotate.input", str(gens), "--model.path", str(demo_model), check=False)
    assert proc.returncode == 2 and f"{gens}:1: text: is not the decoding of token_ids" in proc.stderr, proc.stderr
    row.update(text=tok.decode(ids), token_ids=ids + [10 ** 6])
    write_lines(gens, [json.dumps(row)])
    proc = annotate(binary, 1, tmp_path / "run", "--annotate.input", str(gens), "--model.path", str(demo_model), check=False)
    assert proc.returncode == 2 and f"{gens}:1: token_ids: not a token id" in proc.stderr, proc.stderr
    del row["prompt_text"]
    write_lines(gens, [json.dumps(row)])
    proc = annotate(binary, 1, tmp_path / "run", "--annotate.input", str(gens), "--model.path", str(demo_model), check=False)
    assert proc.returncode == 2 and f"{gens}:1: prompt_text: missing required field" in proc.stderr, proc.stderr
    assert_nothing_valid(tmp_path / "run")
