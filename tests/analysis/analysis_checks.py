"""Checks the analysis tests share: a drawn PNG has the expected size and is not blank, an HDF5 fixture
with one dataset or root attribute replaced (for the malformed-input cases), and the pieces of a fixture in the
C++ writers' layout: a dataset as h5::SerialFile::write_dataset writes it, the identity attributes of
write_h5_identity, a `.done` marker, and a steer sweep's manifest and task files."""
import json
from pathlib import Path

import h5py
import numpy as np

STR = h5py.string_dtype("utf-8")


def check_png(path, shape):
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    assert img.shape[:2] == shape, (path, img.shape)
    rgb = img[..., :3]
    assert float(rgb.std()) > 0.05, f"{path}: flat image"
    assert float((rgb < 0.9).any(axis=-1).mean()) > 0.01, f"{path}: almost all white"


def replace(path, name, value):
    """Replaces dataset `name` (deletes it when value is None) or, for "@attr", the root attribute."""
    with h5py.File(path, "a") as f:
        if name.startswith("@"):
            f.attrs[name[1:]] = value
            return
        del f[name]
        if value is not None:
            f.create_dataset(name, data=value, dtype=STR if isinstance(value, list) else None)


def put(f, name, data, dims, dtype=None, description=None):
    """Dataset `name` as h5::SerialFile::write_dataset writes it: its "dtype" attribute, a netCDF-named
    int64 dimension scale per axis in the dataset's group (strings: write_strings, no dtype attribute)."""
    ds = f.create_dataset(name, data=data, dtype=dtype)
    if h5py.check_string_dtype(ds.dtype) is None:
        ds.attrs["dtype"] = str(ds.dtype)
    if description:
        ds.attrs["description"] = description
    group = name.rsplit("/", 1)[0]
    for axis, dim in enumerate(dims):
        scale = f"{group}/{dim}"
        if scale not in f:
            f[scale] = np.arange(ds.shape[axis], dtype=np.int64)
            f[scale].make_scale(f"This is a netCDF dimension but not a netCDF variable.{ds.shape[axis]:10d}")
        ds.dims[axis].attach_scale(f[scale])
    return ds


def identity(f, fmt, stage, config="[run]\ndir = x\n", model_path=""):
    """Root attributes of write_h5_identity (src/artifacts/artifact.cpp)."""
    prov = {"stage": stage, "config": config, "config_sha256": "c" * 64}
    if model_path:
        prov["model_path"] = model_path
    for name, v in (("format", fmt), ("stage", stage), ("config", config), ("config_sha256", "c" * 64), ("git_commit", "0" * 40),
                    ("thinksteer_version", "0.1.0"), ("created_utc", "2026-01-01T00:00:00Z"), ("model_path", model_path),
                    ("model_config_sha256", ""), ("provenance", json.dumps(prov))):
        f.attrs[name] = v
    for name in ("schema_version", "world_size", "pipeline_stages"):
        f.attrs[name] = np.int64(1)
    f.attrs["seed"] = np.int64(0)


def done(path):
    """A .done marker beside a fixture (its content is not checked by the readers)."""
    Path(f"{path}.done").write_text("0" * 64)


def write_sweep_manifest(sweep_dir, rows):
    """<sweep_dir>/sweep/manifest.jsonl: one JSON object per row (dicts with the keys `thinksteer sweep plan` writes)."""
    path = Path(sweep_dir) / "sweep" / "manifest.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_sweep_task(sweep_dir, row, correct, think_tokens, labels=("deduction", "backtracking"), **prompts):
    """<sweep_dir>/sweep/tasks/<key>.h5 (+ .done) as `thinksteer sweep run` writes it (src/artifacts/sweep_task.cpp) for
    manifest row `row`, n = len(correct) prompts. `prompts` overrides the other per-prompt datasets: closed (default
    1), new_tokens (think_tokens + 2), label_tokens and label_spans ([n, K], 0), id (p0, p1, ...), answer and text (""),
    tokens (new_tokens[i] ids i, i+1, ... per prompt)."""
    path = Path(sweep_dir) / "sweep" / "tasks" / f"{row['key']}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    n, K = len(correct), len(labels)
    think = np.asarray(think_tokens, dtype=np.int64)
    v = {"closed": np.ones(n), "new_tokens": think + 2, "label_tokens": np.zeros((n, K)), "label_spans": np.zeros((n, K)),
         "id": [f"p{i}" for i in range(n)], "answer": [""] * n, "text": [""] * n, **prompts}
    with h5py.File(path, "w") as f:
        put(f, "/prompts/correct", np.asarray(correct, dtype=np.int64), ("prompt",),
            description="1 correct, 0 wrong (or unfinished), -1 no reference answer")
        put(f, "/prompts/closed", np.asarray(v["closed"], dtype=np.uint8), ("prompt",))
        put(f, "/prompts/think_tokens", think, ("prompt",))
        put(f, "/prompts/new_tokens", np.asarray(v["new_tokens"], dtype=np.int64), ("prompt",))
        for name in ("label_tokens", "label_spans"):
            put(f, f"/prompts/{name}", np.asarray(v[name], dtype=np.int64).reshape(n, K), ("prompt", "label"))
        put(f, "/labels", list(labels), ("label",), dtype=STR)
        for name in ("id", "answer", "text"):
            put(f, f"/prompts/{name}", list(v[name]), ("prompt",), dtype=STR)
        new = np.asarray(v["new_tokens"], dtype=np.int64)
        tokens = v.get("tokens", [list(range(i, i + int(k))) for i, k in enumerate(new)])
        put(f, "/prompts/tokens", np.asarray([t for row in tokens for t in row], dtype=np.int32), ("token",))
        put(f, "/prompts/token_offset", np.concatenate([[0], np.cumsum([len(row) for row in tokens])]).astype(np.int64), ("prompt_edge",))
        identity(f, "thinksteer.sweep_task", "sweep run")
        f.attrs["schema_version"] = np.int64(2)
        f.attrs.update({"task": np.int64(row["task"]), "key": row["key"], "point": json.dumps(row), "vectors_file": "v.h5",
                        "vectors_sha256": "0" * 64, "annotator": "lexicon"})
    done(path)
    return path
