"""The base-vector sweep's artifacts (docs/algorithms.md §B.8, §B.10): steering vectors trained on a base
model, one trained set per task of `thinksteer basevec train` (methods × seeds), the summary `reduce`
writes, and its selected.json. Each reader checks identity, shapes and values and raises SchemaError naming
the file and the dataset, attribute or JSON key.

    from thinksteer_analysis.basevec import read_basevec_task, read_basevec_summary, read_basevec_selected
    t = read_basevec_task(run_dir, key)         # or the path of a task file: t.vectors, t.curve_train, t.holdout()
    s = read_basevec_summary(run_dir)           # s.key[i], s.selected[i], s.metrics[i]
    sel = read_basevec_selected(run_dir)        # {"correction": BasevecSelection(key, task, seed, ...), ...}

basevec/tasks/<key>.h5 (+ .done), thinksteer.basevec_task schema_version 1 (src/artifacts/basevec_task.h),
C categories, d_model d, E curve points; beside it <key>.vectors.h5, a steering-vector file (not read here):
  /vectors [C, d] f32, /counts [C] i64 (0: no data, zero vector), /norms [C] f32
  /bias [d] f32 (linear sets only)
  /mlp/{w1 [H, d], b1 [H], w2 [C, H], b2 [C]} f32 (correction sets trained with basevec.mlp)
  /curves/{step i64, epoch f64, phase i64, train f64, holdout f64} [E]: correction: one point per holdout
      evaluation (phase 0; train = mean loss since the last point, holdout = holdout top-k KL);
      linear: one point per epoch of each phase (-1 the bias, c category idx<c>; holdout NaN)
  root attributes: task, key, point (JSON: key, method, seed, task), method (correction | linear), seed,
  hook, layer, categories (JSON list of C names), mlp_input, metrics (JSON object; NaN written as null),
  records_file, records_hash, base_model, and the identity and provenance
  metrics["holdout"] (and ["selection"], the split that chooses the seed), when the split had data:
      correction: {"unsteered": E, "steered": E, "random_kl": [kl | null, ...]} with
                  E = {"kl", "top1", "positions", "kl_per_category": [C, kl | null]}
      linear:     {"unsteered", "steered", "random": mean log10 CE, "per_category": [C, null |
                  {"unsteered", "steered", "random", "sentences"}]}
  metrics["selection_metric"] (lower is better; null when not measured), ["selection_split"]
basevec/summary.h5 (+ summary.csv), thinksteer.basevec_summary schema_version 1 (src/artifacts/basevec_summary.h),
N finished tasks:
  /task, /seed [N] i64, /method, /key [N] str, /selection [N] f64, /selected [N] i64 (1: chosen for its method)
  root attributes: rule, partial (0/1), metrics (JSON list of the N tasks' metrics objects)
basevec/selected.json: {"<method>": {"key", "task", "seed", "file", "vectors", "selection"}} for each method
a seed was chosen for (selection may be null).
"""
from __future__ import annotations

import math
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import (Artifact, PathLike, SchemaError, attr, first_index, int_attr, json_attr, json_file, keyed_file, open_h5, provenance, read,
                     read_optional, require_keys, str_attr)

BASEVEC_TASK = Artifact(dir="basevec", file="tasks/{key}.h5", format="thinksteer.basevec_task", schema_version=1, stage="sweep run")
BASEVEC_SUMMARY = Artifact(dir="basevec", file="summary.h5", format="thinksteer.basevec_summary", schema_version=1, stage="reduce")
BASEVEC_SELECTED = Artifact(dir="basevec", file="selected.json", format=None, schema_version=None, stage="reduce")
METHODS = ("correction", "linear")
KEY = re.compile(r"[0-9a-f]{16}")
POINT_KEYS: dict[str, type | tuple[type, ...]] = {"key": str, "method": str, "seed": int, "task": int}
SELECTED_KEYS: dict[str, type | tuple[type, ...]] = {"key": str, "task": int, "seed": int, "file": str, "vectors": str}
NUMBER = (int, float)

__all__ = [
    "BASEVEC_SELECTED", "BASEVEC_SUMMARY", "BASEVEC_TASK", "BasevecSelection", "BasevecSummary", "BasevecTask", "HoldoutScores",
    "basevec_task_path", "finished_basevec_tasks", "holdout_scores", "read_basevec_selected", "read_basevec_summary", "read_basevec_task",
]


