"""Bad input, end to end: every corrupted file or option must make BOTH executables
(`thinksteer inspect|generate` and `thinksteer-check checkpoint|config|prompts|...`) exit with status
exactly 2, print exactly one error line naming the offending file and field, and never crash (no
signal, sanitizer report, "terminate called" or core dump). `thinksteer generate` must also leave no
output that looks valid (generations.jsonl/.h5, .done marker) in its run directory.

Each case copies a valid tiny checkpoint from tests/reference (qwen2_gqa_tied: single file, tied;
qwen2_untied_sharded: 5 shards + index), adds a valid byte-level tokenizer.json, and corrupts one
thing. Options: see conftest.py. Runs in about 35 s on 2 cores with both executables (mostly
libtorch loading in `thinksteer`), about 4 s with --only-check under ASan.
"""
import json
import os
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SINGLE = "qwen2_gqa_tied"
SHARDED = "qwen2_untied_sharded"

CRASH_MARKERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:", "terminate called",
                 "Segmentation fault", "core dumped", "Aborted", "std::bad_alloc", "stack-overflow", "SUMMARY:")

# ----------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def opts(request):
    c = request.config
    check = c.getoption("--check-binary")
    main = c.getoption("--thinksteer")
    ref = c.getoption("--reference")
    only_check = c.getoption("--only-check")
    if not check or not Path(check).is_file():
        pytest.fail(f"thinksteer-check not found (--check-binary / THINKSTEER_CHECK_BIN): {check!r}")
    if not only_check and (not main or not Path(main).is_file()):
        pytest.fail(f"thinksteer not found (--thinksteer / THINKSTEER_BIN; --only-check to skip it): {main!r}")
    if not ref or not (Path(ref) / SINGLE / "config.json").is_file() or not (Path(ref) / SHARDED / "config.json").is_file():
        pytest.fail(f"reference checkpoints not found (--reference / THINKSTEER_REFERENCE_DIR): {ref!r}")
    return {"check": str(Path(check).resolve()), "main": main and str(Path(main).resolve()), "ref": Path(ref),
            "only_check": only_check}


def byte_level_tokenizer_json():
    """A valid byte-level BPE tokenizer.json with exactly the 256 byte symbols (the reference models
    have vocab_size 256), written the way HF `tokenizers` writes it."""
    # GPT-2 byte -> printable symbol table: printable Latin-1 bytes map to themselves, the others
    # to U+0100 upwards in byte order.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    symbols, extra = {}, 0
    for b in range(256):
        if b in printable:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    vocab = {symbols[b]: b for b in range(256)}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": dict(byte_level, trim_offsets=False),
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }


@pytest.fixture(scope="session")
def tokenizer_text():
    return json.dumps(byte_level_tokenizer_json(), ensure_ascii=False, indent=2)


def make_checkpoint(opts, tmp_path, tokenizer_text, case=SINGLE):
    d = tmp_path / case
    src = opts["ref"] / case
    d.mkdir()
    for f in src.iterdir():  # the checkpoint files, not the goldens
        if f.name in ("config.json", "generation_config.json", "model.safetensors.index.json") or \
                (f.name.startswith("model") and f.name.endswith(".safetensors")):
            shutil.copyfile(f, d / f.name)
    (d / "tokenizer.json").write_text(tokenizer_text, encoding="utf-8")
    return d


@pytest.fixture
def ckpt(opts, tmp_path, tokenizer_text):
    return make_checkpoint(opts, tmp_path, tokenizer_text, SINGLE)


@pytest.fixture
def sharded(opts, tmp_path, tokenizer_text):
    return make_checkpoint(opts, tmp_path, tokenizer_text, SHARDED)


# ----------------------------------------------------------------------------------------------
# Running and checking


def run(cmd, cwd=None):
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    p = subprocess.run(cmd, capture_output=True, cwd=cwd, env=env, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def assert_no_crash(rc, out, err, cmd):
    assert rc >= 0, f"killed by signal {-rc}: {cmd}\n{err}"
    for marker in CRASH_MARKERS:
        assert marker not in err and marker not in out, f"{marker!r} in output of {cmd}:\n{err}"


def expect_bad_input(cmd, file, field, contains=(), cwd=None, result=None):
    """Runs `cmd` (unless its `result` is given); asserts exit 2 and one '[error] <file>: <field>: ...'
    line (file and field as substrings: `file` must appear before `field`), plus any extra substrings."""
    cmd = [str(c) for c in cmd]
    rc, out, err = result if result is not None else run(cmd, cwd)
    assert_no_crash(rc, out, err, cmd)
    assert rc == 2, f"exit {rc}, expected 2: {cmd}\nstdout:\n{out}\nstderr:\n{err}"
    lines = [line for line in err.splitlines() if "[error]" in line]
    assert len(lines) == 1, f"expected exactly one error line, got {len(lines)}: {cmd}\n{err}"
    assert "[error]" not in out
    line = lines[0].split("[error]", 1)[1]
    file, field = str(file), str(field)
    assert file in line, f"error line does not name the file {file!r}:\n{lines[0]}"
    assert field in line[line.index(file) + len(file):], f"error line does not name the field {field!r} after the file:\n{lines[0]}"
    for c in contains:
        assert c in line, f"error line lacks {c!r}:\n{lines[0]}"
    return line


def binaries(opts, main=True):
    """Parametrized variants of one case run `thinksteer` on the first (main=True) only: it reports
    errors through the same library code, and each of its runs costs ~0.4 s of libtorch loading."""
    return ["check"] if opts["only_check"] or not main else ["check", "main"]


def checkpoint_cmd(opts, which, d):
    if which == "main":
        return [opts["main"], "inspect", "--model.path", d]
    return [opts["check"], "checkpoint", d]


def run_all(cmds):
    """Runs the commands concurrently (the machine has 2 cores; `thinksteer` spends ~0.4 s loading libtorch)."""
    cmds = [[str(c) for c in cmd] for cmd in cmds]
    with ThreadPoolExecutor(max_workers=len(cmds)) as pool:
        return list(pool.map(run, cmds))


def expect_checkpoint_error(opts, d, file, field, contains=(), main=True):
    """Both executables on checkpoint directory `d`; returns the error line of the last."""
    cmds = [checkpoint_cmd(opts, which, d) for which in binaries(opts, main)]
    line = None
    for cmd, result in zip(cmds, run_all(cmds)):
        line = expect_bad_input(cmd, file, field, contains, result=result)
    return line


# ----------------------------------------------------------------------------------------------
# safetensors surgery


def st_read(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    return header, raw[8 + n:]


def st_write_raw(path, header_bytes, data, length=None):
    n = len(header_bytes) if length is None else length
    Path(path).write_bytes(struct.pack("<Q", n) + header_bytes + data)


def st_write(path, header, data):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    st_write_raw(path, text, data)


def tensors_by_offset(header):
    return sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])


def st_rebuild(path, tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes) -> a valid file."""
    header, data, offset = {}, b"", 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        data += blob
        offset += len(blob)
    st_write(path, header, data)


def st_tensors(path):
    header, data = st_read(path)
    out = []
    for k in tensors_by_offset(header):
        b, e = header[k]["data_offsets"]
        out.append((k, header[k]["dtype"], header[k]["shape"], data[b:e]))
    return out, header.get("__metadata__")


def edit_json(path, fn):
    obj = json.loads(Path(path).read_text(encoding="utf-8"))
    obj = fn(obj) or obj
    Path(path).write_text(json.dumps(obj, indent=2), encoding="utf-8")


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


def st_path(d):
    return d / "model.safetensors"


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
