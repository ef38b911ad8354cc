"""Bad input, end to end: every corrupted file or option must make BOTH executables
(`thinksteer inspect|generate` and `thinksteer-check checkpoint|config|prompts|...`) exit with status
exactly 2, print exactly one error line naming the offending file and field, and never crash (no
signal, sanitizer report, "terminate called" or core dump). `thinksteer generate` must also leave no
output that looks valid (generations.jsonl/.h5, .done marker) in its run directory.

Each case copies a valid tiny checkpoint from tests/reference (qwen2_gqa_tied: single file, tied;
qwen2_untied_sharded: 5 shards + index), adds a valid byte-level tokenizer.json, and corrupts one
thing (this file: checkpoints, safetensors, config.json, tokenizer.json; test_bad_input_cli.py: options, prompts and
the command line; bad_input_common.py: the fixtures and helpers). Options: see conftest.py. Both files run in
about 35 s on 2 cores with both executables (mostly libtorch loading in `thinksteer`), about 4 s with --only-check
under ASan.
"""
import json
import os
import struct
from pathlib import Path

import pytest

from bad_input_common import (  # the suite's helpers
    run, assert_no_crash, expect_bad_input, binaries, checkpoint_cmd, expect_checkpoint_error, st_path, st_read,
    st_write_raw, st_write, tensors_by_offset, st_rebuild, st_tensors, edit_json)
from bad_input_common import opts, tokenizer_text, ckpt, sharded  # noqa: F401  (pytest fixtures)


# ----------------------------------------------------------------------------------------------
# Positive controls: the untouched copies pass (so the failures below are about the corruption)


def test_valid_checkpoints_pass(opts, ckpt, sharded):
    for d in (ckpt, sharded):
        for which in binaries(opts):
            cmd = [str(c) for c in checkpoint_cmd(opts, which, d)]
            rc, out, err = run(cmd)
            assert_no_crash(rc, out, err, cmd)
            assert rc == 0, f"{cmd}\n{out}\n{err}"
            assert "[error]" not in err
            assert "256 tokens" in out, out
    rc, out, err = run([opts["check"], "safetensors", ckpt / "model.safetensors"])
    assert rc == 0 and "tensors      38" in out, out + err
    rc, out, err = run([opts["check"], "tokenizer", ckpt / "tokenizer.json"])
    assert rc == 0 and "256 tokens" in out, out + err
    rc, out, err = run([opts["check"], "config", "generate", "--generate.top_p", "0.5"])
    assert rc == 0 and "top_p = 0.5" in out, out + err
    rc, out, err = run([opts["check"], "--help"])
    assert rc == 0 and "usage: thinksteer-check" in out


# ----------------------------------------------------------------------------------------------
# safetensors files


def header_len(p):
    return struct.unpack("<Q", Path(p).read_bytes()[:8])[0]


