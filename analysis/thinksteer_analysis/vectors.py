"""Steering vectors written by `thinksteer vectors` (src/stages/vectors.cpp through src/io/vectors.h):
<run.dir>/vectors/vectors.h5, format thinksteer.vectors format_version 1 (no schema_version: the
vector files carry their own version), beside vectors.safetensors (the same set), skipped.jsonl and,
with vectors.gguf, one llama.cpp control vector <label>.gguf per label.

    from thinksteer_analysis.vectors import load_vectors
    v = load_vectors(run_dir)                  # or the path of any thinksteer.vectors HDF5 file
    v.vector("backtracking", 12)               # float32 [d_model] at decoder layer 12
    v.names                                    # "<label>", "mean.<label>", "mean.overall"

vectors.h5:
  /vectors  float32 [name, layer, d_model]
  /counts   int64   [name, layer]   examples averaged into each vector, 0 = missing (all-zero) vector;
                                    absent when the set records no counts
  /names    str     [name]          unique
  /layers   int64   [layer]         0-based decoder layers, strictly ascending
  root attributes: format, format_version, hook_measured, hook_applied, architecture, model,
  provenance (JSON text)
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import Artifact, PathLike, SchemaError, attr, open_h5, parse_json_object, read, read_optional

VECTORS = Artifact(dir="vectors", file="vectors.h5", format="thinksteer.vectors", schema_version=None, stage="vectors", format_version=1)
FORMAT = VECTORS.format
FORMAT_VERSION = VECTORS.format_version
SCHEMA_VERSION = VECTORS.schema_version   # None: vectors.h5 has no schema_version attribute
PATH = VECTORS.relpath
SAFETENSORS = "vectors.safetensors"       # beside vectors.h5, the same set
SKIPPED_JSONL = "skipped.jsonl"           # beside vectors.h5
OVERALL = "mean.overall"


def vectors_path(run_dir: PathLike) -> pathlib.Path:
    """<run_dir>/vectors/vectors.h5, or `run_dir` itself when it names a file."""
    return VECTORS.path(run_dir)


@dataclass
class VectorSet:
    """One thinksteer.vectors file: per name, one d_model vector per held layer."""
    path: pathlib.Path
    names: list[str]                           # [n]
    layers: npt.NDArray[np.int64]              # [L] 0-based decoder layers, ascending
    vectors: npt.NDArray[np.float32]           # [n, L, d_model]
    counts: npt.NDArray[np.int64] | None       # [n, L]; None when not recorded
    hook_measured: str = ""                    # e.g. "blocks.{l}.hook_resid_post"
    hook_applied: str = ""
    architecture: str = ""
    model: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def d_model(self) -> int:
        return int(self.vectors.shape[2])

    def name_index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"{self.path}: no vector {name!r}; stored: {', '.join(self.names)}") from None

    def layer_index(self, layer: int) -> int:
        hits = np.flatnonzero(self.layers == layer)
        if not hits.size:
            raise KeyError(f"{self.path}: no layer {layer}; stored: {', '.join(map(str, self.layers.tolist()))}")
        return int(hits[0])

    def vector(self, name: str, layer: int) -> npt.NDArray[np.float32]:
        """The [d_model] vector of `name` at decoder layer `layer`."""
        return self.vectors[self.name_index(name), self.layer_index(layer)]

    def missing(self, name: str) -> list[int]:
        """The layers where `name` is a missing vector (count 0); [] when counts are not recorded."""
        if self.counts is None:
            return []
        return [int(l) for l, c in zip(self.layers, self.counts[self.name_index(name)]) if c == 0]


def load_vectors(run_dir: PathLike) -> VectorSet:
    """Reads and checks <run_dir>/vectors/vectors.h5 (or the file given) as src/io/vectors.cpp's reader
    does: identity, shapes agree, names unique, layers strictly ascending and non-negative, values
    finite, counts non-negative and count 0 only with all-zero values; SchemaError names the file and
    the dataset or attribute."""
    path = VECTORS.require(vectors_path(run_dir))
    with open_h5(path) as f:
        VECTORS.check(f)
        values = read(f, "/vectors", [("name", None), ("layer", None), ("d_model", None)], "float")
        n, L, _ = values.shape
        names = [str(x) for x in read(f, "/names", [("name", n)], "str")]
        layers = read(f, "/layers", [("layer", L)], "int").astype(np.int64)
        counts = read_optional(f, "/counts", [("name", n), ("layer", L)], "int")
        s = VectorSet(path=path, names=names, layers=layers, vectors=values.astype(np.float32, copy=False),
                      counts=counts.astype(np.int64) if counts is not None else None,
                      hook_measured=str(attr(f, "hook_measured", required=True)), hook_applied=str(attr(f, "hook_applied", required=True)),
                      architecture=str(attr(f, "architecture", "")), model=str(attr(f, "model", "")),
                      provenance=parse_json_object(attr(f, "provenance", "")))
    if n == 0:
        raise SchemaError(path, "/names", "no names")
    if L == 0:
        raise SchemaError(path, "/layers", "no layers")
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise SchemaError(path, "/names", f"name {dup[0]!r} appears twice")
    if np.any(layers < 0) or np.any(np.diff(layers) <= 0):
        raise SchemaError(path, "/layers", f"layers must be non-negative and strictly ascending: {layers.tolist()}")
    finite = np.isfinite(s.vectors).all(axis=2)
    if not finite.all():
        i, k = map(int, np.argwhere(~finite)[0])
        raise SchemaError(path, "/vectors", f"name {names[i]!r}, layer {layers[k]}: not finite")
    if s.counts is not None:
        if np.any(s.counts < 0):
            i, k = map(int, np.argwhere(s.counts < 0)[0])
            raise SchemaError(path, "/counts", f"name {names[i]!r}, layer {layers[k]}: count {s.counts[i, k]} is negative")
        nonzero = np.any(s.vectors != 0, axis=2) & (s.counts == 0)
        if nonzero.any():
            i, k = map(int, np.argwhere(nonzero)[0])
            raise SchemaError(path, "/vectors", f"name {names[i]!r}, layer {layers[k]}: count 0 marks a missing vector, but the values are not zero")
    return s
