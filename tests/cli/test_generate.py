"""End to end: `thinksteer generate` on the demo checkpoint (scripts/make_demo_model.py).

Checks the output contract (fields, think split, provenance, resolved config), that a rerun with the
same config skips the stage and a changed config redoes it, and that sampled traces do not depend on
the batch size (each prompt's stream is keyed by seed and prompt id).
"""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory, request):
    out = Path(request.config.getoption("--demo-model") or tmp_path_factory.mktemp("demo") / "model")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_model.py"), "--out", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def binary(request):
    path = request.config.getoption("--thinksteer")
    if not path:
        pytest.fail("--thinksteer (or THINKSTEER_BIN) is required")
    return path


def generate(binary, model, run_dir, *extra, max_new_tokens=24):
    cmd = [binary, "generate", "--model.path", str(model), "--data.prompts", str(ROOT / "configs" / "prompts" / "demo.jsonl"),
           "--run.dir", str(run_dir), "--generate.max_new_tokens", str(max_new_tokens), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def read_traces(run_dir):
    with open(run_dir / "generate" / "generations.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_output_contract(binary, demo_model, tmp_path):
    generate(binary, demo_model, tmp_path)
    traces = read_traces(tmp_path)
    prompts = [json.loads(l) for l in open(ROOT / "configs" / "prompts" / "demo.jsonl", encoding="utf-8")]
    assert [t["id"] for t in traces] == [p["id"] for p in prompts]  # input order, not batch order
    for t, p in zip(traces, prompts):
        assert t["prompt"] == p["question"] and t["reference_answer"] == p["answer"]
        assert t["prompt_text"].startswith("<｜begin▁of▁sentence｜><｜User｜>") and t["prompt_text"].endswith("<｜Assistant｜><think>\n")
        assert t["n_new_tokens"] == len(t["token_ids"]) <= 24
        assert t["finish_reason"] in ("eos", "stop_string", "length")
        assert 0 <= t["n_thinking_tokens"] <= t["n_new_tokens"]
    prov = json.loads((tmp_path / "generate" / "provenance.json").read_text())
    for key in ("git_commit", "config_sha256", "versions", "model_config_sha256", "tokenizer_sha256", "prompts_sha256", "seed"):
        assert key in prov
    assert "[generate]" in (tmp_path / "config.resolved.ini").read_text()
    done = json.loads((tmp_path / "generate" / "generations.h5.done").read_text())
    assert done["config_sha256"] == prov["config_sha256"]
    # The marker certifies the committed content (and the JSONL beside it).
    assert done["content_sha256"] == hashlib.sha256((tmp_path / "generate" / "generations.h5").read_bytes()).hexdigest()
    assert done["bytes"] == (tmp_path / "generate" / "generations.h5").stat().st_size
    jsonl = tmp_path / "generate" / "generations.jsonl"
    assert done["files"]["generations.jsonl"]["content_sha256"] == hashlib.sha256(jsonl.read_bytes()).hexdigest()
    assert not list((tmp_path / "generate").glob("*.tmp.*")) and not list((tmp_path / "generate").glob("*.partial*"))
    assert not list((tmp_path / "generate").glob("*.lock"))


def test_rerun_skips_and_config_change_redoes(binary, demo_model, tmp_path):
    generate(binary, demo_model, tmp_path)
    out = tmp_path / "generate" / "generations.jsonl"
    before = out.stat().st_mtime_ns
    again = generate(binary, demo_model, tmp_path)
    assert "skipping" in again.stderr
    assert out.stat().st_mtime_ns == before
    changed = generate(binary, demo_model, tmp_path, max_new_tokens=8)
    assert "skipping" not in changed.stderr
    assert all(t["n_new_tokens"] <= 8 for t in read_traces(tmp_path))


def test_sampled_traces_do_not_depend_on_batch_size(binary, demo_model, tmp_path):
    sampled = ["--generate.temperature", "0.9", "--generate.top_p", "0.95", "--generate.seed", "11"]
    generate(binary, demo_model, tmp_path / "b1", *sampled, "--generate.batch_size", "1")
    generate(binary, demo_model, tmp_path / "b5", *sampled, "--generate.batch_size", "5")
    generate(binary, demo_model, tmp_path / "seed12", *sampled[:-1], "12", "--generate.batch_size", "5")
    b1, b5, s12 = (read_traces(tmp_path / d) for d in ("b1", "b5", "seed12"))
    assert [t["token_ids"] for t in b1] == [t["token_ids"] for t in b5]
    assert [t["token_ids"] for t in b1] != [t["token_ids"] for t in s12]


def test_stop_string_truncates_generation(binary, demo_model, tmp_path):
    generate(binary, demo_model, tmp_path / "free")
    first = read_traces(tmp_path / "free")[0]
    assert len(first["text"]) > 6
    stop = first["text"][2:5]
    if "," in stop or not stop.strip():
        pytest.skip("generated text not usable as a stop string")
    generate(binary, demo_model, tmp_path / "stop", "--generate.stop", stop)
    got = read_traces(tmp_path / "stop")[0]
    assert got["finish_reason"] == "stop_string"
    assert stop in got["text"] and len(got["token_ids"]) <= len(first["token_ids"])