@pytest.mark.parametrize("where", ["length", "header", "data_start", "data"])
def test_truncated_safetensors(opts, ckpt, where):
    p = st_path(ckpt)
    raw = p.read_bytes()
    n = header_len(p)
    cut = {"length": 5, "header": 8 + n // 2, "data_start": 8 + n, "data": len(raw) - 1001}[where]
    p.write_bytes(raw[:cut])
    field = "<header length>" if where in ("length", "header") else "<data>"
    expect_checkpoint_error(opts, ckpt, p, field)
    expect_bad_input([opts["check"], "safetensors", p], p, field)  # the one-file validator too


def test_empty_safetensors(opts, ckpt):
    p = st_path(ckpt)
    p.write_bytes(b"")
    expect_checkpoint_error(opts, ckpt, p, "<header length>")


@pytest.mark.parametrize("length", ["file", "huge", "max"])
def test_header_length_larger_than_file(opts, ckpt, length):
    p = st_path(ckpt)
    raw = p.read_bytes()
    n = {"file": len(raw), "huge": 100_000_001, "max": 2**64 - 1}[length]
    p.write_bytes(struct.pack("<Q", n) + raw[8:])
    expect_checkpoint_error(opts, ckpt, p, "<header length>", main=length == "file")


def test_header_not_json(opts, ckpt):
    p = st_path(ckpt)
    header, data = st_read(p)
    n = header_len(p)
    bad = b'{"model.norm.weight": {"dtype": "F32", oops'
    st_write_raw(p, bad + b" " * (n - len(bad)), data)
    expect_checkpoint_error(opts, ckpt, p, "<json>")


@pytest.mark.parametrize("text", [b'["model.norm.weight"]', b' {"a": 1}', b'\xef\xbb\xbf{}', b'\x00' * 16])
def test_header_not_starting_with_brace(opts, ckpt, text):
    p = st_path(ckpt)
    _, data = st_read(p)
    st_write_raw(p, text, data)
    expect_checkpoint_error(opts, ckpt, p, "<header>", contains=["'{'"], main=text.startswith(b"["))


def test_duplicate_key_in_header(opts, ckpt):
    p = st_path(ckpt)
    header, data = st_read(p)
    name = tensors_by_offset(header)[-1]
    dup = json.dumps({name: header[name]}, separators=(",", ":"))[1:-1]
    text = json.dumps(header, separators=(",", ":"))
    st_write_raw(p, ("{" + dup + "," + text[1:]).encode(), data)
    expect_checkpoint_error(opts, ckpt, p, name, contains=["duplicate"])


def test_offsets_past_the_end(opts, ckpt):
    p = st_path(ckpt)
    header, data = st_read(p)
    last = tensors_by_offset(header)[-1]
    t = header[last]
    row_bytes = 4 * (1 if len(t["shape"]) == 1 else t["shape"][1])
    t["shape"][0] += 1
    t["data_offsets"][1] += row_bytes
    st_write(p, header, data)
    expect_checkpoint_error(opts, ckpt, p, "<data>", contains=["past the end"])


def test_overlapping_offsets(opts, ckpt):
    p = st_path(ckpt)
    header, data = st_read(p)
    second = tensors_by_offset(header)[1]
    header[second]["data_offsets"] = [o - 4 for o in header[second]["data_offsets"]]
    st_write(p, header, data)
    expect_checkpoint_error(opts, ckpt, p, f"{second}.data_offsets", contains=["overlaps"])


def test_hole_between_tensors(opts, ckpt):
    p = st_path(ckpt)
    header, data = st_read(p)
    last = tensors_by_offset(header)[-1]
    header[last]["data_offsets"] = [o + 4 for o in header[last]["data_offsets"]]
    st_write(p, header, data + b"\0" * 4)
    expect_checkpoint_error(opts, ckpt, p, f"{last}.data_offsets", contains=["hole"])


def test_uncovered_trailing_bytes(opts, ckpt):
    p = st_path(ckpt)
    p.write_bytes(p.read_bytes() + b"\0" * 3)
    expect_checkpoint_error(opts, ckpt, p, "<data>", contains=["not covered"])


def test_wrong_dtype_size(opts, ckpt):
    p = st_path(ckpt)
    header, data = st_read(p)
    name = "model.norm.weight"
    header[name]["dtype"] = "F16"
    st_write(p, header, data)
    expect_checkpoint_error(opts, ckpt, p, f"{name}.data_offsets", contains=["needs 128"])


@pytest.mark.parametrize("dtype", ["F33", "float32", "", "C64"])
def test_unknown_dtype(opts, ckpt, dtype):
    p = st_path(ckpt)
    header, data = st_read(p)
    name = "model.layers.1.mlp.up_proj.weight"
    header[name]["dtype"] = dtype
    st_write(p, header, data)
    expect_checkpoint_error(opts, ckpt, p, f"{name}.dtype", contains=["unsupported dtype"], main=dtype == "F33")


@pytest.mark.parametrize("shape", [[-64], [64.5], ["64"], [None], 64, [2**64]])
def test_bad_shape_values(opts, ckpt, shape):
    p = st_path(ckpt)
    header, data = st_read(p)
    name = "model.norm.weight"
    header[name]["shape"] = shape
    st_write(p, header, data)
    expect_checkpoint_error(opts, ckpt, p, f"{name}.shape", main=shape in ([-64], [64.5]))


@pytest.mark.parametrize("shape", [[2**48, 2**48], [2**40, 2**40, 2**40], [2**48, 2**15, 0], [2**31, 2**31, 4]])
def test_huge_shape_overflow(opts, ckpt, shape):
    p = st_path(ckpt)
    header, data = st_read(p)
    name = "model.norm.weight"
    header[name]["shape"] = shape
    st_write(p, header, data)
    expect_checkpoint_error(opts, ckpt, p, f"{name}.shape", contains=["overflow"], main=shape == [2**48, 2**48])


def test_bad_data_offsets(opts, ckpt):
    p = st_path(ckpt)
    header, data = st_read(p)
    name = "model.norm.weight"
    header[name]["data_offsets"] = [header[name]["data_offsets"][0], -1]
    st_write(p, header, data)
    expect_checkpoint_error(opts, ckpt, p, f"{name}.data_offsets")


def test_metadata_not_strings(opts, ckpt):
    p = st_path(ckpt)
    header, data = st_read(p)
    header["__metadata__"] = {"format": 1}
    st_write(p, header, data)
    expect_checkpoint_error(opts, ckpt, p, "__metadata__.format")


def test_unknown_tensor_field(opts, ckpt):
    p = st_path(ckpt)
    header, data = st_read(p)
    header["model.norm.weight"]["offsets"] = [0, 1]
    st_write(p, header, data)
    expect_checkpoint_error(opts, ckpt, p, "model.norm.weight.offsets", contains=["unknown tensor field"])


# ----------------------------------------------------------------------------------------------
# Tensor inventory


def test_missing_tensor(opts, ckpt):
    p = st_path(ckpt)
    tensors, meta = st_tensors(p)
    gone = "model.layers.2.self_attn.k_proj.bias"
    st_rebuild(p, [t for t in tensors if t[0] != gone], meta)
    expect_checkpoint_error(opts, ckpt, ckpt, gone, contains=["missing tensor"])


def test_unsupported_weight_dtype(opts, ckpt):
    p = st_path(ckpt)
    tensors, meta = st_tensors(p)
    st_rebuild(p, [(n, "I32" if n == "model.norm.weight" else d, s, b) for n, d, s, b in tensors], meta)
    expect_checkpoint_error(opts, ckpt, p, "model.norm.weight.dtype", contains=["I32"])


def test_shape_disagrees_with_config(opts, ckpt):
    edit_json(ckpt / "config.json", lambda c: c.update(intermediate_size=96))
    expect_checkpoint_error(opts, ckpt, st_path(ckpt), "model.layers.0.mlp.gate_proj.weight",
                            contains=["[128, 64]", "[96, 64]", "config.json"])


def test_tensor_shape_disagrees_with_config(opts, ckpt):
    # A transposed k_proj ([K*E, D] = [32, 64] stored as [64, 32]): same bytes, wrong shape.
    p = st_path(ckpt)
    name = "model.layers.1.self_attn.k_proj.weight"
    tensors, meta = st_tensors(p)
    st_rebuild(p, [(n, d, [s[1], s[0]] if n == name else s, b) for n, d, s, b in tensors], meta)
    expect_checkpoint_error(opts, ckpt, p, name, contains=["[64, 32]", "[32, 64]"])


def test_duplicate_tensor_across_shards(opts, sharded):
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    name = "model.norm.weight"
    home = index["weight_map"][name]
    other = next(s for s in sorted(set(index["weight_map"].values())) if s != home)
    src, _ = st_tensors(sharded / home)
    tensors, meta = st_tensors(sharded / other)
    st_rebuild(sharded / other, tensors + [t for t in src if t[0] == name], meta)
    # Whichever shard is read first, the error names a shard or the index and the tensor.
    line = expect_checkpoint_error(opts, sharded, sharded, name)
    assert home in line or other in line or "index" in line


def test_index_points_at_missing_shard(opts, sharded):
    index_path = sharded / "model.safetensors.index.json"
    shard = "model-00003-of-00005.safetensors"
    (sharded / shard).unlink()
    expect_checkpoint_error(opts, sharded, index_path, "weight_map", contains=[shard, "does not exist"])


@pytest.mark.parametrize("shard", ["../model-00001-of-00005.safetensors", "/etc/passwd", "sub/../model-00001-of-00005.safetensors", ".."])
def test_shard_name_escaping_the_directory(opts, sharded, shard):
    index_path = sharded / "model.safetensors.index.json"
    edit_json(index_path, lambda i: i["weight_map"].update({"model.norm.weight": shard}))
    expect_checkpoint_error(opts, sharded, index_path, "weight_map.model.norm.weight", contains=["plain file name"],
                            main=shard.startswith("../"))


def test_shard_name_too_long(opts, sharded):
    index_path = sharded / "model.safetensors.index.json"
    edit_json(index_path, lambda i: i["weight_map"].update({"model.norm.weight": "a" * 300 + ".safetensors"}))
    expect_checkpoint_error(opts, sharded, index_path, "weight_map", contains=["does not exist"])


def test_safetensors_is_a_fifo(opts, ckpt):
    p = st_path(ckpt)
    p.unlink()
    os.mkfifo(p)
    expect_checkpoint_error(opts, ckpt, p, "<file>", contains=["regular file"])


def test_model_path_too_long(opts, tmp_path):
    d = tmp_path / ("d" * 300)
    for which in binaries(opts):
        expect_bad_input(checkpoint_cmd(opts, which, d), d, "model.path")


def test_index_not_json(opts, sharded):
    index_path = sharded / "model.safetensors.index.json"
    index_path.write_text('{"weight_map": {"lm_head.weight": ')
    expect_checkpoint_error(opts, sharded, index_path, "<json>")


def test_corrupt_shard_is_named(opts, sharded):
    shard = sharded / "model-00004-of-00005.safetensors"
    shard.write_bytes(shard.read_bytes()[:-7])
    expect_checkpoint_error(opts, sharded, shard, "<data>")


# ----------------------------------------------------------------------------------------------
# config.json


def config_case(name):
    def edit(c):
        if name == "unknown_architecture":
            c["architectures"] = ["MistralForCausalLM"]
        elif name == "missing_field":
            del c["vocab_size"]
        elif name == "wrong_type":
            c["hidden_size"] = "64"
        elif name == "rope_scaling":
            c["rope_scaling"] = {"type": "yarn", "factor": 4.0}
        elif name == "huge_layers":
            c["num_hidden_layers"] = 10**12
        elif name == "negative":
            c["num_attention_heads"] = -4
        elif name == "eos_type":
            c["eos_token_id"] = "2"
    return edit


@pytest.mark.parametrize("case,field,contains", [
    ("unknown_architecture", "architectures", ["MistralForCausalLM"]),
    ("missing_field", "vocab_size", ["missing"]),
    ("wrong_type", "hidden_size", ['"64"']),
    ("rope_scaling", "rope_scaling.rope_type", ["yarn"]),
    ("huge_layers", "num_hidden_layers", []),
    ("negative", "num_attention_heads", []),
    ("eos_type", "eos_token_id", []),
])
def test_bad_config_json(opts, ckpt, case, field, contains):
    edit_json(ckpt / "config.json", config_case(case))
    main = case in ("unknown_architecture", "missing_field", "wrong_type", "rope_scaling")
    expect_checkpoint_error(opts, ckpt, ckpt / "config.json", field, contains, main=main)


@pytest.mark.parametrize("text", ['{"architectures": ["Qwen2ForCausalLM"], ', "", "[1, 2]", '{"a": 1, "a": 2}'])
def test_config_json_not_json(opts, ckpt, text):
    (ckpt / "config.json").write_text(text)
    expect_checkpoint_error(opts, ckpt, ckpt / "config.json", "", main=text.startswith("{\"arch"))


def test_config_json_number_overflow(opts, ckpt):
    """1e400 is valid JSON grammar but no double: must be a JSON error (exit 2), not an escaped exception."""
    p = ckpt / "config.json"
    text = p.read_text()
    assert '"rope_theta": 10000.0' in text
    p.write_text(text.replace('"rope_theta": 10000.0', '"rope_theta": 1e400'))
    expect_checkpoint_error(opts, ckpt, p, "<json>")


def test_safetensors_header_number_overflow(opts, ckpt):
    p = st_path(ckpt)
    header, data = st_read(p)
    header["__metadata__"]["x"] = "PLACEHOLDER"
    text = json.dumps(header, separators=(",", ":")).replace('"PLACEHOLDER"', "1e400")
    st_write_raw(p, text.encode(), data)
    expect_checkpoint_error(opts, ckpt, p, "<json>")


def test_config_json_missing(opts, ckpt):
    (ckpt / "config.json").unlink()
    expect_checkpoint_error(opts, ckpt, ckpt / "config.json", "<file>")


def test_no_safetensors(opts, ckpt):
    st_path(ckpt).unlink()
    expect_checkpoint_error(opts, ckpt, ckpt, "model.safetensors")


# ----------------------------------------------------------------------------------------------
# tokenizer.json


def tokenizer_case(name, text):
    if name == "truncated":
        return text[: len(text) // 2], "<json>"
    tok = json.loads(text)
    if name == "vocab_wrong_type":
        tok["model"]["vocab"] = list(tok["model"]["vocab"])
        field = "model.vocab"
    elif name == "root_wrong_type":
        tok = [tok]
        field = ""
    elif name == "merges_wrong_type":
        tok["model"]["merges"] = 5
        field = "model.merges"
    elif name == "unknown_pre_tokenizer":
        tok["pre_tokenizer"] = {"type": "FancySplitter"}
        field = "pre_tokenizer"
    elif name == "too_many_tokens":
        tok["added_tokens"] = [{"id": 300, "content": "<extra>", "single_word": False, "lstrip": False, "rstrip": False,
                                "normalized": False, "special": True}]
        field = ""
    else:
        raise AssertionError(name)
    return json.dumps(tok, ensure_ascii=False), field


@pytest.mark.parametrize("case", ["truncated", "vocab_wrong_type", "root_wrong_type", "merges_wrong_type",
                                  "unknown_pre_tokenizer", "too_many_tokens"])
def test_broken_tokenizer_json(opts, ckpt, tokenizer_text, case):
    text, field = tokenizer_case(case, tokenizer_text)
    path = ckpt / "tokenizer.json"
    path.write_text(text, encoding="utf-8")
    main = case not in ("root_wrong_type", "merges_wrong_type")
    line = expect_checkpoint_error(opts, ckpt, path, field, main=main)
    if case == "unknown_pre_tokenizer":
        assert "FancySplitter" in line
    if case == "too_many_tokens":
        assert "301" in line and "256" in line
    else:
        expect_bad_input([opts["check"], "tokenizer", path], path, field)