def _number(v: Any) -> float:
    """A JSON value as a float: nan for null (the C++ writes NaN as null), a missing key or a non-number."""
    return float(v) if isinstance(v, NUMBER) and not isinstance(v, bool) else math.nan


# ---- metrics --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HoldoutScores:
    """A task's holdout numbers (NaN where not measured): correction sets top-k KL to the thinking model at
    the disagreement positions, linear sets mean log10 CE of the held-out sentences; lower is better."""
    unsteered: float
    steered: float
    random_mean: float          # mean over the random controls (correction: of random_kl's numbers)
    random_min: float
    random_max: float
    top1: float                 # correction: share of positions whose steered argmax is the thinking model's top-1
    unsteered_per_category: npt.NDArray[np.float64]   # [C] (NaN: null)
    steered_per_category: npt.NDArray[np.float64]     # [C]
    random_per_category: npt.NDArray[np.float64]      # [C] linear only (correction: all NaN)


def _per_category(values: Any, name: str | None = None) -> npt.NDArray[np.float64]:
    if not isinstance(values, list):
        return np.zeros(0)
    if name is None:
        return np.array([_number(v) for v in values], dtype=np.float64)
    return np.array([_number(v.get(name)) if isinstance(v, dict) else math.nan for v in values], dtype=np.float64)


def holdout_scores(metrics: dict[str, Any], method: str, split: str = "holdout") -> HoldoutScores:
    """The numbers of metrics[split] of a task of `method` (all NaN when the split is absent)."""
    h = metrics.get(split)
    h = h if isinstance(h, dict) else {}
    if method == "correction":
        u = h.get("unsteered") if isinstance(h.get("unsteered"), dict) else {}
        s = h.get("steered") if isinstance(h.get("steered"), dict) else {}
        rnd = [x for x in (_number(v) for v in h.get("random_kl") or []) if math.isfinite(x)]
        up, sp = _per_category(u.get("kl_per_category")), _per_category(s.get("kl_per_category"))
        return HoldoutScores(_number(u.get("kl")), _number(s.get("kl")), float(np.mean(rnd)) if rnd else math.nan,
                             min(rnd) if rnd else math.nan, max(rnd) if rnd else math.nan, _number(s.get("top1")),
                             up, sp, np.full(len(sp), math.nan))
    r = _number(h.get("random"))
    per = h.get("per_category")
    return HoldoutScores(_number(h.get("unsteered")), _number(h.get("steered")), r, r, r, math.nan,
                         _per_category(per, "unsteered"), _per_category(per, "steered"), _per_category(per, "random"))


def _check_split(path: pathlib.Path, metrics: dict[str, Any], method: str, split: str, C: int) -> None:
    """metrics[split], when present, has the structure its method's trainer writes (numbers may be null)."""
    if split not in metrics:
        return
    where = f"attribute 'metrics': key {split!r}"
    h = metrics[split]
    if not isinstance(h, dict):
        raise SchemaError(path, where, "is not a JSON object")

    def numbers(name: str, v: Any, n: int | None = None) -> None:
        ok = isinstance(v, list) and all(x is None or (isinstance(x, NUMBER) and not isinstance(x, bool)) for x in v)
        if not ok:
            raise SchemaError(path, where, f"{name} must be a list of numbers or null")
        if n is not None and len(v) != n:
            raise SchemaError(path, where, f"{name} has {len(v)} entries, expected C = {n}")

    if method == "correction":
        for name in ("unsteered", "steered"):
            e = h.get(name)
            if not isinstance(e, dict):
                raise SchemaError(path, where, f"key {name!r} must be a JSON object")
            for k in ("kl", "top1"):
                if k not in e or not (e[k] is None or isinstance(e[k], NUMBER)) or isinstance(e[k], bool):
                    raise SchemaError(path, where, f"{name}.{k} must be a number or null")
            if "kl_per_category" in e:
                numbers(f"{name}.kl_per_category", e["kl_per_category"], C)
        numbers("random_kl", h.get("random_kl"))
    else:
        for name in ("unsteered", "steered", "random"):
            v = h.get(name)
            if name not in h or (v is not None and (not isinstance(v, NUMBER) or isinstance(v, bool))):
                raise SchemaError(path, where, f"key {name!r} is {v!r}, expected a number or null")
        per = h.get("per_category", [])
        if not isinstance(per, list) or len(per) != C or not all(x is None or isinstance(x, dict) for x in per):
            raise SchemaError(path, where, f"per_category must be a list of C = {C} objects or null")


# ---- basevec task ---------------------------------------------------------------------------------

