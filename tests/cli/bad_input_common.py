"""The bad-input suite's fixtures and helpers (tests/cli/test_bad_input.py, test_bad_input_cli.py): tiny checkpoints
copied from tests/reference with a byte-level tokenizer, running both executables, and the safetensors byte surgery."""
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


def st_path(d):
    return d / "model.safetensors"


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
