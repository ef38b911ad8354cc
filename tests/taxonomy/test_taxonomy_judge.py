"""The taxonomy's LLM judge (taxonomy.judge = llm; docs/algorithms.md §B.5, §B.6, "The LLM judge") against a
fake OpenAI-compatible endpoint, on the planted sentences (planted_sentences.py: six categories at layer 5,
each sharing a word; noise at layer 2).

The fake judge answers like a careful reader of those sentences: a title prompt gets "Title: Sentences about
<w>" for the word most of the shown sentences hold, the autograder says a sentence belongs when it holds the
title's word, completeness rates 10 for such a sentence and 1 otherwise. Then:
- reduce judges every k-means task (K 4, 6, 8 at layers 2 and 5) and chooses (layer 5, K 6) by the final
  score, which is the mean of avg_f1 and avg_confidence; at layer 5, K 6 both are 1;
- a second reduce asks the endpoint nothing (the judge's records are cached per task);
- `titles` takes the judge's titles (source "llm");
- without an endpoint or a local checkpoint, taxonomy.judge = llm exits 2 naming annotate.llm_endpoint;
- on a local checkpoint (the random-weight demo model) every reply is unusable: counted, no final score, and
  the choice falls back to the reference labels' NMI, saying so.
"""
import csv
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h5py
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from planted_sentences import PLANTED, WORDS, write_planted_sentences  # noqa: E402
from thinksteer_testing import ENV, binary, demo_model  # noqa: E402,F401  (fixtures)

AXES = ["--taxonomy.clusters", "4,6,8", "--taxonomy.methods", "kmeans", "--taxonomy.seeds", "0",
        "--taxonomy.judge_repetitions", "1", "--taxonomy.judge_autograder", "20", "--taxonomy.judge_completeness", "30",
        "--taxonomy.title_examples", "20", "--taxonomy.judge_traces", "1"]


def word_of(text):
    found = [w for w in WORDS if re.search(rf"\b{w}\b", text)]
    return found[0] if found else None


def answer(prompt):
    if "The sentences of the group:" in prompt:
        shown = prompt.split("The sentences of the group:", 1)[1]
        counts = {w: len(re.findall(rf"\babout {w}\b", shown)) for w in WORDS}
        w = max(WORDS, key=lambda x: counts[x])
        return f"Title: Sentences about {w}\nDescription: Each sentence is about {w} things. Sentences about anything else are not."
    title_word = re.search(r"Title: Sentences about (\w+)", prompt).group(1)
    if "Answer with JSON only" in prompt:
        rows = re.findall(r"^Sentence (\d+): (.*)$", prompt, flags=re.M)
        return json.dumps({"classifications": [{"sentence_id": int(i), "explanation": "-", "belongs_to_category": word_of(t) == title_word}
                                               for i, t in rows]})
    sentence = re.search(r"^Sentence: (.*)$", prompt, flags=re.M).group(1)
    return f"Score: {10 if word_of(sentence) == title_word else 1}"


class FakeJudge:
    def __init__(self):
        self.requests = 0
        self.lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with judge.lock:
                    judge.requests += 1
                content = answer(body["messages"][0]["content"])
                data = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                                   "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def judge():
    j = FakeJudge()
    yield j
    j.server.shutdown()


def run(binary, run_dir, sentences, *args, stage=("taxonomy",), check=True):
    cmd = [str(binary), *stage, "--run.dir", str(run_dir), "--taxonomy.sentences", str(sentences), "--run.threads", "1", *AXES, *args]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_the_judge_chooses_the_planted_layer_and_k(binary, judge, tmp_path):
    sentences = tmp_path / "sentences.h5"
    write_planted_sentences(sentences)
    llm = ["--taxonomy.judge", "llm", "--annotate.llm_endpoint", judge.url, "--annotate.llm_model", "fake-judge", "--annotate.llm_retries", "0"]
    run(binary, tmp_path, sentences, *llm)
    with open(tmp_path / "taxonomy" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    [chosen] = [r for r in rows if r["selected"] == "1"]
    assert (int(chosen["layer"]), int(chosen["k"])) == (PLANTED, 6), rows
    assert float(chosen["avg_f1"]) == 1.0 and float(chosen["avg_confidence"]) == 1.0 and float(chosen["final"]) == 1.0
    assert all(float(r["final"]) < 0.95 for r in rows if r is not chosen), rows  # layer 5 K 8: 0.93, K 4: 0.86; layer 2 about 0.2
    assert len(list((tmp_path / "taxonomy" / "judge").glob("*.json"))) == 6
    asked = judge.requests
    run(binary, tmp_path, sentences, *llm, "--sweep.kind", "taxonomy", stage=("reduce",))
    assert judge.requests == asked  # the records are reused
    run(binary, tmp_path, sentences, *llm, stage=("titles",))
    index = json.loads((tmp_path / "titles" / "index.json").read_text())
    doc = json.loads((tmp_path / "titles" / index["tasks"][0]["dir"] / "titles.json").read_text())
    assert doc["source"] == "llm" and sorted(c["title"] for c in doc["clusters"]) == sorted(f"Sentences about {w}" for w in WORDS)


def test_no_endpoint_is_bad_input(binary, tmp_path):
    sentences = tmp_path / "sentences.h5"
    write_planted_sentences(sentences)
    r = run(binary, tmp_path, sentences, "--taxonomy.judge", "llm", "--taxonomy.layers", str(PLANTED), check=False)
    assert r.returncode == 2 and "annotate.llm_endpoint" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "taxonomy" / "summary.h5").exists()


def test_a_local_judge_that_answers_nonsense_is_counted_not_guessed(binary, demo_model, tmp_path):
    """The judge on a local checkpoint (the random-weight demo model): its replies parse as nothing, the records
    count them unusable with no final score, and the choice falls back to the reference labels, saying so."""
    sentences = tmp_path / "sentences.h5"
    write_planted_sentences(sentences)
    local = ["--taxonomy.judge", "llm", "--annotate.llm_model_path", str(demo_model), "--annotate.llm_max_tokens", "24",
             "--taxonomy.layers", str(PLANTED)]
    run(binary, tmp_path, sentences, *local)
    records = [json.loads(p.read_text()) for p in (tmp_path / "taxonomy" / "judge").glob("*.json")]
    assert len(records) == 3 and all(r["final"] is None and r["failed"] > 0 for r in records), records
    with h5py.File(tmp_path / "taxonomy" / "summary.h5", "r") as f:
        assert "no group a final score" in f.attrs["rule"] and "NMI" in f.attrs["rule"]
        assert (f.attrs["selected_layer"], f.attrs["selected_k"]) == (PLANTED, 6)