def basevec_task_path(run_dir: PathLike, key: str | None = None) -> pathlib.Path:
    """<run_dir>/basevec/tasks/<key>.h5, or `run_dir` itself when it names a file (then key is None)."""
    return keyed_file(BASEVEC_TASK, run_dir, key)


@dataclass
class BasevecTask:
    """One trained vector set: C categories in d dimensions, E curve points."""
    path: pathlib.Path
    task: int
    key: str
    method: str                                   # correction | linear
    seed: int
    hook: str
    layer: int
    categories: list[str]                         # [C] idx0, idx1, ...
    vectors: npt.NDArray[np.float32]              # [C, d] (zero where counts = 0)
    counts: npt.NDArray[np.int64]                 # [C] training positions (correction) or sentences (linear)
    norms: npt.NDArray[np.float32]                # [C]
    bias: npt.NDArray[np.float32] | None          # [d] linear sets; None otherwise
    mlp: dict[str, npt.NDArray[np.float32]] | None   # w1 [H, d], b1 [H], w2 [C, H], b2 [C]; None without the MLP
    curve_step: npt.NDArray[np.int64]             # [E]
    curve_epoch: npt.NDArray[np.float64]          # [E]
    curve_phase: npt.NDArray[np.int64]            # [E] correction 0; linear -1 bias, c category
    curve_train: npt.NDArray[np.float64]          # [E]
    curve_holdout: npt.NDArray[np.float64]        # [E] correction: holdout KL; linear: NaN
    metrics: dict[str, Any]                       # as parsed (null: the C++ wrote NaN)
    point: dict[str, Any] = field(default_factory=dict)
    mlp_input: str = ""
    records_file: str = ""
    records_hash: str = ""
    base_model: str = ""
    config_sha256: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def c(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def d(self) -> int:
        return int(self.vectors.shape[1])

    def metric(self, name: str) -> float:
        """Top-level metric `name` as a float (nan when absent, null or not a number)."""
        return _number(self.metrics.get(name))

    @property
    def selection_metric(self) -> float:
        return self.metric("selection_metric")

    def holdout(self, split: str = "holdout") -> HoldoutScores:
        return holdout_scores(self.metrics, self.method, split)

    def phase_name(self, phase: int) -> str:
        """"bias" for phase -1, the category's name otherwise."""
        return "bias" if phase < 0 else self.categories[phase] if phase < len(self.categories) else f"idx{phase}"


def _mlp(f: Any, C: int, d: int) -> dict[str, npt.NDArray[np.float32]] | None:
    if "mlp" not in f:
        return None
    w1 = read(f, "/mlp/w1", [("H", None), ("d", d)], "float").astype(np.float32, copy=False)
    H = w1.shape[0]
    dims = {"b1": [("H", H)], "w2": [("C", C), ("H", H)], "b2": [("C", C)]}
    out = {"w1": w1}
    out.update({name: read(f, f"/mlp/{name}", shape, "float").astype(np.float32, copy=False) for name, shape in dims.items()})
    return out


def _check_point(path: pathlib.Path, point: dict[str, Any], task: int, key: str, method: str, seed: int) -> None:
    where = "attribute 'point'"
    require_keys(path, where, point, POINT_KEYS)
    got, want = (point["task"], point["key"], point["method"], point["seed"]), (task, key, method, seed)
    if got != want:
        raise SchemaError(path, where, f"task {got[0]} key {got[1]} method {got[2]} seed {got[3]}, but the file's attributes say "
                          f"task {task} key {key} method {method} seed {seed}")


def read_basevec_task(run_dir: PathLike, key: str | None = None) -> BasevecTask:
    """Reads and checks a task file (<run_dir>/basevec/tasks/<key>.h5, or the file given): identity, shapes
    and kinds, the point against the attributes (and the key it is filed under), the method, finite vectors,
    counts >= 0, curve phases in range, categories and metrics; SchemaError names the file and field."""
    path = BASEVEC_TASK.require(basevec_task_path(run_dir, key))
    with open_h5(path) as f:
        BASEVEC_TASK.check(f)
        vectors = read(f, "/vectors", [("C", None), ("d", None)], "float").astype(np.float32, copy=False)
        C, d = vectors.shape
        counts = read(f, "/counts", [("C", C)], "int").astype(np.int64)
        norms = read(f, "/norms", [("C", C)], "float").astype(np.float32, copy=False)
        bias = read_optional(f, "/bias", [("d", d)], "float")
        step = read(f, "/curves/step", [("E", None)], "int").astype(np.int64)
        E = [("E", len(step))]
        phase = read(f, "/curves/phase", E, "int").astype(np.int64)
        epoch, train, hold = (read(f, f"/curves/{n}", E, "float").astype(np.float64) for n in ("epoch", "train", "holdout"))
        method = str_attr(f, "method")
        if method not in METHODS:
            raise SchemaError(path, "attribute 'method'", f"{method!r}, expected {' or '.join(METHODS)}")
        task, tkey, seed = int_attr(f, "task"), str_attr(f, "key"), int_attr(f, "seed")
        point = json_attr(f, "point", dict)
        _check_point(path, point, task, tkey, method, seed)
        categories = json_attr(f, "categories", list)
        metrics = json_attr(f, "metrics", dict)
        t = BasevecTask(path=path, task=task, key=tkey, method=method, seed=seed, hook=str_attr(f, "hook"), layer=int_attr(f, "layer"),
                        categories=categories, vectors=vectors, counts=counts, norms=norms,
                        bias=None if bias is None else bias.astype(np.float32, copy=False), mlp=_mlp(f, C, d),
                        curve_step=step, curve_epoch=epoch, curve_phase=phase, curve_train=train, curve_holdout=hold, metrics=metrics,
                        point=point, mlp_input=str(attr(f, "mlp_input", "")), records_file=str_attr(f, "records_file"),
                        records_hash=str_attr(f, "records_hash"), base_model=str_attr(f, "base_model"),
                        config_sha256=str(attr(f, "config_sha256", "")), provenance=provenance(f))
    if key is not None and t.key != key:
        raise SchemaError(path, "attribute 'key'", f"{t.key!r}, but the file is filed under {key!r}")
    if len(categories) != C or not all(isinstance(c, str) for c in categories):
        raise SchemaError(path, "attribute 'categories'", f"must be a list of C = {C} names (one per row of /vectors)")
    if not np.isfinite(vectors).all():
        raise SchemaError(path, "/vectors", f"row {first_index(~np.isfinite(vectors).all(axis=1))}: a value that is not finite")
    i = first_index(counts < 0)
    if i is not None:
        raise SchemaError(path, "/counts", f"category {i}: {counts[i]}, expected >= 0")
    if method == "linear" and bias is None:
        raise SchemaError(path, "/bias", "missing dataset (a linear set has a bias vector)")
    if method == "correction" and bias is not None:
        raise SchemaError(path, "/bias", "present, but a correction set has no bias vector")
    lo = -1 if method == "linear" else 0
    hi = C if method == "linear" else 1
    i = first_index((phase < lo) | (phase >= hi))
    if i is not None:
        raise SchemaError(path, "/curves/phase", f"point {i}: {phase[i]}, expected {'-1 (bias) or a category in [0, C)' if lo < 0 else '0'}")
    if metrics.get("method", method) != method:
        raise SchemaError(path, "attribute 'metrics'", f"key 'method' is {metrics['method']!r}, but the attribute 'method' is {method!r}")
    for split in ("holdout", "selection"):
        _check_split(path, metrics, method, split, C)
    return t


def finished_basevec_tasks(run_dir: PathLike) -> list[pathlib.Path]:
    """<run_dir>/basevec/tasks/<key>.h5 files with their .done marker, by key (the <key>.vectors.h5 beside them
    are not listed)."""
    tasks = pathlib.Path(run_dir) / BASEVEC_TASK.dir / "tasks"
    return sorted(p for p in tasks.glob("*.h5") if KEY.fullmatch(p.stem) and BASEVEC_TASK.done_path(p).exists())


# ---- basevec summary ------------------------------------------------------------------------------

@dataclass
class BasevecSummary:
    """One basevec summary.h5: N finished tasks, per method at most one selected (the lowest selection metric)."""
    path: pathlib.Path
    task: npt.NDArray[np.int64]          # [N]
    seed: npt.NDArray[np.int64]          # [N]
    method: npt.NDArray[np.str_]         # [N] correction | linear
    key: npt.NDArray[np.str_]            # [N]
    selection: npt.NDArray[np.float64]   # [N] the task's selection metric (NaN: not measured)
    selected: npt.NDArray[np.int64]      # [N] 1: chosen for its method
    metrics: list[dict[str, Any]]        # [N] each task's metrics object
    rule: str = ""
    partial: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.task)

    def row_of(self, key: str) -> int | None:
        """The row of task `key` (None when the summary does not list it)."""
        hits = np.flatnonzero(self.key == key)
        return int(hits[0]) if hits.size else None

    def selected_rows(self) -> dict[str, int]:
        """{method: row} of the chosen task of each method."""
        return {str(self.method[i]): int(i) for i in np.flatnonzero(self.selected == 1)}


