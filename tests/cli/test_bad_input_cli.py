"""Bad input on the command line, in options and in prompts files: `thinksteer generate` and `thinksteer-check`
config/prompts, under the same contract as tests/cli/test_bad_input.py (exit 2, one line naming file and field, no
crash, no output that looks valid)."""
import json

import pytest

from bad_input_common import (  # the suite's helpers
    run, assert_no_crash, expect_bad_input, run_all, st_path)
from bad_input_common import opts, tokenizer_text, ckpt  # noqa: F401  (pytest fixtures; ckpt needs tokenizer_text)


# ----------------------------------------------------------------------------------------------
# Options and prompts: `thinksteer generate` (and thinksteer-check config/prompts)


@pytest.fixture
def gen_env(opts, ckpt, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "a", "question": "1+1="}\n{"id": "b", "question": "2+2="}\n')
    run_dir = tmp_path / "run"
    return {"ckpt": ckpt, "prompts": prompts, "run": run_dir}


def generate_cmd(opts, env, *extra, prompts=None):
    fmt = [] if "--generate.chat_format" in extra else ["--generate.chat_format", "raw"]
    return [opts["main"], "generate", "--model.path", env["ckpt"], "--data.prompts", prompts or env["prompts"],
            "--run.dir", env["run"], *fmt, "--generate.max_new_tokens", "2", "--generate.batch_size", "2", *extra]


def assert_no_output(run_dir):
    if not run_dir.exists():
        return
    found = [p for p in run_dir.rglob("*") if p.name.startswith("generations.") or p.name.endswith(".done")]
    assert not found, f"output left behind after a bad-input error: {found}"


def expect_generate_error(opts, env, extra, file, field, contains=(), prompts=None, check=None, main=True):
    """`thinksteer generate` with `extra` options (and the thinksteer-check command `check`, if given,
    concurrently): both fail with the same error; generate leaves no output behind."""
    cmds = [] if opts["only_check"] or not main else [generate_cmd(opts, env, *extra, prompts=prompts)]
    if check:
        cmds.append([opts["check"], *check])
    if not cmds:
        return
    for cmd, result in zip(cmds, run_all(cmds)):
        expect_bad_input(cmd, file, field, contains, result=result)
    assert_no_output(env["run"])


def test_generate_valid_input_writes_output(opts, gen_env):
    """Positive control: the same setup without corruption generates (so 'no output' below means something)."""
    if opts["only_check"]:
        rc, out, err = run([opts["check"], "prompts", gen_env["prompts"]])
        assert rc == 0 and "count        2" in out, out + err
        return
    cmd = [str(c) for c in generate_cmd(opts, gen_env)]
    rc, out, err = run(cmd)
    assert_no_crash(rc, out, err, cmd)
    assert rc == 0, f"{cmd}\n{out}\n{err}"
    out_file = gen_env["run"] / "generate" / "generations.jsonl"
    assert out_file.is_file() and (gen_env["run"] / "generate" / "generations.h5.done").is_file()
    assert len(out_file.read_text().splitlines()) == 2


