"""What the pytest suites under tests/ share (each puts tests/ on sys.path and imports from here):
the environment for mpiexec, and the fixtures for the thinksteer binary (--thinksteer), the small random
demo checkpoint (--demo-model; made by scripts/make_demo_model.py when absent) and the shipped toy
thinker (--toy-model; skipped when absent). Each suite's conftest.py declares the options it takes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Open MPI refuses root unless told; oversubscription lets several ranks share a small machine; one
# torch thread per rank keeps ranks from stalling each other.
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")


# The command-line options the suites share, each also read from an environment variable so a suite runs
# the same from CTest and by hand. A suite's conftest.py calls add_options(parser, ...) with the ones it takes.
OPTIONS = {
    "thinksteer": ("THINKSTEER_BIN", "thinksteer executable"),
    "demo-model": ("THINKSTEER_DEMO_MODEL", "demo checkpoint (made if absent)"),
    "toy-model": ("THINKSTEER_TOY_MODEL", "shipped toy thinker directory (tests that need it are skipped if absent)"),
}


def run_thinksteer(binary, *args, ranks=0, check=True, timeout=600):
    """Runs `binary args...` (under mpiexec with `ranks` > 0 ranks) with ENV; raises AssertionError with the
    command and its output when `check` and it fails. Returns the CompletedProcess."""
    cmd = [str(binary), *map(str, args)]
    if ranks:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def add_options(parser, *names):
    group = parser.getgroup("thinksteer")
    for name in names:
        env, text = OPTIONS[name]
        group.addoption(f"--{name}", default=os.environ.get(env), help=text)


@pytest.fixture(scope="module")
def binary(request):
    path = request.config.getoption("--thinksteer")
    assert path, "--thinksteer is required"
    return path


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory, request):
    out = Path(request.config.getoption("--demo-model") or tmp_path_factory.mktemp("demo") / "model")
    if not (out / "config.json").exists() or not (out / "tokenizer.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_model.py"), "--out", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def toy_model(request):
    path = request.config.getoption("--toy-model")
    if not path or not (Path(path) / "model.safetensors").exists():
        pytest.skip("no shipped toy model (--toy-model)")
    return Path(path)
