"""The planted-truth steering acceptance, as the README's main command shows it:
configs/demo.ini on 2 ranks (generate -> annotate -> vectors -> attribute -> steer), then the acceptance
table of analysis/thinksteer_analysis/acceptance.py: for backtracking, uncertainty-estimation and
example-testing, at a layer attribute selected, +3 raises the behaviour's token share and -3 lowers it
(bootstrap 95% intervals over 200 held-out prompts exclude zero) while the same-norm random directions
change it less in both directions. `collect` is left out (the chain does not read its output)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import ENV, binary, toy_model  # noqa: E402,F401  (fixtures)


def test_demo_steering_acceptance(binary, toy_model, tmp_path):
    run_dir = tmp_path / "demo"
    for stage in ("generate", "annotate", "vectors", "attribute", "steer"):
        r = subprocess.run(["mpiexec", "-n", "2", str(binary), stage, "--config", str(ROOT / "configs" / "demo.ini"),
                            "--run.dir", str(run_dir), "--model.path", str(toy_model), "--run.threads", "1"],
                           env=ENV, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{stage}: {r.stderr[-3000:]}"
    from thinksteer_analysis.acceptance import acceptance_rows, behaviour_verdicts, format_acceptance
    from thinksteer_analysis.sweep_summary import load_sweep_summary
    s = load_sweep_summary(run_dir)
    rows = acceptance_rows(s)
    print(format_acceptance(rows, "token_share", s.ci, 100))
    verdicts = behaviour_verdicts(rows, min_prompts=100)
    assert set(verdicts) == {"backtracking", "uncertainty-estimation", "example-testing"}
    failing = [v for v, passing in verdicts.items() if not passing]
    assert not failing, f"no selected layer steers {failing}"
