"""The distributed runtime end to end: `thinksteer generate` and `collect` under mpiexec.

- Results do not depend on the rank layout: greedy and sampled tokens are identical (bitwise) and
  activations agree within 1e-5 for 1, 2 and 3 ranks, data parallel (D), pipeline stages (P) and
  both (2 x 2 on 4 ranks).
- Each pipeline stage holds only its layers: resident parameter bytes ~ total / P.
- The HDF5 outputs open in h5py and xarray with the documented names, shapes, dims and attributes.
- Faults: a rank killed with SIGKILL mid-write leaves nothing that looks valid and the rerun equals an
  uninterrupted run; SIGTERM / SIGUSR1 stop every rank at a batch boundary with exit code 75 and the
  rerun continues from the saved progress; a rank that throws ends every rank with a non-zero code
  within 30 s, its message in the log.
Fault injection: THINKSTEER_FAULT (src/dist/stop.h).
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import ENV, binary, demo_model  # noqa: E402,F401  (fixtures)
PROMPTS = ROOT / "configs" / "prompts" / "demo.jsonl"
EXIT_RESUMABLE = 75
ATOL = 1e-5


@pytest.fixture(scope="module")
def model(demo_model):
    return demo_model


def run(binary, stage, ranks, run_dir, model, *extra, fault=None, check=True, timeout=120, prompts=PROMPTS):
    cmd = ["mpiexec", "-n", str(ranks), binary, stage, "--model.path", str(model), "--data.prompts", str(prompts),
           "--run.dir", str(run_dir), "--generate.max_new_tokens", "24", "--generate.temperature", "0.8",
           "--generate.seed", "7", "--log.progress_seconds", "0.01", *extra]
    env = dict(ENV)
    if fault:
        env["THINKSTEER_FAULT"] = fault
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    proc.wall = time.monotonic() - start
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def generations(run_dir):
    return [json.loads(line) for line in (run_dir / "generate" / "generations.jsonl").read_text().splitlines()]


def activations(run_dir):
    with h5py.File(run_dir / "collect" / "activations.h5", "r") as f:
        return {k: f["activations"][k][()] for k in f["activations"] if k not in ("row", "d_model", "head", "d_head")}


def same_activations(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if a[k].dtype.kind == "f":
            np.testing.assert_allclose(a[k], b[k], rtol=0, atol=ATOL, err_msg=k)
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


LAYOUTS = [(1, 1), (2, 1), (3, 1), (2, 2), (3, 3), (4, 2)]  # (ranks, pipeline stages)
COLLECT = ["--collect.hooks", "blocks.*.hook_resid_post,blocks.1.attn.hook_z,blocks.2.hook_mlp_out,ln_final.hook_normalized",
           "--collect.batch_size", "3"]


@pytest.fixture(scope="module")
def baseline(binary, model, tmp_path_factory):
    d = tmp_path_factory.mktemp("baseline")
    run(binary, "generate", 1, d, model, "--generate.batch_size", "3")
    run(binary, "collect", 1, d, model, *COLLECT)
    run(binary, "collect", 1, d / "gen", model, *COLLECT, "--collect.source", "generations", "--collect.positions", "generated",
        "--collect.input", str(d / "generate" / "generations.jsonl"))
    return d


@pytest.mark.parametrize("ranks,stages", LAYOUTS[1:])
def test_results_do_not_depend_on_the_layout(binary, model, baseline, tmp_path, ranks, stages):
    par = ["--parallel.pipeline_stages", str(stages), "--generate.batch_size", "3"]
    proc = run(binary, "generate", ranks, tmp_path, model, *par)
    ref, got = generations(baseline), generations(tmp_path)
    assert [g["token_ids"] for g in got] == [r["token_ids"] for r in ref]  # bitwise, sampled at T=0.8
    assert got == ref
    run(binary, "collect", ranks, tmp_path, model, *COLLECT, "--parallel.pipeline_stages", str(stages))
    same_activations(activations(baseline), activations(tmp_path))
    run(binary, "collect", ranks, tmp_path / "gen", model, *COLLECT, "--parallel.pipeline_stages", str(stages),
        "--collect.source", "generations", "--collect.positions", "generated",
        "--collect.input", str(baseline / "generate" / "generations.jsonl"))
    same_activations(activations(baseline / "gen"), activations(tmp_path / "gen"))
    if stages > 1:
        # Each stage holds only its layers (+ embeddings first, + head last): about total / P.
        mb = {int(r): float(x) for r, x in re.findall(r"\[r(\d+)/\d+\] \[info\] model .*?: ([\d.]+) MB resident", proc.stderr)}
        assert len(mb) == ranks
        per_stage = [mb[r] for r in range(stages)]
        assert max(per_stage) < 0.75 * sum(per_stage), per_stage


def test_hdf5_layout_h5py_and_xarray(baseline):
    import xarray as xr
    from thinksteer_analysis import load_traces, open_activations, summarize_traces
    assert summarize_traces(load_traces(baseline))["traces"] == 8
    assert open_activations(baseline)["blocks.0.hook_resid_post"].dims == ("row", "d_model")
    with h5py.File(baseline / "generate" / "generations.h5", "r") as f:
        assert f.attrs["format"] == "thinksteer.generations"
        for key in ("config", "config_sha256", "git_commit", "provenance", "model_path", "world_size", "seed"):
            assert key in f.attrs, key
        prov = json.loads(f.attrs["provenance"])
        assert {"torch", "mpi", "hdf5"} <= prov["versions"].keys()
        assert prov["checkpoint_shards"]
        n = f["prompts/id"].shape[0]
        assert n == 8 and f["prompts/n_new_tokens"].shape == (n,)
        off, cnt = f["prompts/token_offset"][()], f["prompts/n_new_tokens"][()]
        ids = f["tokens/id"][()]
        ref = generations(baseline)
        for i in range(n):
            assert list(ids[off[i]:off[i] + cnt[i]]) == ref[i]["token_ids"]
            assert f["prompts/text"][i].decode() == ref[i]["text"].replace("\x00", "\ufffd")  # HDF5 strings hold no NUL
    gen = xr.open_dataset(baseline / "generate" / "generations.h5", engine="h5netcdf", group="prompts")
    assert gen["n_new_tokens"].dims == ("prompt",)
    with h5py.File(baseline / "collect" / "activations.h5", "r") as f:
        assert f.attrs["format"] == "thinksteer.activations"
        a = f["activations/blocks.0.hook_resid_post"]
        n_rows = f["activations/sequence"].shape[0]
        assert a.shape == (n_rows, 128) and a.dtype == np.float32
        assert a.attrs["hook"] == "blocks.0.hook_resid_post" and a.attrs["layer"] == "0"
        assert f["activations/blocks.1.attn.hook_z"].shape == (n_rows, 4, 32)
        assert n_rows == f["tokens/id"].shape[0] == int(f["sequences/n_tokens"][()].sum())
        assert f["tokens/char_end"][()].max() > 0
    # Character offsets cover each text in order (prompt tokens from the tokenizer, generated tokens
    # from decoding); like HF offsets, the tokens of a character split across tokens all cover it.
    with h5py.File(baseline / "gen" / "collect" / "activations.h5", "r") as f:
        texts = [t.decode() for t in f["sequences/text"][()]]
        seq, cb, ce = f["tokens/sequence"][()], f["tokens/char_begin"][()], f["tokens/char_end"][()]
        for s_index, text in enumerate(texts):
            b, e = cb[seq == s_index], ce[seq == s_index]
            assert (b <= e).all() and (np.diff(b) >= 0).all() and (np.diff(e) >= 0).all(), s_index
            assert (b[1:] <= e[:-1]).all(), s_index  # no gaps
            assert b[0] == 0 and e[-1] == len(text), s_index
    ds = xr.open_dataset(baseline / "collect" / "activations.h5", engine="h5netcdf", group="activations")
    assert ds["blocks.3.hook_resid_post"].dims == ("row", "d_model")
    assert ds["blocks.1.attn.hook_z"].dims == ("row", "head", "d_head")
    assert ds["ln_final.hook_normalized"].shape == (n_rows, 128)


def test_output_dtypes(binary, model, baseline, tmp_path):
    from thinksteer_analysis.activations import load_activations
    ref = activations(baseline)["blocks.3.hook_resid_post"]
    np.testing.assert_array_equal(load_activations(baseline, "blocks.3.hook_resid_post"), ref)
    for dtype in ("float16", "bfloat16"):
        run(binary, "collect", 2, tmp_path / dtype, model, *COLLECT, "--output.dtype", dtype)
        with h5py.File(tmp_path / dtype / "collect" / "activations.h5", "r") as f:
            d = f["activations/blocks.3.hook_resid_post"]
            if dtype == "float16":
                assert d.dtype == np.float16
            else:
                assert d.dtype == np.uint16 and d.attrs["encoding"] == "bfloat16"
        got = load_activations(tmp_path / dtype, "blocks.3.hook_resid_post")  # decodes bf16 bits
        tol = 2 ** -10 if dtype == "float16" else 2 ** -7  # relative rounding of the stored type
        np.testing.assert_allclose(got, ref, rtol=tol, atol=1e-3)


def test_span_means(binary, model, tmp_path):
    # Spans in code points of the prompt text: the row is the mean over the overlapping tokens.
    prompts = tmp_path / "spans.jsonl"
    prompts.write_text("\n".join(json.dumps({"id": f"p{i}", "question": "Alpha beta gamma. Delta epsilon?",
                                             "spans": [{"begin": 0, "end": 17, "label": "first"},
                                                       {"begin": 18, "end": 32, "label": "second"}]}) for i in range(3)) + "\n")
    cmd = ["--collect.positions", "spans", "--collect.hooks", "blocks.1.hook_resid_post"]
    run(binary, "collect", 2, tmp_path / "spans", model, *cmd, prompts=prompts)
    run(binary, "collect", 1, tmp_path / "all", model, "--collect.hooks", "blocks.1.hook_resid_post", prompts=prompts)
    with h5py.File(tmp_path / "spans" / "collect" / "activations.h5", "r") as s, \
         h5py.File(tmp_path / "all" / "collect" / "activations.h5", "r") as a:
        assert [x.decode() for x in s["activations/label"][()]] == ["first", "second"] * 3
        full = a["activations/blocks.1.hook_resid_post"][()]
        rows = s["activations/blocks.1.hook_resid_post"][()]
        seq, tb, te = s["activations/sequence"][()], s["activations/token_begin"][()], s["activations/token_end"][()]
        offset = a["sequences/row_offset"][()]
        for r in range(len(rows)):
            expect = full[offset[seq[r]] + tb[r]: offset[seq[r]] + te[r]].astype(np.float64).mean(0)
            np.testing.assert_allclose(rows[r], expect, rtol=0, atol=ATOL)


def files_that_look_valid(run_dir, stage, name):
    d = run_dir / stage
    return [p.name for p in d.glob(f"{name}*")] if d.exists() else []


@pytest.mark.parametrize("stage,name", [("generate", "generations"), ("collect", "activations")])
def test_sigkill_mid_write_leaves_nothing_valid_and_rerun_matches(binary, model, baseline, tmp_path, stage, name):
    extra = ["--generate.batch_size", "3"] if stage == "generate" else COLLECT
    # generate: the first collective write of the output file; collect: the second dataset write of round 1.
    proc = run(binary, stage, 2, tmp_path, model, *extra, fault="sigkill@write:1:1" if stage == "generate" else "sigkill@write:2:1",
               check=False)
    assert proc.returncode != 0
    left = files_that_look_valid(tmp_path, stage, name)
    assert not [f for f in left if f.endswith(".h5") or f.endswith(".done") or f.endswith(".jsonl") or "progress" in f], left
    run(binary, stage, 2, tmp_path, model, *extra)
    if stage == "generate":
        assert generations(tmp_path) == generations(baseline)
    else:
        same_activations(activations(baseline), activations(tmp_path))


@pytest.mark.parametrize("signal", ["sigterm", "sigusr1"])
@pytest.mark.parametrize("stage", ["generate", "collect"])
def test_signal_stops_at_a_batch_boundary_and_rerun_continues(binary, model, baseline, tmp_path, signal, stage):
    extra = ["--generate.batch_size", "1"] if stage == "generate" else [*COLLECT[:2], "--collect.batch_size", "1"]
    proc = run(binary, stage, 2, tmp_path, model, *extra, fault=f"{signal}@batch:2:1", check=False)
    assert proc.returncode == EXIT_RESUMABLE, proc.stderr
    assert proc.wall < 30
    out = tmp_path / stage / ("generations.h5" if stage == "generate" else "activations.h5")
    assert not out.exists()
    again = run(binary, stage, 2, tmp_path, model, *extra)
    assert "resuming" in again.stderr, again.stderr
    m = re.search(r"resuming, (\d+) of (\d+)", again.stderr)
    assert 0 < int(m.group(1)) < int(m.group(2))
    if stage == "generate":
        assert generations(tmp_path) == generations(baseline)
        assert not (tmp_path / "generate" / "generations.progress.jsonl").exists()
    else:
        ref = activations(baseline)
        got = activations(tmp_path)
        for k in ("blocks.0.hook_resid_post", "blocks.3.hook_resid_post", "sequence", "token_begin"):
            np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=ATOL, err_msg=k)


@pytest.mark.parametrize("stage", ["generate", "collect"])
def test_a_rank_that_throws_ends_every_rank(binary, model, tmp_path, stage):
    extra = ["--generate.batch_size", "1"] if stage == "generate" else ["--collect.batch_size", "1"]
    proc = run(binary, stage, 3, tmp_path, model, *extra, fault="throw@batch:2:1", check=False)
    assert proc.returncode not in (0, EXIT_RESUMABLE)
    assert proc.wall < 30
    assert re.search(r"\[r1/3\] \[error\] .*injected fault at batch", proc.stderr), proc.stderr
    assert not (tmp_path / stage / ("generations.h5" if stage == "generate" else "activations.h5")).exists()


def test_rerun_skips_finished_work(binary, model, baseline):
    proc = run(binary, "generate", 2, baseline, model, "--generate.batch_size", "3")
    assert "complete for this config" in proc.stderr


def test_bad_layout_is_an_input_error(binary, model, tmp_path):
    proc = run(binary, "generate", 3, tmp_path, model, "--parallel.pipeline_stages", "2", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "parallel.pipeline_stages" in proc.stderr
    proc = run(binary, "generate", 1, tmp_path, model, "--parallel.pipeline_stages", "5", check=False)
    assert proc.returncode == 2 and "parallel.pipeline_stages" in proc.stderr


def test_builtin_prompt_set(binary, model, tmp_path):
    run(binary, "generate", 2, tmp_path, model, "--data.limit", "3", prompts="builtin:toy-test")
    rows = generations(tmp_path)
    assert len(rows) == 3 and all(r["reference_answer"] and r["prompt"] for r in rows)
    # The ten-category reasoning set: 24 tasks per category, 4 of them held out.
    run(binary, "generate", 2, tmp_path / "reasoning", model, "--generate.batch_size", "16", prompts="builtin:reasoning-test")
    rows = generations(tmp_path / "reasoning")
    assert len(rows) == 40 and len({r["id"].rsplit("-", 1)[0] for r in rows}) == 10
    proc = run(binary, "generate", 1, tmp_path / "bad", model, prompts="builtin:nonesuch", check=False)
    assert proc.returncode == 2 and "data.prompts" in proc.stderr


@pytest.mark.parametrize("stage", ["generate", "collect"])
def test_damaged_progress_record_means_starting_over(binary, model, baseline, tmp_path, stage):
    extra = ["--generate.batch_size", "1"] if stage == "generate" else [*COLLECT[:2], "--collect.batch_size", "1"]
    proc = run(binary, stage, 2, tmp_path, model, *extra, fault="sigterm@batch:2:0", check=False)
    assert proc.returncode == EXIT_RESUMABLE, proc.stderr
    record = tmp_path / stage / ("generations.progress.jsonl" if stage == "generate" else "activations.h5.progress.json")
    record.write_text('{"config_sha256": ')  # damaged by hand
    again = run(binary, stage, 2, tmp_path, model, *extra)
    assert "starting over" in again.stderr
    if stage == "generate":
        assert generations(tmp_path) == generations(baseline)
    else:
        np.testing.assert_allclose(activations(tmp_path)["blocks.3.hook_resid_post"], activations(baseline)["blocks.3.hook_resid_post"],
                                   rtol=0, atol=ATOL)