def read_basevec_summary(run_dir: PathLike) -> BasevecSummary:
    """Reads and checks <run_dir>/basevec/summary.h5 (or the file given): identity, every dataset's shape and
    kind, known methods, 16-hex-digit keys without repeats, selected 0/1 with at most one per method, and
    one metrics object per row; SchemaError names the file and the dataset or attribute."""
    path = BASEVEC_SUMMARY.require(BASEVEC_SUMMARY.path(run_dir))
    with open_h5(path) as f:
        BASEVEC_SUMMARY.check(f)
        task = read(f, "/task", [("N", None)], "int").astype(np.int64)
        N = [("N", len(task))]
        seed, selected = (read(f, f"/{n}", N, "int").astype(np.int64) for n in ("seed", "selected"))
        method, key = (read(f, f"/{n}", N, "str") for n in ("method", "key"))
        selection = read(f, "/selection", N, "float").astype(np.float64)
        metrics = json_attr(f, "metrics", list)
        s = BasevecSummary(path=path, task=task, seed=seed, method=method, key=key, selection=selection, selected=selected, metrics=metrics,
                           rule=str_attr(f, "rule"), partial=bool(int_attr(f, "partial", 0)), provenance=provenance(f))
    if len(metrics) != len(task) or not all(isinstance(m, dict) for m in metrics):
        raise SchemaError(path, "attribute 'metrics'", f"must be a list of {len(task)} JSON objects (one per row)")
    i = first_index(~np.isin(method, METHODS))
    if i is not None:
        raise SchemaError(path, "/method", f"row {i}: {str(method[i])!r} is not {' or '.join(METHODS)}")
    i = first_index([not KEY.fullmatch(str(k)) for k in key])
    if i is not None:
        raise SchemaError(path, "/key", f"row {i}: {str(key[i])!r} is not 16 hex digits")
    keys = key.tolist()
    i = first_index([keys.index(k) != j for j, k in enumerate(keys)])
    if i is not None:
        raise SchemaError(path, "/key", f"row {i}: {keys[i]} repeats row {keys.index(keys[i])}")
    i = first_index((selected != 0) & (selected != 1))
    if i is not None:
        raise SchemaError(path, "/selected", f"row {i}: {selected[i]}, expected 0 or 1")
    for m in METHODS:
        rows = np.flatnonzero((method == m) & (selected == 1))
        if rows.size > 1:
            raise SchemaError(path, "/selected", f"rows {rows[0]} and {rows[1]} are both selected for method {m}")
    return s


