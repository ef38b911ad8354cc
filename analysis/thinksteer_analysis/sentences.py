"""Sentence activations written by `thinksteer sentences` (docs/algorithms.md §B.3; src/artifacts/sentences.h):
<run.dir>/sentences/sentences.h5 (+ .done), format thinksteer.sentences schema_version 1, N sentences (the
traces in the order of the generations file, each trace's sentences in text order). The taxonomy
(taxonomy.py) clusters them.

    from thinksteer_analysis.sentences import read_sentences
    s = read_sentences(run_dir)                 # or the path of a sentences.h5
    x = s.vectors(6)                            # float32 [N, d], read on demand (rows=... for a part)
    s.text[i], s.trace_id[i], s.labels          # labels: None without a reference annotation

sentences.h5:
  /layer_<l>/vectors [N, d] f32   (raw - mean) / |raw - mean|, for each l of the attribute `layers`
  /layer_<l>/norm [N] f32         |raw - mean|, so raw = mean + norm * vectors
  /layer_<l>/mean [d] f32         the mean over traces of each trace's overall mean
  /sentences/trace, char_begin, char_end, token_begin, token_end [N] i64   (char: code points of the
                                  trace's generated text; token: of prompt + generated, end exclusive)
  /sentences/trace_id, text [N] str; /sentences/label [N] str (only with a reference annotation; "" none)
  root attributes: hook, position (mean | last_token), layers (i64 list, ascending), d_model, n_sentences, n_traces, n_mean_traces
  (not read by the C++; optional here), model_path, and the provenance
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import Artifact, PathLike, SchemaError, attr, check_dataset, first_index, int_attr, open_h5, provenance, read, read_optional

SENTENCES = Artifact(dir="sentences", file="sentences.h5", format="thinksteer.sentences", schema_version=1, stage="sentences")
FORMAT = SENTENCES.format
SCHEMA_VERSION = SENTENCES.schema_version
PATH = SENTENCES.relpath
INDEX_FIELDS = ("trace", "char_begin", "char_end", "token_begin", "token_end")   # /sentences/<field>, int64 [N]


@dataclass
class Sentences:
    """One sentences file. N sentences; the per-layer arrays are read on demand (vectors, norm, mean)."""
    path: pathlib.Path
    layers: list[int]                           # ascending
    d_model: int
    trace: npt.NDArray[np.int64]                # [N] row of the trace in the generations file
    trace_id: npt.NDArray[np.str_]              # [N]
    text: npt.NDArray[np.str_]                  # [N]
    char_begin: npt.NDArray[np.int64]           # [N] code points of the trace's generated text
    char_end: npt.NDArray[np.int64]             # [N] exclusive
    token_begin: npt.NDArray[np.int64]          # [N] tokens of prompt + generated
    token_end: npt.NDArray[np.int64]            # [N]
    labels: npt.NDArray[np.str_] | None         # [N] reference label ("" none); None without a reference annotation
    hook: str = ""                              # "blocks.{l}.hook_resid_post"
    n_traces: int = 0
    n_mean_traces: int | None = None
    position: str = "mean"                      # mean (§B.3 window mean) | last_token (§B.7)
    model_path: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.trace)

    def _layer(self, layer: int, name: str, dims: list[tuple[str, int | None]], rows: Any = None) -> npt.NDArray[np.float32]:
        if layer not in self.layers:
            raise KeyError(f"{self.path}: no layer {layer}; stored: {', '.join(map(str, self.layers))}")
        with open_h5(self.path) as f:
            SENTENCES.check(f)
            ds = check_dataset(f, f"/layer_{layer}/{name}", dims, "float")
            return np.asarray(ds[()] if rows is None else ds[rows], dtype=np.float32)

    def vectors(self, layer: int, rows: Any = None) -> npt.NDArray[np.float32]:
        """[N, d] (or the rows given: a slice or ascending indices) centred unit vectors of `layer`."""
        return self._layer(layer, "vectors", [("n_sentences", len(self)), ("d_model", self.d_model)], rows)

    def norm(self, layer: int) -> npt.NDArray[np.float32]:
        """[N] |raw - mean| of `layer`."""
        return self._layer(layer, "norm", [("n_sentences", len(self))])

    def mean(self, layer: int) -> npt.NDArray[np.float32]:
        """[d] the mean subtracted at `layer`."""
        return self._layer(layer, "mean", [("d_model", self.d_model)])

    def raw(self, layer: int) -> npt.NDArray[np.float32]:
        """[N, d] the raw sentence activations: mean + norm * vectors."""
        return self.mean(layer)[None, :] + self.norm(layer)[:, None] * self.vectors(layer)


def _sentence_layers(f: Any) -> list[int]:
    v = np.atleast_1d(np.asarray(attr(f, "layers", required=True)))
    if v.ndim != 1 or v.dtype.kind not in "iu" or v.size == 0 or np.any(v < 0) or np.any(np.diff(v) <= 0):
        raise SchemaError(f.filename, "attribute 'layers'", f"{v.tolist()!r}: must list distinct layers >= 0 in ascending order")
    return [int(x) for x in v]


def read_sentences(run_dir: PathLike) -> Sentences:
    """Reads and checks <run_dir>/sentences/sentences.h5 (or the file given) as the C++ reader does:
    identity, layers, every dataset's shape and kind (the per-layer arrays checked, not read), plus traces
    inside [0, n_traces) and ranges with begin <= end; SchemaError names the file and the dataset or attribute."""
    path = SENTENCES.require(SENTENCES.path(run_dir))
    with open_h5(path) as f:
        SENTENCES.check(f)
        layers = _sentence_layers(f)
        d, N, n_traces = (int_attr(f, name) for name in ("d_model", "n_sentences", "n_traces"))
        for name, v, low in (("d_model", d, 1), ("n_sentences", N, 0), ("n_traces", n_traces, 0)):
            if v < low:
                raise SchemaError(path, f"attribute {name!r}", f"{v}: must be >= {low}")
        for l in layers:
            check_dataset(f, f"/layer_{l}/vectors", [("n_sentences", N), ("d_model", d)], "float")
            check_dataset(f, f"/layer_{l}/norm", [("n_sentences", N)], "float")
            check_dataset(f, f"/layer_{l}/mean", [("d_model", d)], "float")
        cols = {name: read(f, f"/sentences/{name}", [("n_sentences", N)], "int").astype(np.int64) for name in INDEX_FIELDS}
        s = Sentences(path=path, layers=layers, d_model=d, **cols, trace_id=read(f, "/sentences/trace_id", [("n_sentences", N)], "str"),
                      text=read(f, "/sentences/text", [("n_sentences", N)], "str"),
                      labels=read_optional(f, "/sentences/label", [("n_sentences", N)], "str"), hook=str(attr(f, "hook", required=True)),
                      position=str(attr(f, "position", required=True)),
                      n_traces=n_traces, n_mean_traces=int_attr(f, "n_mean_traces") if "n_mean_traces" in f.attrs else None,
                      model_path=str(attr(f, "model_path", required=True)), provenance=provenance(f))
    i = first_index((s.trace < 0) | (s.trace >= n_traces))
    if i is not None:
        raise SchemaError(path, "/sentences/trace", f"row {i}: {s.trace[i]} outside [0, n_traces = {n_traces})")
    for what in ("char", "token"):
        begin, end = getattr(s, f"{what}_begin"), getattr(s, f"{what}_end")
        i = first_index((begin < 0) | (end < begin))
        if i is not None:
            raise SchemaError(path, f"/sentences/{what}_end", f"row {i}: [{begin[i]}, {end[i]}) is not a range (begin >= 0, end >= begin)")
    return s
