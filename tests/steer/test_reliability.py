"""What `.done` certifies, tried as an unlucky or hostile cluster user would (README "Reliability").

On the shipped toy thinker, small and fast:
- two jobs in one run directory: the second, started while the first writes, is refused (exit 2, one
  line naming the lock and its holder's host and pid); the first commits a complete file, and
  `thinksteer-check run` certifies it and lists no lock afterwards;
- a committed output changed afterwards is refused by the stage that reads it (content hash in the
  marker), and `thinksteer-check run` reports it;
- reduce: a task file copied over another task's name, and a task file with values out of range (even
  behind a marker rewritten to match), exit 2 naming the file and the dataset or attribute;
- a stop request during the last batch of a task: the complete task commits (exit 0);
- hostile input: --data.prompts /dev/zero, a directory as --config, max_new_tokens beyond the context,
  run.threads beyond the hardware, an id with a control character: exit 2 before any work, and no output;
- a full disk: the error names the file and the cause, and nothing is certified.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import ENV, binary, toy_model  # noqa: E402,F401  (fixtures)


def run(binary, *args, env=None, check=False, timeout=600):
    cmd = [str(binary), *map(str, args)]
    r = subprocess.run(cmd, env=env or ENV, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def error_lines(r):
    return [line for line in r.stderr.splitlines() if "[error]" in line]


def check_binary(binary):
    return Path(binary).with_name("thinksteer-check")


def gen_opts(toy_model, run_dir, **override):
    """`generate` options on the toy thinker; override={"data.limit": 40} replaces one (no key twice)."""
    opts = {"model.path": toy_model, "run.dir": run_dir, "run.threads": 1, "data.prompts": "builtin:toy-test", "data.limit": 8,
            "generate.max_new_tokens": 120, "generate.batch_size": 2, **override}
    return [x for key, value in opts.items() for x in (f"--{key}", value)]


def rewrite_marker(output):
    """The marker of `output` rewritten to certify its present content (what a careless script could do)."""
    marker = Path(f"{output}.done")
    m = json.loads(marker.read_text())
    data = Path(output).read_bytes()
    m["bytes"], m["content_sha256"] = len(data), hashlib.sha256(data).hexdigest()
    marker.write_text(json.dumps(m) + "\n")


def test_a_second_job_in_the_same_run_dir_is_refused(binary, toy_model, tmp_path):
    d = tmp_path / "run"
    slow = {"data.limit": 48, "generate.batch_size": 1, "generate.max_new_tokens": 300}  # long enough to be caught writing
    first = subprocess.Popen([str(binary), "generate", *map(str, gen_opts(toy_model, d, **slow))], env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        lock = d / "generate" / "generations.h5.lock"
        for _ in range(600):  # the first job takes the lock once its inputs are read
            if lock.exists() or first.poll() is not None:
                break
            time.sleep(0.05)
        assert lock.exists(), "the first job never took the output's lock"
        second = run(binary, "generate", *gen_opts(toy_model, d, **slow))
        assert first.poll() is None, "the first job finished before the second started: the test proves nothing"
        assert second.returncode == 2, second.stderr
        [line] = error_lines(second)
        assert "generations.h5.lock" in line and "lock" in line and f"pid {first.pid}" in line and "host " in line, line
    finally:
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert not lock.exists()
    checked = subprocess.run([str(check_binary(binary)), "run", str(d)], capture_output=True, text=True)
    assert checked.returncode == 0 and "ok       generate/generations.h5" in checked.stdout and "locked" not in checked.stdout, checked.stdout


def test_a_changed_output_is_refused_by_its_reader(binary, toy_model, tmp_path):
    d = tmp_path / "run"
    run(binary, "generate", *gen_opts(toy_model, d), check=True)
    jsonl = d / "generate" / "generations.jsonl"
    rows = jsonl.read_text().splitlines()
    jsonl.write_text("\n".join(rows[:-1]) + "\n")  # a trace lost after the commit
    r = run(binary, "annotate", "--run.dir", d, "--model.path", toy_model)
    assert r.returncode == 2, r.stderr
    [line] = error_lines(r)
    assert "generations.jsonl" in line and "changed after it was committed" in line, line
    assert not (d / "annotate" / "spans.h5").exists()
    checked = subprocess.run([str(check_binary(binary)), "run", str(d)], capture_output=True, text=True)
    assert checked.returncode == 1 and "CHANGED  generate/generations.h5: generations.jsonl" in checked.stdout, checked.stdout


@pytest.fixture(scope="module")
def sweep(binary, toy_model, tmp_path_factory):
    """A finished sweep of three tasks (baseline, +2 and -2 of one vector) on 4 problems."""
    d = tmp_path_factory.mktemp("reliability") / "run"
    common = ["--model.path", toy_model, "--run.dir", d, "--run.threads", 1, "--generate.max_new_tokens", 160, "--generate.batch_size", 12]
    for stage in ("generate", "annotate", "vectors"):
        run(binary, stage, *common, "--data.prompts", "builtin:toy-train", "--data.limit", 12, check=True)
    opts = [*common, "--data.prompts", "builtin:toy-test", "--data.limit", 4, "--sweep.vectors", "backtracking", "--sweep.layers", 2,
            "--sweep.coefficients", "2,-2", "--sweep.controls", "none", "--reduce.bootstrap", 50]
    run(binary, "steer", *opts, check=True)
    return d, opts


def fresh_copy(sweep, tmp_path):
    d, opts = sweep
    copy = tmp_path / "run"
    shutil.copytree(d, copy)
    opts = [str(copy) if str(o) == str(d) else o for o in opts]
    return copy, opts


def tasks(d):
    return [json.loads(line) for line in (d / "sweep" / "manifest.jsonl").read_text().splitlines()]


def test_reduce_refuses_a_task_file_copied_over_another(binary, sweep, tmp_path):
    d, opts = fresh_copy(sweep, tmp_path)
    a, b = [d / "sweep" / "tasks" / f"{t['key']}.h5" for t in tasks(d)[1:3]]
    shutil.copyfile(a, b)
    r = run(binary, "reduce", *opts)
    if a.stat().st_size == json.loads(Path(f"{b}.done").read_text())["bytes"]:  # same size: the content hash catches it
        assert r.returncode == 2, r.stderr
        [line] = error_lines(r)
        assert b.name in line and "changed after it was committed" in line, line
    else:  # another size (the token ids differ in number): the marker does not vouch for it, so the task is not finished
        assert r.returncode == 3, r.stderr
        assert "1 of 3 tasks are not finished" in r.stderr, r.stderr
    rewrite_marker(b)  # the marker made to vouch for the copy: the identity check still refuses it
    r = run(binary, "reduce", *opts)
    assert r.returncode == 2, r.stderr
    [line] = error_lines(r)
    assert b.name in line and ": key: " in line, line


@pytest.mark.parametrize("dataset, value", [("prompts/correct", 7), ("prompts/think_tokens", 10**9), ("prompts/label_tokens", -100)])
def test_reduce_refuses_values_out_of_range(binary, sweep, tmp_path, dataset, value):
    d, opts = fresh_copy(sweep, tmp_path)
    task = d / "sweep" / "tasks" / f"{tasks(d)[1]['key']}.h5"
    with h5py.File(task, "r+") as f:
        data = f[dataset][()]
        data.flat[0] = value
        f[dataset][()] = data
    rewrite_marker(task)
    r = run(binary, "reduce", *opts)
    assert r.returncode == 2, r.stderr
    [line] = error_lines(r)
    assert task.name in line and f"/{dataset}" in line, line
    assert not (d / "sweep" / "summary.h5.done").exists()  # the earlier summary no longer claims to be complete


def test_a_stop_in_the_last_batch_commits_the_complete_task(binary, sweep, tmp_path):
    d, opts = fresh_copy(sweep, tmp_path)
    first = tasks(d)[1]
    task = d / "sweep" / "tasks" / f"{first['key']}.h5"
    task.unlink()
    Path(f"{task}.done").unlink()
    # One batch (4 prompts, batch size 12): SIGUSR1 at its end, the last batch boundary.
    r = run(binary, "sweep", "run", "--task-id", first["task"], *opts, env=dict(ENV, THINKSTEER_FAULT="sigusr1@batch:1"))
    assert r.returncode == 0, r.stderr
    assert task.exists() and Path(f"{task}.done").exists()


def test_hostile_input_fails_fast_and_leaves_nothing(binary, toy_model, tmp_path):
    d = tmp_path / "run"
    bad_ids = tmp_path / "ids.jsonl"
    bad_ids.write_text(json.dumps({"id": "a\u0001b", "question": "1+1?"}) + "\n")
    cases = [
        ({"data.prompts": "/dev/zero"}, [], "/dev/zero", "data.prompts"),
        ({}, ["--config", tmp_path], str(tmp_path), "--config"),
        ({"generate.max_new_tokens": 5000}, [], "", "generate.max_new_tokens"),
        ({"run.threads": 1000000}, [], "", "run.threads"),
        ({"data.prompts": bad_ids}, [], str(bad_ids), "id"),
        ({"generate.temperature": "nan"}, [], "<command line>", "generate.temperature"),
    ]
    for override, extra, file, field in cases:
        r = run(binary, "generate", *gen_opts(toy_model, d, **override), *extra, timeout=60)
        assert r.returncode == 2, (override, extra, r.stderr)
        [line] = error_lines(r)
        assert file in line and field in line[line.index(file) + len(file):], (override, extra, line)
        assert not list(d.rglob("generations.*")), (override, extra)


def test_a_full_disk_is_named_and_nothing_is_certified(binary, toy_model, tmp_path):
    """collect into a 2 MiB tmpfs: the error names the file and says the device is full; no marker."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs a 2 MiB tmpfs (root and mount permission)")
    try:
        r = run(binary, "collect", "--model.path", toy_model, "--run.dir", mnt / "run", "--run.threads", 1,
                "--data.prompts", "builtin:toy-test", "--data.limit", 100, "--collect.positions", "all", timeout=120)
        assert r.returncode != 0, r.stderr
        [line] = error_lines(r)
        assert "activations.h5" in line and "no space left on the device" in line, line
        assert not list((mnt / "run").rglob("*.done")), "a marker certifies output on a full disk"
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
