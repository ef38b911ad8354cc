"""`thinksteer annotate` with the llm annotator (src/annotate/llm.h), end to end.

- Endpoint: a fake OpenAI-compatible server (http.server on 127.0.0.1, a free port, in a thread)
  answers each trace from a script keyed by a word in its text: a correct annotation (with a repeated
  sentence), HTTP 500 then a correct one (the retry), garbage, a wrong label, text that is not in the
  trace, a hang longer than the timeout, and HTTP 401 (not retried). spans.h5 holds the exact spans
  of the good traces; problems.jsonl one record per failure with trace id, kind and excerpt. The
  request carries the model name, temperature 0, max_tokens and the API key from the environment
  variable (which is in no output file).
- Exit policy: failed requests within annotate.llm_max_failed_fraction: exit 0, a warning, the
  failures recorded; above it: exit 1 and nothing written (no spans.h5, no marker).
- Config hash: transport settings (concurrency, timeout, retries) do not redo the work, the model
  name does.
- Local checkpoint: the demo model (random weights) answers garbage: every trace's failure is
  recorded, nothing crashes; a prompt too long for the model's context is a request_failed.
"""
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h5py
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import ENV, binary, demo_model  # noqa: E402,F401  (fixtures)

LABELS = ["initializing", "deduction", "adding-knowledge", "example-testing", "uncertainty-estimation", "backtracking"]
KEY = "sekrit-test-key-42"
TIMEOUT = 1.0  # annotate.llm_timeout_seconds
HANG = 2.5     # seconds the hanging scenario sleeps (> TIMEOUT)

# Each trace names its scenario with a word the server looks for in the prompt.
TRACES = [
    ("good", "<think>\nOkay, case alpha asks for 2 plus 3. Two plus three is five.\nWait, let me redo it. Two plus three is five.\n</think>\nThe answer is 5."),
    ("flaky", "<think>\nCase bravo: recall that 7 is prime. So 7 has no divisors but 1 and 7.\n</think>\n7"),
    ("garbage", "<think>\nCase charlie needs a guess. Maybe it is 3.\n</think>\n3"),
    ("wrong_label", "<think>\nCase delta, hmm. Let me think about it.\n</think>\nok"),
    ("bad_text", "<think>\nCase echo is simple. It is 4.\n</think>\n4"),
    ("hang", "<think>\nCase foxtrot takes long. Really long.\n</think>\n?"),
    ("unauthorized", "<think>\nCase golf is private. No access.\n</think>\n!"),
]

GOOD_SECTIONS = [("initializing", "Okay, case alpha asks for 2 plus 3."), ("deduction", "Two plus three is five."),
                 ("backtracking", "Wait, let me redo it."), ("deduction", "Two plus three is five.")]
FLAKY_SECTIONS = [("adding-knowledge", "Case bravo: recall that 7 is prime."), ("deduction", "So 7 has no divisors\nbut 1 and 7.")]


def sections(pairs):
    return "\n".join(f'["{label}"]{text}["end-section"]' for label, text in pairs)


