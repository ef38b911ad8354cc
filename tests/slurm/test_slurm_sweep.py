"""slurm/submit.sh, sweep.sbatch, reduce.sbatch and stage.sbatch on a real one-node Slurm cluster.

The cluster (tests/slurm/cluster.sh: Debian's slurm-wlm + munge, its own key, ports and state under the
test's tmp dir) is started once for the module and always stopped; when a test fails, its job logs and
the munged/slurmctld/slurmd logs are printed.

- A sweep submitted with `slurm/submit.sh sweep` (array + reduce with afterany) in which one array task
  is cancelled while it is held (deterministic: the array is submitted with --hold, one task cancelled,
  the rest released): reduce ends with exit 3, `missing: --array=K` in its log and K in missing.txt;
  `slurm/submit.sh sweep CONFIG --array=K` runs just that task and a new reduce, which succeeds, and its
  summary.csv equals the summary of the same sweep run without Slurm (`sweep plan`, `sweep run
  --task-id k` for every k, `reduce` in a second run dir).
- SIGUSR1 sent to the batch shell (`scancel --signal=USR1 --batch`, what `--signal=B:USR1@120` does
  before the time limit) reaches the step through sweep.sbatch's trap; the task stops with exit 75 and
  progress saved, is requeued (same job id, SLURM_RESTART_COUNT=1) and finishes from there.
- stage.sbatch through `slurm/submit.sh STAGE`, and a task with bad input (exit 2) that is not retried.

The sweep uses the real binary with configs/tests/sweep_small.ini (or $THINKSTEER_SWEEP_CONFIG) when
`thinksteer sweep --help` works and that file exists; otherwise (and always for the signal and bad-input cases, which need a task that
takes a known time) the stand-in tests/slurm/fake_thinksteer.sh, which implements the same CLI contract.
"""
import csv
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import ENV  # noqa: E402

HERE = Path(__file__).resolve().parent
CLUSTER_SH = HERE / "cluster.sh"
FAKE = HERE / "fake_thinksteer.sh"
SUBMIT = ROOT / "slurm" / "submit.sh"
# The real sweep (its run.dir is overridden); THINKSTEER_SWEEP_CONFIG picks another config.
SWEEP_CONFIG = Path(os.environ.get("THINKSTEER_SWEEP_CONFIG") or ROOT / "configs" / "tests" / "sweep_small.ini")
TOOLS = ["munged", "munge", "slurmctld", "slurmd", "sbatch", "srun", "scontrol", "squeue", "scancel", "sinfo"]
MISSING_TOOLS = [t for t in TOOLS if not (shutil.which(t) or shutil.which(t, path="/usr/sbin:/sbin"))]
pytestmark = pytest.mark.skipif(bool(MISSING_TOOLS), reason="slurm-wlm/munge not installed (no "
                                + ", ".join(MISSING_TOOLS) + "); scripts/setup.sh installs them")

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
            "PREEMPTED"}
# summary.csv columns that may differ between two runs of the same sweep (none today; provenance if added).
VOLATILE = re.compile(r"time|date|host|job|slurm|elapsed|seconds|provenance|commit|path|run_dir", re.I)


