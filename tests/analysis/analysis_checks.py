"""Checks the analysis tests share: a drawn PNG has the expected size and is not blank, an HDF5 fixture
with one dataset or root attribute replaced (for the malformed-input cases), and the pieces of a fixture in the
C++ writers' layout: the identity attributes of write_h5_identity and a `.done` marker."""
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
