"""The shipped toy models (models/toy-thinker, models/toy-base) pass the planted-truth acceptance on a
sample: thinksteer's own greedy generation on the first 80 held-out problems (builtin:toy-test), scored
by `toy eval` against the corpus each model was trained on (configs/toy/<style>.ini).

Thresholds are the acceptance criteria of the full 200-problem run (scripts/toy_acceptance.sh; numbers
in README.md "The planted-truth world"): >= 95% of traces close </think> and give a parseable answer;
thinker accuracy >= 80%; every behaviour's sentence share within +-5 percentage points of the corpus's;
base accuracy at least 10 points below the thinker's. Greedy decoding makes the sample deterministic.
"""
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = 80


def evaluate(binary, style, run_dir):
    args = ["--config", str(ROOT / "configs" / "toy" / f"{style}.ini"), "--run.dir", str(run_dir),
            "--model.path", str(ROOT / "models" / f"toy-{style}"), "--data.limit", str(SAMPLE)]
    for stage in (["generate"], ["toy", "eval"]):
        proc = subprocess.run([binary, *stage, *args], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    return json.loads((Path(run_dir) / "toy" / "eval.json").read_text())


@pytest.fixture(scope="module")
def reports(binary, tmp_path_factory):
    return {style: evaluate(binary, style, tmp_path_factory.mktemp(style)) for style in ("thinker", "base")}


@pytest.mark.parametrize("style", ["thinker", "base"])
def test_traces_close_and_answer(reports, style):
    r = reports[style]
    assert r["n"] == SAMPLE
    assert r["closed_rate"] >= 0.95 and r["parseable_rate"] >= 0.95, r


@pytest.mark.parametrize("style", ["thinker", "base"])
def test_behaviour_shares_match_the_corpus(reports, style):
    r = reports[style]
    assert r["max_abs_diff_pp"] <= 5.0, {label: x["diff_pp"] for label, x in r["labels"].items()}
    assert r["unlabelled_share"] <= 0.02


def test_thinker_is_accurate_and_base_is_not(reports):
    thinker, base = reports["thinker"]["accuracy"], reports["base"]["accuracy"]
    assert thinker >= 0.80, thinker
    assert base <= thinker - 0.10, (thinker, base)


def test_thinker_backtracks_and_base_never_does(reports):
    share = {style: {label: x["generated_share"] for label, x in reports[style]["labels"].items()} for style in reports}
    assert share["thinker"]["backtracking"] > 0.03
    for label in ("backtracking", "uncertainty-estimation", "example-testing"):
        assert share["base"][label] == 0.0, label