class Cluster:
    def __init__(self, directory, env):
        self.dir = directory
        self.env = env

    def run(self, *cmd, check=True, timeout=60, env=None, cwd=ROOT):
        r = subprocess.run([str(c) for c in cmd], env=env or self.env, cwd=cwd, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, cmd))}: exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def jobs(self, jobid):
        """{job id as scontrol names it (12, 12_3): {field: value}} for a job or all tasks of an array."""
        r = self.run("scontrol", "-o", "show", "job", jobid, check=False)
        out = {}
        for line in r.stdout.splitlines():
            fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if fields.get("ArrayJobId") and "ArrayTaskId" in fields:   # pending tasks not yet split: 12_[0-3]
                task = fields["ArrayTaskId"]
                out[f"{fields['ArrayJobId']}_{task if task.isdigit() else '[' + task + ']'}"] = fields
            elif "JobId" in fields:
                out[fields["JobId"]] = fields
        return out

    def wait(self, jobid, timeout=120):
        """Waits until the job (every task of an array) has ended; returns jobs(jobid)."""
        t0 = time.monotonic()
        while True:
            jobs = self.jobs(jobid)
            if jobs and all(j["JobState"] in TERMINAL for j in jobs.values()):
                return jobs
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"job {jobid} not finished after {timeout} s: "
                                     + str({k: v.get("JobState") for k, v in jobs.items()}))
            time.sleep(0.3)

    def submit(self, *args, env=None):
        """slurm/submit.sh ARGS: {'sweep': id, 'reduce': id, STAGE: id} from its output."""
        r = self.run(SUBMIT, *args, env=env)
        ids = dict(re.findall(r"^(\S+): submitted job (\d+)", r.stdout, re.M))
        assert ids, f"no job ids in submit.sh output:\n{r.stdout}\n{r.stderr}"
        return ids


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cluster")
    # Everything but this cluster's SLURM_CONF from an outer Slurm allocation would confuse sbatch.
    env = {k: v for k, v in ENV.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env.update(CLUSTER_CRED_EXPIRE="5", CLUSTER="example", MAX_RESTARTS="3")
    env.pop("THINKSTEER_BIN", None)
    r = subprocess.run([str(CLUSTER_SH), "start", str(directory)], env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        subprocess.run([str(CLUSTER_SH), "stop", str(directory)], env=env, timeout=120)
        pytest.fail(f"tests/slurm/cluster.sh start failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")
    env["SLURM_CONF"] = str(directory / "slurm.conf")
    try:
        yield Cluster(directory, env)
    finally:
        subprocess.run([str(CLUSTER_SH), "stop", str(directory)], env=env, timeout=120)


@pytest.fixture
def logs(cluster, tmp_path, request):
    """The test's job log directory (THINKSTEER_LOG_DIR); printed with the cluster's logs on failure."""
    directory = tmp_path / "logs"
    yield directory
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for f in sorted(directory.glob("*")):
            print(f"===== {f.name} =====\n{f.read_text(errors='replace')}")
        print(subprocess.run([str(CLUSTER_SH), "logs", str(cluster.dir)], capture_output=True, text=True).stdout)


def real_sweep(request):
    """(binary, config) for the real sweep, or None with the reason."""
    binary = Path(request.config.getoption("--thinksteer") or ROOT / "build" / "bin" / "thinksteer")
    if not SWEEP_CONFIG.exists():
        return None, f"{SWEEP_CONFIG} does not exist"
    if not binary.exists():
        return None, f"no binary {binary}"
    r = subprocess.run([str(binary), "sweep", "--help"], env=ENV, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return None, f"`{binary} sweep --help` fails (exit {r.returncode})"
    return (binary.resolve(), SWEEP_CONFIG), ""


def fake_config(path, run_dir, tasks=4, seconds=1.0):
    path.write_text(f"[run]\ndir = {run_dir}\n\n[fake]\ntasks = {tasks}\nseconds = {seconds}\n")
    return path


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows, f"{path}: no rows"
    keep = [c for c in rows[0] if not VOLATILE.search(c)]
    return [{c: r[c] for c in keep} for r in rows]


def test_sweep_cancel_resubmit_reduce(cluster, logs, tmp_path, request):
    real, why = real_sweep(request)
    if real:
        binary, config = real
    else:
        warnings.warn(f"the sweep ran on the stand-in {FAKE.name}, not thinksteer: {why}")
        binary, config = FAKE, fake_config(tmp_path / "sweep.ini", tmp_path / "unused")
    # The run directories as overrides: they pass through submit.sh and the sbatch scripts to the tasks.
    run_dir, local_dir = tmp_path / "slurm_run", tmp_path / "local_run"
    overrides, local_overrides = ["--run.dir", str(run_dir)], ["--run.dir", str(local_dir)]
    if real:
        # The sweep steers with vectors made first, outside both run dirs, by generate -> annotate -> vectors.
        vectors_dir = tmp_path / "vectors_run"
        for stage in ("generate", "annotate", "vectors"):
            subprocess.run([str(binary), stage, "--config", str(config), "--run.dir", str(vectors_dir), "--run.threads", "1"],
                           env=ENV, check=True, capture_output=True, timeout=300, cwd=ROOT)
        vectors = ["--steer.vectors", str(vectors_dir / "vectors" / "vectors.h5"), "--run.threads", "1"]
        overrides, local_overrides = overrides + vectors, local_overrides + vectors
    env = dict(cluster.env, THINKSTEER_BIN=str(binary), THINKSTEER_LOG_DIR=str(logs), SBATCH_ARGS="--hold --time=10")

    ids = cluster.submit("sweep", config, *overrides, env=env)
    array, reduce = ids["sweep"], ids["reduce"]
    manifest = (run_dir / "sweep" / "manifest.jsonl").read_text().splitlines()
    n = len(manifest)
    assert n >= 2, f"the sweep needs at least 2 tasks, the plan has {n}"
    k = 1  # the task that gets cancelled
    # Held: nothing runs before the cancel, so the cancel always hits a task that did not run.
    cluster.run("scancel", f"{array}_{k}")
    cluster.run("scontrol", "release", array)
    cluster.run("scontrol", "release", reduce)

    tasks = cluster.wait(array, timeout=300)
    states = {t: j["JobState"] for t, j in tasks.items()}
    # A task cancelled while pending may leave no record at all (it never started).
    assert states.pop(f"{array}_{k}", "CANCELLED") == "CANCELLED", states
    assert states == {f"{array}_{t}": "COMPLETED" for t in range(n) if t != k}, states
    red = cluster.wait(reduce)[reduce]
    assert red["JobState"] == "FAILED" and red["ExitCode"] == "3:0", red
    log = (logs / f"thinksteer-reduce-{reduce}.out").read_text()
    assert f"missing: --array={k}\n" in log, log
    assert f"slurm/submit.sh sweep {config} --array={k}" in log, log   # the resubmit hint
    assert (run_dir / "sweep" / "missing.txt").read_text().strip() == str(k)
    assert not (run_dir / "sweep" / "summary.csv").exists()

    # Resubmit only the missing task (no hold this time); reduce then completes.
    env["SBATCH_ARGS"] = "--time=10"
    ids2 = cluster.submit("sweep", config, f"--array={k}", *overrides, env=env)
    tasks2 = cluster.wait(ids2["sweep"], timeout=300)
    assert list(tasks2) == [f"{ids2['sweep']}_{k}"], tasks2
    assert tasks2[f"{ids2['sweep']}_{k}"]["JobState"] == "COMPLETED"
    red2 = cluster.wait(ids2["reduce"])[ids2["reduce"]]
    assert red2["JobState"] == "COMPLETED" and red2["ExitCode"] == "0:0", \
        red2 | {"log": (logs / f"thinksteer-reduce-{ids2['reduce']}.out").read_text()}
    assert (run_dir / "sweep" / "missing.txt").read_text().strip() == ""

    # The same sweep without Slurm, in a second run dir.
    local = dict(ENV)
    for key in [k_ for k_ in local if k_.startswith(("SLURM_", "SBATCH_"))]:
        del local[key]
    cluster.run(binary, "sweep", "plan", "--config", config, *local_overrides, env=local, timeout=300)
    for task in range(n):
        cluster.run(binary, "sweep", "run", "--config", config, "--task-id", task, *local_overrides, env=local, timeout=600)
    cluster.run(binary, "reduce", "--config", config, *local_overrides, env=local, timeout=300)
    assert (local_dir / "sweep" / "manifest.jsonl").read_text().splitlines() == manifest
    assert read_csv(run_dir / "sweep" / "summary.csv") == read_csv(local_dir / "sweep" / "summary.csv")


def test_usr1_forwarded_to_step_and_requeued(cluster, logs, tmp_path):
    config = fake_config(tmp_path / "usr1.ini", tmp_path / "run", tasks=1, seconds=120)
    env = dict(cluster.env, THINKSTEER_BIN=str(FAKE), THINKSTEER_LOG_DIR=str(logs), MAX_RESTARTS="1",
               SBATCH_ARGS="--time=10")
    ids = cluster.submit("sweep", config, "--fake.resume_seconds", "0.5", env=env)
    task = f"{ids['sweep']}_0"
    task_log = tmp_path / "run" / "sweep" / "tasks" / "task-000000.log"
    t0 = time.monotonic()
    while not (task_log.exists() and "start" in task_log.read_text()):   # the task has its traps
        assert time.monotonic() - t0 < 60, f"task {task} did not start: {cluster.jobs(task)}"
        time.sleep(0.2)
    # What --signal=B:USR1@120 does 120 s before the limit: SIGUSR1 to the batch shell only.
    cluster.run("scancel", "--signal=USR1", "--batch", task)

    red = cluster.wait(ids["reduce"], timeout=120)[ids["reduce"]]
    job = cluster.jobs(task)[task]
    assert job["JobState"] == "COMPLETED" and job["Restarts"] == "1", job
    assert red["JobState"] == "COMPLETED" and red["ExitCode"] == "0:0", red
    events = task_log.read_text()
    assert re.search(r"start task=0 job=\d+ restart=0\n.*got SIGUSR1\n.*stopped early at step \d+/1200 \(USR1\): exit 75\n"
                     r".*start task=0 job=\d+ restart=1\n.*resuming at step \d+/\d+\n.*done\n", events), events
    out = (logs / f"thinksteer-sweep-{task}.out").read_text()
    assert "batch shell got SIGUSR1: forwarding it to the step" in out, out
    assert "requeueing job" in out and "restart 1 on" in out, out
    # One stop, one restart: well under the task's 120 s of work.
    assert time.monotonic() - t0 < 60


def test_stage_and_bad_input(cluster, logs, tmp_path):
    env = dict(cluster.env, THINKSTEER_BIN=str(FAKE), THINKSTEER_LOG_DIR=str(logs),
               SBATCH_ARGS="--ntasks-per-node=1 --gpus-per-node=0 --time=10")
    # Another stage: slurm/stage.sbatch (its #SBATCH GPU and rank counts overridden through SBATCH_ARGS).
    config = fake_config(tmp_path / "stage.ini", tmp_path / "run")
    ids = cluster.submit("generate", config, env=env)
    job = cluster.wait(ids["generate"])[ids["generate"]]
    assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", job
    assert job["JobName"] == "thinksteer-generate"
    assert (tmp_path / "run" / "generate.done").read_text().split()[1] == f"job={ids['generate']}"
    assert (logs / f"thinksteer-generate-{ids['generate']}.out").exists()

    # A task with bad input: exit 2, not requeued; the other task completes; reduce reports it missing.
    env["SBATCH_ARGS"] = "--time=10"
    config = fake_config(tmp_path / "bad.ini", tmp_path / "bad", tasks=2, seconds=0.2)
    ids = cluster.submit("sweep", config, "--fake.fail_task", "1", env=env)
    tasks = cluster.wait(ids["sweep"])
    bad = tasks[f"{ids['sweep']}_1"]
    assert bad["JobState"] == "FAILED" and bad["ExitCode"] == "2:0" and bad["Restarts"] == "0", bad
    assert tasks[f"{ids['sweep']}_0"]["JobState"] == "COMPLETED"
    assert "bad input (exit 2): not retried" in (logs / f"thinksteer-sweep-{ids['sweep']}_1.out").read_text()
    red = cluster.wait(ids["reduce"])[ids["reduce"]]
    assert red["ExitCode"] == "3:0", red
    assert (tmp_path / "bad" / "sweep" / "missing.txt").read_text().strip() == "1"

    # Bad input to submit.sh itself: the plan's exit code, nothing submitted.
    r = cluster.run(SUBMIT, "sweep", tmp_path / "nonexistent.ini", check=False, env=env)
    assert r.returncode == 2 and "no config file" in r.stderr, r
    r = cluster.run(SUBMIT, "sweep", config, "--fake.tasks", "zero", check=False, env=env)
    assert r.returncode == 2 and "sweep plan" in r.stderr, r


def test_taxonomy_sweep_through_the_same_machinery(cluster, logs, tmp_path, request):
    """The taxonomy sweep (sweep.kind = taxonomy) through the same slurm/submit.sh, sweep.sbatch and
    reduce.sbatch: its rows run as array tasks, reduce writes taxonomy/summary.csv, equal to the same sweep
    run in one process (`thinksteer taxonomy`) in another run dir."""
    real, why = real_sweep(request)
    if not real:
        pytest.skip(f"needs the real binary: {why}")
    binary = real[0]
    sys.path.insert(0, str(ROOT / "tests" / "taxonomy"))
    from planted_sentences import write_planted_sentences
    sentences = tmp_path / "sentences.h5"
    write_planted_sentences(sentences, n=600)
    config = tmp_path / "taxonomy.ini"
    config.write_text(f"[run]\nthreads = 1\n\n[sweep]\nkind = taxonomy\n\n[taxonomy]\nsentences = {sentences}\nlayers = 5\n"
                      "clusters = 3,6\nmethods = sae,kmeans\nseeds = 0\nmax_epochs = 20\npatience = 5\nbatch_size = 128\n")
    run_dir, local_dir = tmp_path / "slurm_run", tmp_path / "local_run"
    env = dict(cluster.env, THINKSTEER_BIN=str(binary), THINKSTEER_LOG_DIR=str(logs), SBATCH_ARGS="--time=10")
    ids = cluster.submit("sweep", config, "--run.dir", str(run_dir), env=env)
    assert len((run_dir / "taxonomy" / "manifest.jsonl").read_text().splitlines()) == 4
    tasks = cluster.wait(ids["sweep"], timeout=300)
    assert all(j["JobState"] == "COMPLETED" for j in tasks.values()), {t: j["JobState"] for t, j in tasks.items()}
    red = cluster.wait(ids["reduce"])[ids["reduce"]]
    assert red["JobState"] == "COMPLETED" and red["ExitCode"] == "0:0", \
        red | {"log": (logs / f"thinksteer-reduce-{ids['reduce']}.out").read_text()}
    local = {k: v for k, v in ENV.items() if not k.startswith(("SLURM_", "SBATCH_"))}
    cluster.run(binary, "taxonomy", "--config", config, "--run.dir", local_dir, env=local, timeout=300)
    assert read_csv(run_dir / "taxonomy" / "summary.csv") == read_csv(local_dir / "taxonomy" / "summary.csv")