class FakeEndpoint:
    """An OpenAI-compatible /v1/chat/completions that answers from the script above."""

    def __init__(self):
        self.requests = []  # (scenario, parsed body, headers)
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send(self, status, payload):
                data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][0]["content"]
                chain = prompt.split("The reasoning chain to analyze:\n", 1)[1].rsplit("\n\nAnswer only", 1)[0]
                scenario = next((s for s, w in (("good", "alpha"), ("flaky", "bravo"), ("garbage", "charlie"), ("wrong_label", "delta"),
                                                 ("bad_text", "echo"), ("hang", "foxtrot"), ("unauthorized", "golf")) if w in chain), "?")
                with endpoint.lock:
                    endpoint.requests.append((scenario, body, dict(self.headers)))
                    seen = sum(1 for s, _, _ in endpoint.requests if s == scenario)
                if self.path != "/v1/chat/completions":
                    return self.send(404, {"error": {"message": "no such path " + self.path}})
                if scenario == "flaky" and seen == 1:
                    return self.send(500, {"error": {"message": "overloaded, try again"}})
                if scenario == "hang":
                    time.sleep(HANG)
                    return self.send(200, {"choices": []})
                if scenario == "unauthorized":
                    return self.send(401, {"error": {"message": "invalid api key"}})
                content = {
                    "good": sections(GOOD_SECTIONS),
                    "flaky": sections(FLAKY_SECTIONS),
                    "garbage": "I think the answer is probably 3, but I am not able to format this.",
                    "wrong_label": sections([("musing", "Case delta, hmm."), ("deduction", "Let me think about it.")]),
                    "bad_text": sections([("deduction", "Case echo is simple."), ("deduction", "It is 5.")]),
                }.get(scenario, "?")
                self.send(200, {"id": "x", "object": "chat.completion", "model": body["model"],
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, scenario):
        with self.lock:
            return sum(1 for s, _, _ in self.requests if s == scenario)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    e = FakeEndpoint()
    yield e
    e.close()


@pytest.fixture
def traces(tmp_path):
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in TRACES))
    return path


def annotate(binary, run_dir, *extra, ranks=1, env=None):
    cmd = [binary, "annotate", "--run.dir", str(run_dir), "--log.progress_seconds", "0.01", "--annotate.annotator", "llm", *map(str, extra)]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=dict(ENV, **(env or {})), timeout=120)


def endpoint_args(endpoint, traces, **overrides):
    """Options for the fake endpoint; keyword arguments replace [annotate] llm_* values (an option given twice is an error)."""
    opts = dict(llm_endpoint=endpoint.url, llm_model="test-model", llm_api_key_env="THINKSTEER_TEST_KEY", llm_max_tokens=512,
                llm_timeout_seconds=TIMEOUT, llm_retries=1, llm_retry_seconds=0.05, llm_concurrency=4)
    opts.update(overrides)
    out = ["--annotate.input", traces]
    for k, v in opts.items():
        out += [f"--annotate.{k}", v]
    return out


