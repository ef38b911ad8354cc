"""A steering sweep's plan written by `thinksteer sweep plan` (src/steer/sweep_plan.h, src/stages/sweep.cpp):
<run.dir>/sweep/manifest.jsonl, one JSON object per task (one Slurm array task each) in task order, beside
plan.json (n_tasks, manifest_sha256, vectors_file, config). JSON lines carry no format attribute nor
schema version: the reader checks every row's keys and types the way the C++ reader does.

    from thinksteer_analysis.sweep_manifest import load_sweep_manifest
    points = load_sweep_manifest(run_dir)          # or the path of a manifest.jsonl
    points[3].key, points[3].layers_text           # "0123456789abcdef", "1+2"

A row: task (0, 1, ... in order), key (16 hex digits of SHA-256 over the parameters: it names the task
file sweep/tasks/<key>.h5), dataset, kind (baseline | vector | random), vector, layers (list of
non-negative ints; [] for a baseline), hook, coef, op (add | project-out), positions (all | prompt |
generated), seed, layer_scale, and sample_seed when generation samples.
"""
from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass
from typing import Any

from .schema import Artifact, PathLike, SchemaError, jsonl_rows, require_keys

SWEEP_MANIFEST = Artifact(dir="sweep", file="manifest.jsonl", format=None, schema_version=None, stage="sweep plan")
FORMAT = SWEEP_MANIFEST.format             # None: JSON lines, no format tag
SCHEMA_VERSION = SWEEP_MANIFEST.schema_version
PATH = SWEEP_MANIFEST.relpath
PLAN_JSON = "plan.json"                    # beside manifest.jsonl
KINDS = ("baseline", "vector", "random")
ROW_KEYS: dict[str, type | tuple[type, ...]] = {
    "task": int, "key": str, "dataset": str, "kind": str, "vector": str, "layers": list, "hook": str,
    "coef": (int, float), "op": str, "positions": str, "seed": int, "layer_scale": (int, float),
}
KEY = re.compile(r"[0-9a-f]{16}")


def _sample_seed(path: PathLike, where: str, row: dict[str, Any]) -> int:
    """The optional key sample_seed (written only when generation samples; 0 otherwise)."""
    v = row.get("sample_seed", 0)
    if not isinstance(v, int) or isinstance(v, bool):
        raise SchemaError(path, where, f"key 'sample_seed' must be an integer, got {v!r}")
    return v


def manifest_path(run_dir: PathLike) -> pathlib.Path:
    """<run_dir>/sweep/manifest.jsonl, or `run_dir` itself when it names a file."""
    return SWEEP_MANIFEST.path(run_dir)


@dataclass(frozen=True)
class SweepPoint:
    """One manifest row: one task of the sweep."""
    task: int
    key: str
    dataset: str
    kind: str                   # baseline | vector | random
    vector: str                 # behaviour label ("" for a baseline)
    layers: tuple[int, ...]     # () for a baseline
    hook: str                   # site, e.g. hook_resid_post ("" for a baseline)
    coef: float
    op: str                     # add | project-out ("" for a baseline)
    positions: str              # all | prompt | generated ("" for a baseline)
    seed: int
    sample_seed: int            # the generation's seed when it samples (a random direction's: its control seed)
    layer_scale: float

    @property
    def layers_text(self) -> str:
        """The layers as /points/layers of summary.h5 spells them: "1+2" ("" for a baseline)."""
        return "+".join(str(l) for l in self.layers)

    def hook_names(self) -> list[str]:
        """The TransformerLens hook names the point steers: blocks.{l}.<hook> per layer."""
        return [f"blocks.{l}.{self.hook}" for l in self.layers]

    @staticmethod
    def from_row(row: dict[str, Any], path: PathLike, where: str) -> SweepPoint:
        """A checked manifest row (SchemaError naming the file, `where` (e.g. "line 3") and the key
        otherwise)."""
        require_keys(path, where, row, ROW_KEYS)
        if row["kind"] not in KINDS:
            raise SchemaError(path, where, f"key 'kind' must be {', '.join(KINDS)}, got {row['kind']!r}")
        if not KEY.fullmatch(row["key"]):
            raise SchemaError(path, where, f"key 'key' is {row['key']!r}, expected 16 hex digits")
        layers = row["layers"]
        if not all(isinstance(l, int) and not isinstance(l, bool) and l >= 0 for l in layers):
            raise SchemaError(path, where, f"key 'layers' must hold non-negative integers, got {layers!r}")
        return SweepPoint(task=row["task"], key=row["key"], dataset=row["dataset"], kind=row["kind"], vector=row["vector"],
                          layers=tuple(layers), hook=row["hook"], coef=float(row["coef"]), op=row["op"], positions=row["positions"],
                          seed=row["seed"], sample_seed=_sample_seed(path, where, row), layer_scale=float(row["layer_scale"]))


def load_sweep_manifest(run_dir: PathLike) -> list[SweepPoint]:
    """Reads and checks <run_dir>/sweep/manifest.jsonl (or the file given): every row's keys and types,
    tasks numbered 0, 1, ... in order, keys unique, at least one task. The keys are not recomputed
    (the C++ `sweep run` refuses a row whose key does not match its parameters)."""
    path = SWEEP_MANIFEST.require(manifest_path(run_dir))
    points: list[SweepPoint] = []
    seen: dict[str, int] = {}
    for line, row in jsonl_rows(path):
        p = SweepPoint.from_row(row, path, f"line {line}")
        if p.task != len(points):
            raise SchemaError(path, f"line {line}", f"task {p.task}: tasks must be numbered 0, 1, ... in order (expected {len(points)})")
        if p.key in seen:
            raise SchemaError(path, f"line {line}", f"key {p.key} is also task {seen[p.key]}'s")
        seen[p.key] = p.task
        points.append(p)
    if not points:
        raise SchemaError(path, "manifest", "no tasks")
    return points
