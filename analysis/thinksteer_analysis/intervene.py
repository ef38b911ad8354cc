"""The intervention sweep's summary (docs/directions.md "intervene/tasks/<key>.h5 ... and intervene/summary.{h5,csv}"),
written by `thinksteer reduce` of a sweep with sweep.kind = intervene: one row per task (dataset x mode x layer), the
columns of INTERVENE_STRS, INTERVENE_INTS and INTERVENE_FLOATS, as HDF5 datasets of the same names in summary.h5
(thinksteer.intervene_summary schema_version 1) and as CSV columns in summary.csv. Δ = intervened − clean; the
intervals are 95% paired bootstraps over prompts; recovery (patching only, NaN elsewhere) is
mean(logp − logp_clean) / mean(logp_source − logp_clean).

    from thinksteer_analysis.intervene import read_intervene
    s = read_intervene(run_dir)      # intervene/summary.h5 if present, else intervene/summary.csv
    s["mode"][i], s["delta_logp"][i], s["recovery"][i]
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from .directions import F64, I64, STRS, check_range, csv_column, csv_rows
from .schema import Artifact, PathLike, SchemaError, first_index, open_h5, read

INTERVENE_SUMMARY = Artifact(dir="intervene", file="summary.h5", format="thinksteer.intervene_summary", schema_version=1, stage="reduce")
INTERVENE_CSV = Artifact(dir="intervene", file="summary.csv", format=None, schema_version=None, stage="reduce")
INTERVENE_STRS = ("dataset", "mode", "site")
INTERVENE_INTS = ("layer", "n")
INTERVENE_FLOATS = ("logp", "logp_clean", "delta_logp", "delta_logp_lo", "delta_logp_hi", "exact", "exact_clean", "delta_exact", "delta_exact_lo",
                    "delta_exact_hi", "recovery", "recovery_lo", "recovery_hi")

__all__ = ["INTERVENE_CSV", "INTERVENE_FLOATS", "INTERVENE_INTS", "INTERVENE_STRS", "INTERVENE_SUMMARY", "InterveneSummary", "read_intervene"]


@dataclass
class InterveneSummary:
    """The intervention sweep's summary: one row per task (dataset x mode x layer), columns by name."""
    path: pathlib.Path
    strs: dict[str, STRS]           # dataset, mode, site
    ints: dict[str, I64]            # layer, n
    floats: dict[str, F64]          # INTERVENE_FLOATS

    def __len__(self) -> int:
        return len(self.ints["layer"])

    def __getitem__(self, name: str) -> np.ndarray:
        for columns in (self.strs, self.ints, self.floats):
            if name in columns:
                return columns[name]
        raise KeyError(f"{self.path}: no column {name!r}")

    def field(self, name: str) -> str:
        """How a message names column `name`: "/name" in summary.h5, "column 'name'" in summary.csv."""
        return f"/{name}" if self.path.suffix == ".h5" else f"column {name!r}"


def read_intervene(run_dir: PathLike) -> InterveneSummary:
    """Reads and checks <run_dir>/intervene/summary.h5 (identity, every column a [T] dataset) or, when the run has
    no summary.h5, summary.csv (every column in the header); n >= 0, exact shares in [0, 1]. A file path is read
    by its suffix."""
    p = pathlib.Path(run_dir)
    h5 = p if p.suffix == ".h5" else INTERVENE_SUMMARY.path(p)
    if p.suffix != ".csv" and (h5.exists() or p.suffix == ".h5"):
        s = _intervene_h5(INTERVENE_SUMMARY.require(h5))
    else:
        s = _intervene_csv(INTERVENE_CSV.require(INTERVENE_CSV.path(p)))
    i = first_index(s.ints["n"] < 0)
    if i is not None:
        raise SchemaError(s.path, s.field("n"), f"row {i}: {s.ints['n'][i]} is negative")
    for name in ("exact", "exact_clean"):
        check_range(s.path, s.field(name), s.floats[name], 0.0, 1.0)
    return s


def _intervene_h5(path: pathlib.Path) -> InterveneSummary:
    with open_h5(path) as f:
        INTERVENE_SUMMARY.check(f)
        T = [("task", len(read(f, "/layer", [("task", None)], "int")))]
        return InterveneSummary(path=path, strs={n: read(f, f"/{n}", T, "str") for n in INTERVENE_STRS},
                                ints={n: read(f, f"/{n}", T, "int").astype(np.int64) for n in INTERVENE_INTS},
                                floats={n: read(f, f"/{n}", T, "float").astype(np.float64) for n in INTERVENE_FLOATS})


def _intervene_csv(path: pathlib.Path) -> InterveneSummary:
    _, rows = csv_rows(path, INTERVENE_STRS + INTERVENE_INTS + INTERVENE_FLOATS)
    return InterveneSummary(path=path, strs={n: np.array([r[n] for _, r in rows], dtype=str).reshape(len(rows)) for n in INTERVENE_STRS},
                            ints={n: csv_column(path, rows, n, True) for n in INTERVENE_INTS}, floats={n: csv_column(path, rows, n) for n in INTERVENE_FLOATS})
