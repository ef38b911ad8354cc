"""`thinksteer toy corpus` end to end: output contract, sentence spans, skip on rerun.

Run by CTest (cli_toy_corpus) with --thinksteer PATH, or by hand with THINKSTEER_BIN set.
"""
import json
import re
import subprocess

import pytest

LABELS = {"initializing", "deduction", "adding-knowledge", "example-testing", "uncertainty-estimation", "backtracking"}


def split_sentences(text):
    """The sentence splitter of docs/algorithms.md §B.3 (protect decimals, X. y abbreviations, k!; split after .!?; and newline)."""
    protected = re.sub(r"(\d+)\.(\d+)", r"\1<DOT>\2", text)
    protected = re.sub(r"\b([A-Za-z])\. (?=[a-z])", r"\1<DOT> ", protected)
    protected = re.sub(r"(\d)!", r"\1<BANG>", protected)  # factorials (k!)
    protected = re.sub(r"([.!?;])\1+", r"\1", protected)
    parts = re.split(r"(?<=[.!?;\n])", protected)
    out = []
    for part in parts:
        s = part.replace("<DOT>", ".").replace("<BANG>", "!").strip()
        if len(s.split()) >= 3:
            out.append(s)
    return out


def run(binary, *args):
    return subprocess.run([binary, "toy", "corpus", *args], capture_output=True, text=True, timeout=120)


def read(run_dir):
    with open(run_dir / "toy" / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_corpus_spans_are_sentences_and_rerun_skips(binary, tmp_path):
    r = run(binary, "--run.dir", str(tmp_path), "--toy.n_problems", "200")
    assert r.returncode == 0, r.stderr
    rows = read(tmp_path)
    assert len(rows) == 200
    assert (tmp_path / "toy" / "corpus.jsonl.done").exists()
    prov = json.loads((tmp_path / "toy" / "provenance.json").read_text())
    assert prov["stage"] == "toy corpus"
    assert set(prov["behaviour_counts"]) == LABELS
    seen = set()
    for row in rows:
        text = row["text"]
        assert text.startswith("<think>\n") and "\n</think>\n\n" in text
        think = text[len("<think>\n"):text.index("\n</think>")]
        spans = [text[s["begin"]:s["end"]] for s in row["sentences"]]  # Python indices are code points
        for s in row["sentences"]:
            assert s["label"] in LABELS
            seen.add(s["label"])
        # The labelled spans are exactly the sentences the §B.3 splitter finds in the thinking text.
        assert spans == split_sentences(think), row["id"]
        final = text[row["answer_begin"]:row["answer_end"]]
        assert "\\boxed{" + row["final_answer"] + "}" in final
        assert row["final_answer"] == row["answer"]  # thinker style corrects every slip
        assert row["split"] in ("train", "test")
    assert seen == LABELS

    again = run(binary, "--run.dir", str(tmp_path), "--toy.n_problems", "200")
    assert again.returncode == 0, again.stderr
    assert "skipping" in again.stderr
    assert read(tmp_path) == rows

    # Another config regenerates; the 100 problems are a prefix of the 200.
    other = run(binary, "--run.dir", str(tmp_path), "--toy.n_problems", "100")
    assert other.returncode == 0, other.stderr
    assert "skipping" not in other.stderr
    assert read(tmp_path) == rows[:100]


def test_base_style_and_bad_options(binary, tmp_path):
    r = run(binary, "--run.dir", str(tmp_path), "--toy.n_problems", "300", "--toy.style", "base")
    assert r.returncode == 0, r.stderr
    rows = read(tmp_path)
    labels = {s["label"] for row in rows for s in row["sentences"]}
    assert not labels & {"backtracking", "uncertainty-estimation"}
    wrong = sum(row["final_answer"] != row["answer"] for row in rows)
    assert 0.15 < wrong / len(rows) < 0.5  # slips stay (defaults: about a third of the answers are wrong)
    assert all(row["slip_uncorrected"] == (row["final_answer"] != row["answer"]) for row in rows)
    assert all(row["slip"] for row in rows if row["slip_uncorrected"])
    for args in (["--toy.style", "chatty"], ["--toy.slip_rate", "2"], ["--toy.max_steps", "5"], ["--toy.n_problems", "0"],
                 ["--toy.cue_levels", "true", "--toy.soft_gates", "0.2"], ["--toy.plain_echoes", "true"],
                 ["--toy.thinker_corrects", "1.5"], ["--toy.thinker_corrects", "0.5", "--toy.dispositions", "0.5"],
                 ["--toy.rechecks", "-0.1"], ["--toy.echo_again", "0.4"]):
        bad = run(binary, "--run.dir", str(tmp_path / "bad"), *args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert args[0].lstrip("-") in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_toy_help(binary):
    r = subprocess.run([binary, "toy", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "toy corpus" in r.stdout and "toy eval" in r.stdout
    r = subprocess.run([binary, "toy", "corpus", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--toy.slip_rate" in r.stdout
    r = subprocess.run([binary, "toy", "nope"], capture_output=True, text=True)
    assert r.returncode == 2