# ---- selected.json --------------------------------------------------------------------------------

@dataclass(frozen=True)
class BasevecSelection:
    """The task reduce chose for one method."""
    method: str
    key: str
    task: int
    seed: int
    file: str                     # the task file (as the run's config names it)
    vectors: str                  # the steering-vector file beside it
    selection: float              # its selection metric (NaN: null)


def read_basevec_selected(run_dir: PathLike) -> dict[str, BasevecSelection]:
    """Reads and checks <run_dir>/basevec/selected.json (or the file given): a JSON object keyed by method
    (correction, linear), each {key, task, seed, file, vectors, selection}; SchemaError names the file and key."""
    path = BASEVEC_SELECTED.require(BASEVEC_SELECTED.path(run_dir))
    obj = json_file(path)
    out = {}
    for method, row in obj.items():
        where = f"key {method!r}"
        if method not in METHODS:
            raise SchemaError(path, where, f"is not a method ({' or '.join(METHODS)})")
        if not isinstance(row, dict):
            raise SchemaError(path, where, "is not a JSON object")
        require_keys(path, where, row, SELECTED_KEYS)
        if not KEY.fullmatch(row["key"]):
            raise SchemaError(path, where, f"key 'key' is {row['key']!r}, expected 16 hex digits")
        sel = row.get("selection")
        if sel is not None and (not isinstance(sel, NUMBER) or isinstance(sel, bool)):
            raise SchemaError(path, where, f"key 'selection' is {sel!r}, expected a number or null")
        out[method] = BasevecSelection(method=method, key=row["key"], task=row["task"], seed=row["seed"], file=row["file"],
                                       vectors=row["vectors"], selection=_number(sel))
    return out