def rows_of(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def spans_by_trace(run_dir):
    with h5py.File(Path(run_dir) / "annotate" / "spans.h5", "r") as f:
        ids = list(f["traces/id"].asstr()[()])
        labels = list(f["labels"].asstr()[()])
        off, n = f["traces/span_offset"][()], f["traces/n_spans"][()]
        lab, b, e = f["spans/label"][()], f["spans/char_begin"][()], f["spans/char_end"][()]
        attrs = dict(f.attrs)
    out = {i: [(labels[lab[r]], int(b[r]), int(e[r])) for r in range(off[k], off[k] + n[k])] for k, i in enumerate(ids)}
    return out, attrs


def expected_spans(text, pairs):
    """The spans the forward-only alignment must give: each section's text at or after the previous end."""
    out, cursor = [], 0
    for label, section in pairs:
        words = section.split()
        at = text.index(words[0], cursor)
        end = text.index(words[-1], at) + len(words[-1])
        assert " ".join(text[at:end].split()) == " ".join(words)
        out.append((label, at, end))
        cursor = end
    return out


def test_endpoint_spans_problems_and_retries(binary, endpoint, traces, tmp_path):
    run_dir = tmp_path / "run"
    t0 = time.time()
    proc = annotate(binary, run_dir, *endpoint_args(endpoint, traces, llm_max_failed_fraction=0.5), ranks=2,
                    env={"THINKSTEER_TEST_KEY": KEY})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert time.time() - t0 < 30
    log = proc.stdout + proc.stderr
    assert "2 of 7 traces got no reply" in log and "spans.h5.done" in log  # the warning: how many, and how to retry

    spans, attrs = spans_by_trace(run_dir)
    text = dict(TRACES)
    assert attrs["annotator"] == "llm"
    assert "test-model" in attrs["annotator_identity"] and endpoint.url in attrs["annotator_identity"]
    # The good trace: exact spans, the repeated sentence at its own (second) occurrence.
    assert spans["good"] == expected_spans(text["good"], GOOD_SECTIONS)
    assert spans["good"][3][1] > spans["good"][1][2]
    # 500 then success: the retry worked (two requests), the newline in the section does not matter.
    assert spans["flaky"] == expected_spans(text["flaky"], FLAKY_SECTIONS) and endpoint.count("flaky") == 2
    assert spans["garbage"] == [] and spans["hang"] == [] and spans["unauthorized"] == []
    assert spans["wrong_label"] == [("deduction",) + expected_spans(text["wrong_label"], [("deduction", "Let me think about it.")])[0][1:]]
    assert spans["bad_text"] == expected_spans(text["bad_text"], [("deduction", "Case echo is simple.")])
    # The hang: 1 + llm_retries attempts, each cut at the timeout; 401 is not retried.
    assert endpoint.count("hang") == 2 and endpoint.count("unauthorized") == 1

    problems = rows_of(run_dir / "annotate" / "problems.jsonl")
    by_id = {}
    for p in problems:
        by_id.setdefault(p["id"], []).append(p)
        assert set(p) >= {"trace", "id", "kind", "begin", "end", "detail"}
    assert "good" not in by_id and "flaky" not in by_id
    assert [p["kind"] for p in by_id["garbage"]] == ["unparsed_output"] and "probably 3" in by_id["garbage"][0]["excerpt"]
    assert [p["kind"] for p in by_id["wrong_label"]] == ["unknown_label"]
    assert by_id["wrong_label"][0]["text"] == "Case delta, hmm." and by_id["wrong_label"][0]["excerpt"] == '["musing"]'
    assert [p["kind"] for p in by_id["bad_text"]] == ["unaligned_section", "unlabelled_text"]
    assert by_id["bad_text"][0]["excerpt"] == "It is 5." and by_id["bad_text"][1]["text"] == "It is 4."
    assert [p["kind"] for p in by_id["hang"]] == ["request_failed"] and "no response within 1 s" in by_id["hang"][0]["excerpt"]
    assert "after 2 attempt(s)" in by_id["hang"][0]["detail"]
    assert [p["kind"] for p in by_id["unauthorized"]] == ["request_failed"] and "HTTP 401" in by_id["unauthorized"][0]["excerpt"]
    assert "invalid api key" in by_id["unauthorized"][0]["excerpt"]
    prov = json.loads((run_dir / "annotate" / "provenance.json").read_text())
    assert prov["summary"]["problems_per_kind"]["request_failed"] == 2

    # What went over the wire: model, temperature 0, max_tokens, the §A.3 prompt, the key from the environment.
    _, body, headers = endpoint.requests[0]
    assert body["model"] == "test-model" and body["temperature"] == 0 and body["max_tokens"] == 512
    assert "[\"label\"]...[\"end-section\"]" in body["messages"][0]["content"]
    assert all(h.get("Authorization") == f"Bearer {KEY}" for _, _, h in endpoint.requests)
    for f in (run_dir / "annotate").iterdir():
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f.name
    assert KEY not in (run_dir / "config.resolved.ini").read_text()

    # Transport settings do not redo the work; the model name does.
    n = len(endpoint.requests)
    proc = annotate(binary, run_dir, *endpoint_args(endpoint, traces, llm_max_failed_fraction=0.6, llm_concurrency=2, llm_retries=2))
    assert proc.returncode == 0 and "complete for this config" in proc.stderr, proc.stderr
    assert len(endpoint.requests) == n
    proc = annotate(binary, run_dir, *endpoint_args(endpoint, traces, llm_max_failed_fraction=0.5, llm_model="other"))
    assert "complete for this config" not in proc.stderr and len(endpoint.requests) > n


def test_too_many_failures_write_nothing(binary, endpoint, traces, tmp_path):
    run_dir = tmp_path / "run"
    proc = annotate(binary, run_dir, *endpoint_args(endpoint, traces))  # default llm_max_failed_fraction 0.1 < 2/7
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "2 of 7 traces got no reply" in proc.stderr and "annotate.llm_max_failed_fraction" in proc.stderr, proc.stderr
    out = run_dir / "annotate"
    for name in ("spans.h5", "spans.h5.done", "spans.jsonl", "problems.jsonl"):
        assert not (out / name).exists(), name
    # Nothing listens: every request fails, nothing is written.
    dead = "http://127.0.0.1:9/v1"
    proc = annotate(binary, run_dir, "--annotate.input", traces, "--annotate.llm_endpoint", dead, "--annotate.llm_model", "m",
                    "--annotate.llm_retries", 0)
    assert proc.returncode == 1 and "7 of 7 traces got no reply" in proc.stderr, proc.stderr
    assert not (out / "spans.h5").exists()


@pytest.mark.parametrize("args,needle", [
    (["--annotate.llm_endpoint", "ftp://x"], "annotate.llm_endpoint"),
    (["--annotate.llm_endpoint", "http://127.0.0.1:9/v1"], "annotate.llm_model"),  # no model name
    ([], "annotate.llm_model_path"),                                                 # neither endpoint nor checkpoint
    (["--annotate.llm_model_path", "x", "--annotate.llm_concurrency", "0"], "annotate.llm_concurrency"),
    (["--annotate.llm_model_path", "x", "--annotate.llm_api_key_env", "MY-KEY"], "annotate.llm_api_key_env"),
    (["--annotate.llm_model_path", "x", "--annotate.llm_max_failed_fraction", "1.5"], "annotate.llm_max_failed_fraction"),
    (["--annotate.llm_model_path", "x", "--annotate.llm_chat_format", "alpaca"], "annotate.llm_chat_format"),
])
def test_bad_options(binary, traces, tmp_path, args, needle):
    proc = annotate(binary, tmp_path / "run", "--annotate.input", traces, *args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr


def test_local_checkpoint(binary, demo_model, traces, tmp_path):
    """The demo model's random weights answer garbage: recorded per trace, nothing crashes."""
    run_dir = tmp_path / "run"

    def local_args(max_tokens):
        return ["--annotate.input", traces, "--annotate.llm_model_path", demo_model, "--annotate.llm_chat_format", "deepseek_r1",
                "--annotate.llm_max_tokens", max_tokens, "--annotate.llm_concurrency", 3, "--run.threads", 1]

    args = local_args(12)
    proc = annotate(binary, run_dir, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spans, attrs = spans_by_trace(run_dir)
    assert attrs["annotator"] == "llm" and "local checkpoint sha256" in attrs["annotator_identity"]
    problems = rows_of(run_dir / "annotate" / "problems.jsonl")
    kinds = {"unparsed_output", "unknown_label", "unaligned_section", "unlabelled_text"}
    for i, _ in TRACES:
        mine = [p for p in problems if p["id"] == i]
        assert mine, i  # garbage never passes silently
        assert {p["kind"] for p in mine} <= kinds, mine
        assert all(lab in LABELS for lab, _, _ in spans[i])
    assert not any(p["kind"] == "request_failed" for p in problems)
    again = annotate(binary, run_dir, *args)
    assert again.returncode == 0 and "complete for this config" in again.stderr
    # A prompt plus llm_max_tokens beyond the model's 2048 positions is not run: every request fails.
    proc = annotate(binary, tmp_path / "long", *local_args(2040))
    assert proc.returncode == 1 and "exceed the model's context of 2048" in proc.stderr, proc.stderr
    assert not (tmp_path / "long" / "annotate" / "spans.h5").exists()