def test_unknown_key_in_ini(opts, gen_env, tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[generate]\nmax_new_tokens = 4\nmax_new_tokenz = 5\n")
    expect_generate_error(opts, gen_env, ["--config", ini], ini, "max_new_tokenz", ["unknown config key"],
                          check=["config", "generate", "--config", ini])


def test_unknown_section_in_ini(opts, gen_env, tmp_path):
    ini = tmp_path / "bad_section.ini"
    ini.write_text("[generation]\nmax_new_tokens = 4\n")
    expect_generate_error(opts, gen_env, ["--config", ini], ini, "generation.max_new_tokens",
                          check=["config", "generate", "--config", ini])


def test_bad_value_in_ini(opts, gen_env, tmp_path):
    ini = tmp_path / "bad_value.ini"
    ini.write_text("[generate]\ntop_k = lots\n")
    expect_generate_error(opts, gen_env, ["--config", ini], ini, "top_k", check=["config", "generate", "--config", ini])


def test_missing_ini(opts, gen_env, tmp_path):
    ini = tmp_path / "absent.ini"
    expect_generate_error(opts, gen_env, ["--config", ini], ini, "--config", check=["config", "generate", "--config", ini])


def test_unknown_command_line_option(opts, gen_env):
    expect_generate_error(opts, gen_env, ["--generate.temprature", "0.5"], "<command line>", "generate.temprature",
                          ["unknown option"], check=["config", "generate", "--generate.temprature", "0.5"])


@pytest.mark.parametrize("option,value", [("--generate.top_p", "2"), ("--generate.top_p", "0"),
                                          ("--generate.batch_size", "0"), ("--generate.max_new_tokens", "abc"),
                                          ("--model.dtype", "int8"), ("--log.level", "loud")])
def test_bad_option_value(opts, gen_env, option, value):
    key = option[2:]
    # Range errors come from config validation ("<config>"), parse errors from the command line.
    expect_generate_error(opts, gen_env, [option, value], "", key, check=["config", "generate", option, value],
                          main=value in ("2", "abc"))


def test_bad_chat_format(opts, gen_env):
    expect_generate_error(opts, gen_env, ["--generate.chat_format", "alpaca"], "", "chat_format", ["alpaca"],
                          check=["config", "generate", "--generate.chat_format", "alpaca"])


@pytest.mark.parametrize("case", ["not_json", "missing_prompt", "duplicate_id", "not_object", "id_wrong_type", "empty"])
def test_malformed_prompts(opts, gen_env, tmp_path, case):
    lines = {
        "not_json": ['{"id": "a", "question": "x"}', '{"id": "b", "question": '],
        "missing_prompt": ['{"id": "a", "prompt": "x"}'],
        "duplicate_id": ['{"id": "a", "question": "x"}', '{"id": "a", "question": "y"}'],
        "not_object": ['{"id": "a", "question": "x"}', '["b", "y"]'],
        "id_wrong_type": ['{"id": 1.5, "question": "x"}'],
        "empty": ["", "   "],
    }[case]
    prompts = tmp_path / "bad_prompts.jsonl"
    prompts.write_text("\n".join(lines) + "\n")
    file, field = {
        "not_json": (f"{prompts}:2", "<json>"),
        "missing_prompt": (f"{prompts}:1", "question"),
        "duplicate_id": (f"{prompts}:2", "id"),
        "not_object": (f"{prompts}:2", "<line>"),
        "id_wrong_type": (f"{prompts}:1", "id"),
        "empty": (str(prompts), "data.prompts"),
    }[case]
    expect_generate_error(opts, gen_env, [], file, field, prompts=prompts, check=["prompts", prompts],
                          main=case in ("not_json", "missing_prompt", "duplicate_id"))


def test_generate_with_corrupt_checkpoint(opts, gen_env):
    p = st_path(gen_env["ckpt"])
    p.write_bytes(p.read_bytes()[:-100])
    expect_generate_error(opts, gen_env, [], p, "<data>", check=["checkpoint", gen_env["ckpt"]])


def test_generate_with_broken_tokenizer(opts, gen_env):
    path = gen_env["ckpt"] / "tokenizer.json"
    path.write_text(path.read_text(encoding="utf-8")[:100], encoding="utf-8")
    expect_generate_error(opts, gen_env, [], path, "<json>", check=["tokenizer", path])


def test_rerun_after_bad_input_keeps_previous_output_valid(opts, gen_env, tmp_path):
    """A failed rerun must not destroy or half-overwrite a previous complete output."""
    if opts["only_check"]:
        return
    cmd = [str(c) for c in generate_cmd(opts, gen_env)]
    rc, out, err = run(cmd)
    assert rc == 0, err
    out_file = gen_env["run"] / "generate" / "generations.jsonl"
    before = out_file.read_bytes()
    bad = tmp_path / "bad_prompts.jsonl"
    bad.write_text('{"id": "a", "question": "x"}\n{oops}\n')
    expect_bad_input(generate_cmd(opts, gen_env, prompts=bad), f"{bad}:2", "<json>")
    assert out_file.read_bytes() == before
    leftovers = [p for p in (gen_env["run"] / "generate").iterdir() if ".tmp" in p.name]
    assert not leftovers, leftovers


# ----------------------------------------------------------------------------------------------
# thinksteer-check's own command line


@pytest.mark.parametrize("args,field", [
    (["bogus"], "command"),
    (["checkpoint"], "checkpoint"),
    (["checkpoint", "a", "b"], "checkpoint"),
    (["safetensors", "/nonexistent/x.safetensors"], "<file>"),
    (["tokenizer", "/nonexistent/tokenizer.json"], "<file>"),
    (["config", "nosuchsubcommand"], "config"),
    (["checkpoint", "/nonexistent/dir"], "model.path"),
])
def test_check_command_line(opts, args, field):
    expect_bad_input([opts["check"], *args], "", field)


def test_check_without_arguments_is_usage_error(opts):
    rc, out, err = run([opts["check"]])
    assert rc == 2 and "usage" in err
