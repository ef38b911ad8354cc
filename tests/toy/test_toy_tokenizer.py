"""`thinksteer toy tokenizer` end to end, checked against HF `tokenizers`: the written tokenizer.json
loads in HF with the vocabulary size we report, HF round-trips every corpus text, and HF's ids equal
ours for the texts in sample_encodings.jsonl (our ids, written by the stage from the C++ tokenizer).

Run by CTest (cli_toy_tokenizer) with --thinksteer PATH, or by hand with THINKSTEER_BIN set.
"""
import json
import subprocess

import pytest

SPECIAL = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]
ADDED = ["<think>", "</think>"]


def run(binary, stage, *args):
    return subprocess.run([binary, "toy", stage, *args], capture_output=True, text=True, timeout=120)


def r1_prompt(question):
    return f"{SPECIAL[0]}{SPECIAL[2]}{question}{SPECIAL[3]}<think>\n"


def test_tokenizer_matches_hf_tokenizers(binary, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    args = ["--run.dir", str(tmp_path), "--toy.n_problems", "300"]
    r = run(binary, "corpus", *args)
    assert r.returncode == 0, r.stderr
    r = run(binary, "tokenizer", *args)
    assert r.returncode == 0, r.stderr
    assert "read 300 problems" in r.stderr  # used the corpus file, whose marker matches
    out = tmp_path / "toy" / "tokenizer"
    assert (out / "tokenizer.json.done").exists()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["stage"] == "toy tokenizer"
    assert 256 + 6 < prov["vocab_size"] <= 1024
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert (config["bos_token"], config["eos_token"]) == (SPECIAL[0], SPECIAL[1])

    tok = tokenizers.Tokenizer.from_file(str(out / "tokenizer.json"))
    assert tok.get_vocab_size() == prov["vocab_size"]
    # Added tokens take the last ids; the R1 chat markers are special, <think> and </think> are not.
    for i, token in enumerate(SPECIAL + ADDED):
        assert tok.token_to_id(token) == prov["vocab_size"] - 6 + i
    specials = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    assert specials == set(SPECIAL)

    rows = [json.loads(line) for line in (tmp_path / "toy" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in rows:
        for text in (r1_prompt(row["question"]), row["text"]):
            ids = tok.encode(text).ids
            assert tok.decode(ids, skip_special_tokens=False) == text

    samples = [json.loads(line) for line in (out / "sample_encodings.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(samples) >= 20
    for s in samples:
        assert tok.encode(s["text"]).ids == s["ids"], s["text"]
    assert sum(len(s["text"]) for s in samples) / sum(len(s["ids"]) for s in samples) > 2

    again = run(binary, "tokenizer", *args)
    assert again.returncode == 0, again.stderr
    assert "skipping" in again.stderr
