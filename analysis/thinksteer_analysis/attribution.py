"""Layer attribution written by `thinksteer attribute` (docs/algorithms.md §A.7, src/stages/attribute.cpp):
<run.dir>/attribute/attribution.h5, format thinksteer.attribution schema_version 1 (K labels, L layers,
E examples, S picks per label), beside skipped.jsonl (each behaviour left out).

    from thinksteer_analysis import load_attribution
    a = load_attribution(run_dir)            # or the path of an attribution.h5
    a.mean[a.label_index("backtracking")]    # float32 [layer]: mean |effect| over examples
    a.selected_layers("backtracking")        # the layers the stage chose for steering

attribution.h5:
  /effect, /effect_signed [K, L, E] float32; /mean, /std, /cos_embed, /cos_unembed [K, L] float32
  /n_examples, /exclude_first, /exclude_last [K] int64; /selected [K, S] int64 (-1: none)
  /layers [L] int64 (ascending); /positions [K, E] int64; /labels [K] str; /example_id [E] str
  root attributes: metric (paper | logprob), mode (trace | per-span), hook, and the provenance
"""
from __future__ import annotations

import configparser
import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import Artifact, PathLike, SchemaError, attr, open_h5, provenance, read

ATTRIBUTION = Artifact(dir="attribute", file="attribution.h5", format="thinksteer.attribution", schema_version=1, stage="attribute")
FORMAT = ATTRIBUTION.format
SCHEMA_VERSION = ATTRIBUTION.schema_version
PATH = ATTRIBUTION.relpath
SKIPPED_JSONL = "skipped.jsonl"  # beside attribution.h5


def attribution_path(run_dir: PathLike) -> pathlib.Path:
    """<run_dir>/attribute/attribution.h5, or `run_dir` itself when it names a file."""
    return ATTRIBUTION.path(run_dir)


@dataclass
class Attribution:
    """One attribution.h5. K labels, L attributed layers, E examples, S picks per label."""
    path: pathlib.Path
    labels: list[str]                     # [K] behaviour labels
    layers: npt.NDArray[np.int64]         # [L] 0-based decoder layers attributed (ascending)
    effect: npt.NDArray[np.floating]      # float32 [K, L, E] |effect| per example
    effect_signed: npt.NDArray[np.floating]  # float32 [K, L, E] the same before the absolute value
    mean: npt.NDArray[np.floating]        # float32 [K, L] mean |effect| over the examples with positions
    std: npt.NDArray[np.floating]         # float32 [K, L] population std of the same
    cos_embed: npt.NDArray[np.floating]   # float32 [K, L] max |cos| of the vector with a token-embedding row
    cos_unembed: npt.NDArray[np.floating]  # float32 [K, L] the same with an unembedding (lm_head) row
    n_examples: npt.NDArray[np.integer]   # int64 [K] examples with positions
    exclude_first: npt.NDArray[np.integer]  # int64 [K] layers below this were not eligible for selection
    exclude_last: npt.NDArray[np.integer]  # int64 [K] the last this-many layers of the model were not eligible
    selected: npt.NDArray[np.integer]     # int64 [K, S] chosen steering layers, best first; -1 = none
    positions: npt.NDArray[np.integer]    # int64 [K, E] positions (spans of other labels) per example
    example_id: list[str]                 # [E] generation ids
    metric: str = ""                      # "paper" | "logprob"
    mode: str = ""                        # "trace" | "per-span"
    hook: str = ""                        # e.g. "blocks.{l}.hook_resid_post"
    provenance: dict[str, Any] = field(default_factory=dict)

    def label_index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"{self.path}: no label {label!r}; stored: {', '.join(self.labels)}") from None

    def selected_layers(self, label: str) -> list[int]:
        return [int(l) for l in self.selected[self.label_index(label)] if l >= 0]

    def embed_cos_threshold(self) -> float | None:
        """attribute.embed_cos of the run's resolved config (None if not recorded)."""
        text = self.provenance.get("config", "")
        cp = configparser.ConfigParser()
        try:
            cp.read_string(text)
            return float(cp["attribute"]["embed_cos"])
        except (configparser.Error, KeyError, ValueError):
            return None


def load_attribution(run_dir: PathLike) -> Attribution:
    """Reads and checks <run_dir>/attribute/attribution.h5 (or the file given): identity, every dataset's
    shape and kind, layers ascending; SchemaError names the file and dataset of anything that does not
    follow the layout."""
    path = attribution_path(run_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (the attribute stage has not run)")
    with open_h5(path) as f:
        ATTRIBUTION.check(f)
        labels = read(f, "/labels", [("label", None)], "str")
        K = len(labels)
        layers = read(f, "/layers", [("layer", None)], "int")
        L = len(layers)
        example_id = read(f, "/example_id", [("example", None)], "str")
        E = len(example_id)
        kl, kle = [("label", K), ("layer", L)], [("label", K), ("layer", L), ("example", E)]
        selected = read(f, "/selected", [("label", K), ("pick", None)], "int")
        a = Attribution(
            path=path, labels=[str(s) for s in labels], layers=layers.astype(np.int64),
            effect=read(f, "/effect", kle, "float"), effect_signed=read(f, "/effect_signed", kle, "float"),
            mean=read(f, "/mean", kl, "float"), std=read(f, "/std", kl, "float"),
            cos_embed=read(f, "/cos_embed", kl, "float"), cos_unembed=read(f, "/cos_unembed", kl, "float"),
            n_examples=read(f, "/n_examples", [("label", K)], "int"),
            exclude_first=read(f, "/exclude_first", [("label", K)], "int"),
            exclude_last=read(f, "/exclude_last", [("label", K)], "int"),
            selected=selected, positions=read(f, "/positions", [("label", K), ("example", E)], "int"),
            example_id=[str(s) for s in example_id], metric=str(attr(f, "metric", "")), mode=str(attr(f, "mode", "")),
            hook=str(attr(f, "hook", "")), provenance=provenance(f))
    if np.any(np.diff(a.layers) <= 0):
        raise SchemaError(path, "/layers", f"not strictly ascending: {a.layers.tolist()}")
    return a
