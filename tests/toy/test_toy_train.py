"""`thinksteer toy train` end to end, on a tiny model (d_model 32, 2 layers) and a 240-problem corpus.

- The loss goes down, and the checkpoint is an HF checkpoint: transformers' Qwen2ForCausalLM loads it
  and computes the same held-out loss and last-position logits as thinksteer (train/parity.json),
  within 1e-4 (absolute, logits of magnitude ~10; both sides compute in float32 from the same stored
  weights, so only summation order differs).
- Data parallel: 2 ranks under mpiexec give the same weights as 1 rank within 1e-4 (the gradient sum
  is the same up to summation order, which 24 Adam steps amplify: 3.7e-5 measured on one 2-core CPU, the
  same before and after the hybrid's commits; below 1e-5 on others).
- Resume: a run stopped by SIGTERM mid-training (exit 75) or killed by SIGKILL continues from its saved
  state and ends with exactly the weights of an uninterrupted run.
- A rerun of a finished run skips the work; bad input is a clear error.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thinksteer_testing import ENV  # noqa: E402
EXIT_RESUMABLE = 75
TINY = ["--toy.n_problems", "240", "--toy.vocab_size", "400", "--train.d_model", "32", "--train.n_layer", "2",
        "--train.n_head", "2", "--train.n_kv_head", "1", "--train.d_mlp", "64", "--train.steps", "24",
        "--train.batch_size", "8", "--train.warmup_steps", "4", "--train.lr", "1e-2", "--log.progress_seconds", "0.01"]


def thinksteer(binary, stage, run_dir, *extra, ranks=None, fault=None, check=True, steps=24):
    tiny = [str(steps) if i > 0 and TINY[i - 1] == "--train.steps" else a for i, a in enumerate(TINY)]
    cmd = [binary, *stage.split(), "--run.dir", str(run_dir), *tiny, *extra]
    if ranks:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    env = dict(ENV)
    if fault:
        env["THINKSTEER_FAULT"] = fault
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def weights(run_dir):
    return load_file(str(Path(run_dir) / "train" / "model" / "model.safetensors"))


@pytest.fixture(scope="module")
def tokenizer_dir(binary, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tok")
    thinksteer(binary, "toy tokenizer", run_dir)
    return run_dir / "toy" / "tokenizer"


@pytest.fixture(scope="module")
def trained(binary, tokenizer_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("train")
    proc = thinksteer(binary, "toy train", run_dir, "--train.tokenizer", str(tokenizer_dir), "--train.save_dtype", "float32")
    return run_dir, proc


def test_loss_goes_down_and_outputs_are_complete(trained):
    run_dir, proc = trained
    rows = [json.loads(line) for line in (run_dir / "train" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 23
    assert rows[-1]["loss"] < 0.75 * rows[0]["loss"], rows
    model = run_dir / "train" / "model"
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "provenance.json"):
        assert (model / name).is_file(), name
    assert not (run_dir / "train" / "state.safetensors").exists()
    assert (run_dir / "train" / "parity.json.done").is_file()
    prov = json.loads((model / "provenance.json").read_text())
    assert prov["stage"] == "toy train" and "[train]\n" in prov["config"] and "d_model = 32\n" in prov["config"]
    assert "toy train:" in proc.stderr and "toy train 24/24" in proc.stderr


@pytest.mark.parametrize("save_dtype", ["float32", "bfloat16"])
def test_transformers_loads_the_checkpoint_with_the_same_logits(binary, tokenizer_dir, trained, tmp_path, save_dtype):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    run_dir = trained[0]
    if save_dtype != "float32":
        run_dir = tmp_path / "bf16"
        thinksteer(binary, "toy train", run_dir, "--train.tokenizer", str(tokenizer_dir), "--train.save_dtype", save_dtype)
    model_dir = run_dir / "train" / "model"
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.config.num_key_value_heads == 1 and model.config.tie_word_embeddings
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"))
    parity = json.loads((run_dir / "train" / "parity.json").read_text())["sequences"]
    assert len(parity) == 4
    for row in parity:
        ids, n_prompt = row["input_ids"], row["n_prompt"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        assert torch.allclose(logits[-1], torch.tensor(row["last_logits"]), atol=1e-4, rtol=0), \
            (logits[-1] - torch.tensor(row["last_logits"])).abs().max()
        loss = torch.nn.functional.cross_entropy(logits[n_prompt - 1:-1], torch.tensor(ids[n_prompt:]))
        assert abs(loss.item() - row["loss"]) < 1e-5, (loss.item(), row["loss"])
    # The tokenizer files load in HF tokenizers and give our token ids for the prompt.
    assert tok.decode(parity[0]["input_ids"][:3])


def test_two_ranks_train_the_same_model_as_one(binary, tokenizer_dir, trained, tmp_path):
    thinksteer(binary, "toy train", tmp_path, "--train.tokenizer", str(tokenizer_dir), "--train.save_dtype", "float32", ranks=2)
    one, two = weights(trained[0]), weights(tmp_path)
    assert one.keys() == two.keys()
    worst = max(float(np.abs(one[k] - two[k]).max()) for k in one)
    assert worst < 1e-4, worst


def test_random_pushes_change_training_the_same_way_on_any_number_of_ranks(binary, tokenizer_dir, tmp_path):
    # train.push_share: every draw is a function of (seed, step, row in the step's batch), not of the rank that
    # holds the row, so 2 ranks give 1 rank's weights; the pushes change the model (every sequence pushed, up to
    # 2x its mean activation's norm). 6 steps: pushes that large on a 32-wide model amplify the summation-order
    # difference of the gradient sum from step to step (1.2e-6 after 6 steps, 5e-3 after 24, measured), which is
    # not what this test is about.
    args = ["--train.tokenizer", str(tokenizer_dir), "--train.save_dtype", "float32"]
    push = [*args, "--train.push_share", "1"]
    thinksteer(binary, "toy train", tmp_path / "plain", *args, steps=6)
    thinksteer(binary, "toy train", tmp_path / "one", *push, steps=6)
    thinksteer(binary, "toy train", tmp_path / "two", *push, ranks=2, steps=6)
    plain, one, two = weights(tmp_path / "plain"), weights(tmp_path / "one"), weights(tmp_path / "two")
    assert max(float(np.abs(one[k] - two[k]).max()) for k in one) < 1e-4
    assert max(float(np.abs(one[k] - plain[k]).max()) for k in one) > 1e-2  # 0.06 measured


@pytest.mark.parametrize("fault", ["sigterm@batch:11", "sigkill@batch:15"])
def test_a_stopped_run_resumes_to_the_same_weights(binary, tokenizer_dir, trained, tmp_path, fault):
    args = ["--train.tokenizer", str(tokenizer_dir), "--train.save_dtype", "float32", "--train.checkpoint_every", "8"]
    proc = thinksteer(binary, "toy train", tmp_path, *args, fault=fault, check=False)
    if fault.startswith("sigterm"):
        assert proc.returncode == EXIT_RESUMABLE, proc.stderr
        assert "stopped at step 10" in proc.stderr
    else:
        assert proc.returncode != 0
    assert (tmp_path / "train" / "state.safetensors").is_file()
    assert not (tmp_path / "train" / "model").exists()
    proc = thinksteer(binary, "toy train", tmp_path, *args)
    assert "resuming at step " + ("10" if fault.startswith("sigterm") else "8") in proc.stderr
    one, resumed = weights(trained[0]), weights(tmp_path)
    for k in one:
        assert np.array_equal(one[k], resumed[k]), k


def test_rerun_skips_finished_work(binary, tokenizer_dir, trained):
    proc = thinksteer(binary, "toy train", trained[0], "--train.tokenizer", str(tokenizer_dir), "--train.save_dtype", "float32")
    assert "skipping" in proc.stderr


def test_a_new_config_replaces_a_finished_model(binary, tokenizer_dir, tmp_path):
    # Regression: replacing an existing checkpoint directory once crashed (std::filesystem::remove_all
    # resolving into libtorch's copy; core/atomic_file.h remove_tree).
    args = ["--train.tokenizer", str(tokenizer_dir), "--train.save_dtype", "float32"]
    thinksteer(binary, "toy train", tmp_path, *args)
    first = weights(tmp_path)
    proc = thinksteer(binary, "toy train", tmp_path, *args, "--train.seed", "1")
    assert "skipping" not in proc.stderr
    second = weights(tmp_path)
    assert any(not np.array_equal(first[k], second[k]) for k in first)
    assert not (tmp_path / "train" / "model.partial").exists()


def test_bad_input(binary, tmp_path):
    proc = thinksteer(binary, "toy train", tmp_path, check=False)
    assert proc.returncode == 2 and "tokenizer.json" in proc.stderr and "toy tokenizer" in proc.stderr
    proc = thinksteer(binary, "toy train", tmp_path, "--train.n_kv_head", "3", check=False)
    assert proc.returncode == 2 and "train.n_kv_head" in proc.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tokenizer.json").write_text('{"model": {"type": "BPE"')
    proc = thinksteer(binary, "toy train", tmp_path, "--train.tokenizer", str(bad), check=False)
    assert proc.returncode == 2 and str(bad / "tokenizer.json") in proc.stderr
    assert not (tmp_path / "train" / "model").exists()
