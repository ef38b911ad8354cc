"""Steering sweep results gathered by `thinksteer reduce` (src/stages/reduce.cpp): <run.dir>/sweep/summary.h5,
format thinksteer.sweep_summary schema_version 1 and format_version 1 (both written), beside
summary.csv (one row per point x label) and missing.txt. One row per finished task ("point"): a
baseline, a steering vector ("vector") or a norm-matched random control ("random") at some layer(s),
hook, coefficient and op. P points, K labels.

    from thinksteer_analysis import load_sweep_summary
    s = load_sweep_summary(run_dir)                      # or the path of a summary.h5
    s.points["coef"], s.points["kind"]                  # [P] per point (strings decoded to numpy str)
    s.fraction["token_share"][:, s.label_index("backtracking")]   # [P] behaviour fraction (§A.6)
    s.delta["token_share_lo"]                            # [P, K] bootstrap 95% interval, lower end

summary.h5:
  /labels [K] str, /steerable [K] uint8
  /points/<field> [P] (POINT_FIELDS: task, key, dataset, kind, vector, layers, layer, hook, coef, op,
  positions, seed, n_prompts, accuracy, think_tokens, closed, baseline)
  /fraction/{token_share, span_share} [P, K] float64
  /delta/{token_share, span_share}{, _lo, _hi} [P, K] float64; /delta/{accuracy, think_tokens}{, _lo, _hi} [P] float64
  root attributes: partial, n_tasks, n_missing, missing, bootstrap, ci, and the provenance

What the figures and tables compute from it (series, levels, the §A.6 bars, the plain-text table) is
in sweep_analysis.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import Artifact, Kind, PathLike, SchemaError, attr, open_h5, provenance, read

SWEEP_SUMMARY = Artifact(dir="sweep", file="summary.h5", format="thinksteer.sweep_summary", schema_version=1, stage="reduce",
                         format_version=1)
FORMAT = SWEEP_SUMMARY.format
SCHEMA_VERSION = SWEEP_SUMMARY.schema_version
FORMAT_VERSION = SWEEP_SUMMARY.format_version
PATH = SWEEP_SUMMARY.relpath
SUMMARY_CSV = "summary.csv"     # beside summary.h5
MISSING_TXT = "missing.txt"     # beside summary.h5
SHARES = ("token_share", "span_share")
# /points/<field>: kind of each field (all 1-D, length P).
POINT_FIELDS: dict[str, Kind] = {
    "task": "int", "key": "str", "dataset": "str", "kind": "str", "vector": "str", "layers": "str", "layer": "int",
    "hook": "str", "coef": "float", "op": "str", "positions": "str", "seed": "int", "n_prompts": "int",
    "accuracy": "float", "think_tokens": "float", "closed": "float", "baseline": "int",
}
SCALAR_DELTAS = ("accuracy", "think_tokens")


def summary_path(run_dir: PathLike) -> pathlib.Path:
    """<run_dir>/sweep/summary.h5, or `run_dir` itself when it names a file."""
    return SWEEP_SUMMARY.path(run_dir)


@dataclass
class SweepSummary:
    """One summary.h5. P points, K labels."""
    path: pathlib.Path
    labels: list[str]                            # [K] behaviour labels: the columns of the [P, K] arrays
    steerable: npt.NDArray[np.bool_]             # [K]: labels in the token-share denominator
    points: dict[str, np.ndarray]                # field -> [P] array (POINT_FIELDS; strings as numpy str arrays)
    fraction: dict[str, npt.NDArray[np.float64]]  # "token_share" | "span_share" -> [P, K]
    delta: dict[str, npt.NDArray[np.float64]]    # "<share>", "<share>_lo", "<share>_hi" -> [P, K]; "accuracy[_lo|_hi]", "think_tokens[_lo|_hi]" -> [P]
    partial: bool = False
    n_tasks: int = 0
    n_missing: int = 0
    ci: float = 0.95                             # level of the bootstrap intervals (root attribute `ci` when present)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.points["task"])

    def label_index(self, label: str) -> int | None:
        """Column of `label` (None if the file has no such label)."""
        return self.labels.index(label) if label in self.labels else None

    def hook_names(self, i: int) -> list[str]:
        """The TransformerLens hook names point i steers (docs/decisions.md): blocks.{l}.<hook> for each of its
        layers ("1+2" -> two names); [] for a baseline."""
        layers, hook = str(self.points["layers"][i]), str(self.points["hook"][i])
        return [f"blocks.{l}.{hook}" for l in layers.split("+")] if layers else []

    def datasets(self) -> list[str]:
        return sorted(set(self.points["dataset"].tolist()))

    def subset(self, mask: npt.ArrayLike) -> SweepSummary:
        """The points where `mask` is true, `baseline` indices renumbered (-1 where the baseline is not kept)."""
        idx = np.flatnonzero(mask)
        new = np.full(len(self), -1, dtype=np.int64)
        new[idx] = np.arange(len(idx))
        points = {k: v[idx] for k, v in self.points.items()}
        b = points["baseline"]
        points["baseline"] = np.where(b >= 0, new[np.clip(b, 0, None)], -1)
        return SweepSummary(self.path, self.labels, self.steerable, points, {k: v[idx] for k, v in self.fraction.items()},
                            {k: v[idx] for k, v in self.delta.items()}, self.partial, self.n_tasks, self.n_missing, self.ci, self.provenance)


def load_sweep_summary(run_dir: PathLike) -> SweepSummary:
    """Reads and checks <run_dir>/sweep/summary.h5 (or the file given): identity, every dataset's shape
    and kind, baseline indices; SchemaError names the file and dataset of anything that does not
    follow the layout."""
    path = summary_path(run_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (the sweep has not been reduced)")
    with open_h5(path) as f:
        SWEEP_SUMMARY.check(f)
        labels = [str(s) for s in read(f, "/labels", [("K", None)], "str")]
        K = len(labels)
        steerable = read(f, "/steerable", [("K", K)], "uint8").astype(bool)
        P = read(f, "/points/task", [("P", None)], "int").shape[0]
        points = {name: read(f, f"/points/{name}", [("P", P)], kind) for name, kind in POINT_FIELDS.items()}
        fraction = {s: read(f, f"/fraction/{s}", [("P", P), ("K", K)], "float").astype(np.float64) for s in SHARES}
        delta = {}
        for s in SHARES:
            for suffix in ("", "_lo", "_hi"):
                delta[s + suffix] = read(f, f"/delta/{s}{suffix}", [("P", P), ("K", K)], "float").astype(np.float64)
        for s in SCALAR_DELTAS:
            for suffix in ("", "_lo", "_hi"):
                delta[s + suffix] = read(f, f"/delta/{s}{suffix}", [("P", P)], "float").astype(np.float64)
        summary = SweepSummary(path, labels, steerable, points, fraction, delta, partial=bool(attr(f, "partial", 0)),
                               n_tasks=int(attr(f, "n_tasks", P)), n_missing=int(attr(f, "n_missing", 0)), ci=float(attr(f, "ci", 0.95)),
                               provenance=provenance(f))
    b = summary.points["baseline"]
    bad = np.flatnonzero((b < -1) | (b >= P))
    if bad.size:
        raise SchemaError(path, "/points/baseline", f"row {bad[0]}: index {b[bad[0]]} outside [-1, {P})")
    bad = np.flatnonzero((b >= 0) & (summary.points["kind"] != "baseline"))
    bad = bad[summary.points["kind"][b[bad]] != "baseline"]
    if bad.size:
        raise SchemaError(path, "/points/baseline", f"row {bad[0]}: points at row {b[bad[0]]}, which is not a baseline")
    return summary
