"""`thinksteer toy eval` end to end: hand-made generations.jsonl built from the corpus's own traces.

Run by CTest (cli_toy_eval) with --thinksteer PATH, or by hand with THINKSTEER_BIN set.
"""
import json
import subprocess

LABELS = ["initializing", "deduction", "adding-knowledge", "example-testing", "uncertainty-estimation", "backtracking"]


def run(binary, *args):
    return subprocess.run([binary, "toy", *args], capture_output=True, text=True, timeout=120)


def corpus(binary, run_dir, *args):
    r = run(binary, "corpus", "--run.dir", str(run_dir), *args)
    assert r.returncode == 0, r.stderr
    with open(run_dir / "toy" / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def generation(row):
    """What `thinksteer generate` writes for a model that reproduces the trace: the prompt ends with
    "<think>\\n", so the generated thinking is the text after it up to </think>."""
    text = row["text"]
    close = text.index("</think>")
    return {"id": row["id"], "prompt": row["question"], "text": text[len("<think>\n"):], "thinking": text[len("<think>\n"):close],
            "answer_text": text[close + len("</think>"):], "thinking_closed": True, "finish_reason": "eos",
            "reference_answer": row["answer"]}


def write_generations(run_dir, rows):
    (run_dir / "generate").mkdir(parents=True, exist_ok=True)
    path = run_dir / "generate" / "generations.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def evaluate(binary, run_dir, *args):
    r = run(binary, "eval", "--run.dir", str(run_dir), *args)
    assert r.returncode == 0, r.stderr
    return json.loads((run_dir / "toy" / "eval.json").read_text()), r


def test_corpus_traces_reproduce_the_corpus(binary, tmp_path):
    rows = corpus(binary, tmp_path, "--toy.n_problems", "300")
    train = [row for row in rows if row["split"] == "train"]
    write_generations(tmp_path, [generation(row) for row in train])
    report, r = evaluate(binary, tmp_path, "--toy.n_problems", "300")
    assert report["stage"] == "toy eval" and report["style"] == "thinker"
    assert report["provenance"]["git_commit"] and "config_sha256" in report["provenance"]
    assert report["n"] == len(train) == report["corpus"]["problems"]
    assert report["closed_rate"] == report["parseable_rate"] == report["accuracy"] == 1.0
    assert report["unlabelled_share"] == 0.0
    assert report["max_abs_diff_pp"] == 0.0
    assert set(report["labels"]) == set(LABELS)
    n_sentences = sum(len(row["sentences"]) for row in train)
    assert report["sentences"] == report["corpus"]["sentences"] == n_sentences
    for label in LABELS:
        planted = sum(s["label"] == label for row in train for s in row["sentences"])
        assert report["labels"][label]["generated_sentences"] == report["labels"][label]["corpus_sentences"] == planted
        assert report["labels"][label]["diff_pp"] == 0.0
    assert [row["id"] for row in report["rows"]] == [row["id"] for row in train]
    assert "backtracking" in r.stderr and "accuracy 100.0%" in r.stderr

    # The test split's traces are another sample of the same rules: close, not equal.
    test = [row for row in rows if row["split"] == "test"]
    write_generations(tmp_path, [generation(row) for row in test])
    report, _ = evaluate(binary, tmp_path, "--toy.n_problems", "300")
    assert report["n"] == len(test) and report["accuracy"] == 1.0
    assert 0 < report["max_abs_diff_pp"] < 10


def test_base_style_and_model_mistakes(binary, tmp_path):
    rows = corpus(binary, tmp_path, "--toy.n_problems", "200", "--toy.style", "base")
    gens = [generation(row) for row in rows if row["split"] == "train"]
    wrong = sum(row["final_answer"] != row["answer"] for row in rows if row["split"] == "train")
    gens[0]["thinking_closed"] = False  # ran out of tokens
    gens[0]["answer_text"] = ""
    gens[1]["thinking"] += " The moon is made of cheese."
    write_generations(tmp_path, gens)
    report, _ = evaluate(binary, tmp_path, "--toy.n_problems", "200", "--toy.style", "base")
    assert report["style"] == "base"
    assert report["n_closed"] == report["n_parseable"] == len(gens) - 1
    assert report["rows"][0]["closed"] is False and report["rows"][0]["answer"] is None
    assert report["rows"][1]["unlabelled"] == 1
    assert report["corpus"]["accuracy"] < 0.85
    assert len(gens) - 1 - wrong <= report["n_correct"] <= len(gens) - wrong
    assert report["labels"]["backtracking"]["corpus_share"] == 0.0


def test_bad_input(binary, tmp_path):
    r = run(binary, "eval", "--run.dir", str(tmp_path))
    assert r.returncode == 2 and "generations.jsonl" in r.stderr and "generate" in r.stderr
    good = {"id": "toy-000001", "thinking": "Okay, so I need to find it.", "answer_text": "\\boxed{3}", "thinking_closed": True,
            "reference_answer": "3"}
    path = write_generations(tmp_path, [good])
    path.write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    r = run(binary, "eval", "--run.dir", str(tmp_path))
    assert r.returncode == 2 and "generations.jsonl:2" in r.stderr, r.stderr
    for field in ("thinking", "thinking_closed", "reference_answer"):
        row = dict(good)
        del row[field]
        write_generations(tmp_path, [good, row])
        r = run(binary, "eval", "--run.dir", str(tmp_path))
        assert r.returncode == 2 and "generations.jsonl:2" in r.stderr and field in r.stderr, (field, r.stderr)
    write_generations(tmp_path, [dict(good, reference_answer="")])
    r = run(binary, "eval", "--run.dir", str(tmp_path))
    assert r.returncode == 2 and "reference_answer" in r.stderr and "builtin:toy-test" in r.stderr
    write_generations(tmp_path, [])
    r = run(binary, "eval", "--run.dir", str(tmp_path))
    assert r.returncode == 2 and "no generations" in r.stderr
    assert not (tmp_path / "toy" / "eval.json").exists()
