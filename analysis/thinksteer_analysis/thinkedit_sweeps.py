"""ThinkEdit's steering and evaluation sweeps (docs/algorithms.md §C.3, §C.6) and what the tables and figures
compute from them. Each is an ordinary steer sweep (sweep_manifest, sweep_task) in a directory of the run:

  <run>/alpha/sweep        all-layer steering: vector points at coefficients α, the baseline (α = 0)
  <run>/layerwise/sweep    one layer at a time: vector points at α = +1 and -1, the baseline
  <run>/eval/original/sweep, <run>/eval/edited/sweep
                           baseline points only, one per sampling seed (one "run" of §C.6 each), same prompts

A point sampled with several seeds repeats per seed (sample_seed); a vector point's baseline is the
baseline of its dataset with the same sample_seed, and prompts pair by id. Intervals are percentile bootstrap
intervals over prompts (a prompt's responses under every seed resampled together), BOOTSTRAP resamples at
level CI with a fixed seed, so the numbers repeat.

    from thinksteer_analysis.thinkedit_sweeps import load_sweep, alpha_rows, alpha_spearman, layer_rows, eval_rows
    sweep = load_sweep(run_dir / "alpha")     # None without sweep/manifest.jsonl
    rows = alpha_rows(sweep)                  # per dataset and vector: the baseline, then each α
"""
from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .schema import PathLike, SchemaError
from .sweep_manifest import SweepPoint, load_sweep_manifest, manifest_path
from .sweep_task import SweepTask, finished_tasks, load_sweep_task

BOOTSTRAP = 2000          # resamples
CI = 0.95
SEED = 0                  # the resampling's seed
SHORTEST = (0.05, 0.10, 0.20)   # §C.6: accuracy on the shortest 5/10/20% of each run's responses
N_THRESHOLDS = 30               # §C.6: points of the accuracy-against-length-threshold curve
SWEEP_DIRS = {"alpha": "alpha", "layerwise": "layerwise", "original": "eval/original", "edited": "eval/edited"}
NAN = math.nan

__all__ = [
    "BOOTSTRAP", "CI", "N_THRESHOLDS", "SHORTEST", "SWEEP_DIRS", "AlphaRow", "EvalRow", "Interval", "LayerRow", "Sweep", "alpha_rows",
    "alpha_spearman", "bootstrap_mean", "eval_rows", "layer_rows", "load_sweep", "shortest_accuracy", "spearman", "threshold_curves",
]


# ---- statistics --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """An estimate with its bootstrap interval (NaN where there is nothing to estimate)."""
    value: float = NAN
    lo: float = NAN
    hi: float = NAN


def bootstrap_mean(values: npt.ArrayLike, resamples: int = BOOTSTRAP, ci: float = CI, seed: int = SEED) -> Interval:
    """The mean of the finite entries of `values` [R, P] (R responses per prompt, e.g. one per seed; NaN: none)
    with its percentile bootstrap interval over the prompts with a response (a resampled prompt brings all of
    its responses)."""
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    ok = np.isfinite(v)
    sums, counts = np.where(ok, v, 0.0).sum(axis=0), ok.sum(axis=0).astype(np.float64)
    sums, counts = sums[counts > 0], counts[counts > 0]          # prompts without a response do not take part
    if not counts.size:
        return Interval()
    value = float(sums.sum() / counts.sum())
    idx = np.random.default_rng(seed).integers(0, len(sums), size=(resamples, len(sums)))
    stats = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lo, hi = np.percentile(stats, [50 * (1 - ci), 50 * (1 + ci)])
    return Interval(value, float(lo), float(hi))


def _ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of `a`, ties given their mean rank."""
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a), dtype=np.float64)
    ranks[order] = np.arange(len(a), dtype=np.float64)
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def spearman(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Spearman's rank correlation of the pairs where both are finite (ties: mean ranks); NaN with fewer than
    two pairs or a constant side."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return NAN
    rx, ry = _ranks(x[ok]), _ranks(y[ok])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else NAN


# ---- one sweep ---------------------------------------------------------------------------------------

@dataclass
class Sweep:
    """One steer sweep of the run: its finished tasks (with their manifest points), in task order."""
    name: str                       # alpha | layerwise | original | edited
    dir: pathlib.Path               # the directory holding sweep/
    points: list[SweepPoint]        # finished tasks' points
    tasks: list[SweepTask]          # the same order
    planned: int                    # manifest rows

    def select(self, kind: str, dataset: str | None = None) -> list[int]:
        """Indices of the finished tasks of `kind` (and `dataset`)."""
        return [i for i, p in enumerate(self.points) if p.kind == kind and (dataset is None or p.dataset == dataset)]

    def datasets(self) -> list[str]:
        """The datasets in task order, each once."""
        return list(dict.fromkeys(p.dataset for p in self.points))

    def baseline_of(self, i: int) -> SweepTask | None:
        """The baseline task of point i's dataset and sample_seed (None when it has not finished)."""
        p = self.points[i]
        for q, t in zip(self.points, self.tasks):
            if q.kind == "baseline" and q.dataset == p.dataset and q.sample_seed == p.sample_seed:
                return t
        return None


def load_sweep(sweep_dir: PathLike, name: str = "") -> Sweep | None:
    """The sweep under <sweep_dir>/sweep (its manifest and finished task files, read and checked); None when
    it has no manifest. SchemaError when a task repeats a prompt id (they pair by id)."""
    d = pathlib.Path(sweep_dir)
    if not manifest_path(d).exists():
        return None
    planned = len(load_sweep_manifest(d))
    done = finished_tasks(d)
    tasks = [load_sweep_task(path) for _, path in done]
    for t in tasks:
        ids = t.prompt_id.tolist()
        if len(set(ids)) != len(ids):
            dup = next(x for x in ids if ids.count(x) > 1)
            raise SchemaError(t.path, "/prompts/id", f"prompt {dup!r} appears twice (ThinkEdit's sweeps pair prompts by id)")
    return Sweep(name=name or d.name, dir=d, points=[p for p, _ in done], tasks=tasks, planned=planned)


def _prompt_index(tasks: Sequence[SweepTask]) -> dict[str, int]:
    """Column of each prompt id, in order of first appearance."""
    index: dict[str, int] = {}
    for t in tasks:
        for pid in t.prompt_id.tolist():
            index.setdefault(pid, len(index))
    return index


def _matrix(tasks: Sequence[SweepTask | None], index: dict[str, int], name: str) -> np.ndarray:
    """[len(tasks), P]: per task and prompt its `name` (accuracy: correct, NaN without a reference; think_tokens);
    NaN where the task lacks the prompt (or is None)."""
    out = np.full((len(tasks), len(index)), NAN)
    for r, t in enumerate(tasks):
        if t is None:
            continue
        cols = [index[pid] for pid in t.prompt_id.tolist()]
        if name == "accuracy":
            out[r, cols] = np.where(t.correct >= 0, t.correct, NAN)
        else:
            out[r, cols] = t.think_tokens
    return out


@dataclass(frozen=True)
class PointStats:
    """One point pooled over its sampling seeds: accuracy and mean thinking length, and the paired changes
    from the baselines of the same seeds."""
    runs: int                       # task files pooled (one per sampling seed)
    n: int                          # responses
    accuracy: Interval
    think_tokens: Interval
    delta_accuracy: Interval
    delta_think: Interval


def point_stats(tasks: Sequence[SweepTask], baselines: Sequence[SweepTask | None] | None = None) -> PointStats:
    """PointStats of `tasks` (one per seed) against `baselines` (the same seeds'; None: no deltas)."""
    everything = list(tasks) + [b for b in (baselines or []) if b is not None]
    index = _prompt_index(everything)
    acc, think = _matrix(tasks, index, "accuracy"), _matrix(tasks, index, "think_tokens")
    if baselines is None:
        d_acc = d_think = Interval()
    else:
        d_acc = bootstrap_mean(acc - _matrix(baselines, index, "accuracy"))
        d_think = bootstrap_mean(think - _matrix(baselines, index, "think_tokens"))
    return PointStats(runs=len(tasks), n=int(np.isfinite(think).sum()), accuracy=bootstrap_mean(acc), think_tokens=bootstrap_mean(think),
                      delta_accuracy=d_acc, delta_think=d_think)


# ---- all-layer steering (α) ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AlphaRow:
    """One α of one series (dataset, vector, hook), pooled over sampling seeds; the baseline is α = 0 with
    vector "" (and no deltas)."""
    dataset: str
    vector: str
    hook: str
    alpha: float
    stats: PointStats

    @property
    def baseline(self) -> bool:
        return self.vector == ""


def alpha_rows(sweep: Sweep) -> list[AlphaRow]:
    """Per dataset: its baseline, then per (vector, hook) series each α in ascending order (random controls
    left out)."""
    rows: list[AlphaRow] = []
    for ds in sweep.datasets():
        base = sweep.select("baseline", ds)
        if base:
            rows.append(AlphaRow(ds, "", "", 0.0, point_stats([sweep.tasks[i] for i in base])))
        groups: dict[tuple[str, str, float], list[int]] = {}
        for i in sweep.select("vector", ds):
            p = sweep.points[i]
            groups.setdefault((p.vector, p.hook, p.coef), []).append(i)
        for (vector, hook, coef), idx in sorted(groups.items()):
            stats = point_stats([sweep.tasks[i] for i in idx], [sweep.baseline_of(i) for i in idx])
            rows.append(AlphaRow(ds, vector, hook, coef, stats))
    return rows


def alpha_spearman(rows: Sequence[AlphaRow]) -> dict[tuple[str, str, str], float]:
    """Per series (dataset, vector, hook): Spearman's correlation between α and mean thinking length over its
    grid, the baseline counted as α = 0 when the series has no vector point there."""
    out: dict[tuple[str, str, str], float] = {}
    for series in dict.fromkeys((r.dataset, r.vector, r.hook) for r in rows if not r.baseline):
        pts = [(r.alpha, r.stats.think_tokens.value) for r in rows if (r.dataset, r.vector, r.hook) == series]
        if not any(a == 0 for a, _ in pts):
            pts += [(0.0, r.stats.think_tokens.value) for r in rows if r.baseline and r.dataset == series[0]]
        out[series] = spearman([a for a, _ in pts], [v for _, v in pts])
    return out


# ---- layer-wise steering -----------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerRow:
    """One layer at one α (pooled over sampling seeds), with the paired changes from the baseline."""
    dataset: str
    vector: str
    layer: int
    alpha: float
    stats: PointStats


def layer_rows(sweep: Sweep) -> list[LayerRow]:
    """Per dataset and vector, each single-layer vector point's (layer, α) by layer, then α descending; points
    steering several layers are left out."""
    groups: dict[tuple[str, str, int, float], list[int]] = {}
    for i in sweep.select("vector"):
        p = sweep.points[i]
        if len(p.layers) == 1:
            groups.setdefault((p.dataset, p.vector, p.layers[0], p.coef), []).append(i)
    order = sorted(groups, key=lambda g: (sweep.datasets().index(g[0]), g[1], g[2], -g[3]))
    return [LayerRow(*g, point_stats([sweep.tasks[i] for i in groups[g]], [sweep.baseline_of(i) for i in groups[g]])) for g in order]


# ---- evaluation of the original and the edited model (§C.6) --------------------------------------------

def _scored(t: SweepTask) -> tuple[np.ndarray, np.ndarray]:
    """(think_tokens, correct) of a run's responses with a reference answer, in prompt order."""
    keep = t.correct >= 0
    return t.think_tokens[keep].astype(np.float64), t.correct[keep].astype(np.float64)


def shortest_accuracy(think: npt.ArrayLike, correct: npt.ArrayLike, share: float) -> float:
    """Accuracy on the floor(share * n) shortest of one run's n responses (sorted by thinking length, ties in
    prompt order); NaN when that is none."""
    think, correct = np.asarray(think), np.asarray(correct, dtype=np.float64)
    k = int(math.floor(share * len(think) + 1e-9))
    if k < 1:
        return NAN
    return float(correct[np.argsort(think, kind="stable")[:k]].mean())


@dataclass(frozen=True)
class EvalRow:
    """One model on one dataset over its runs (sampling seeds)."""
    model: str                      # original | edited
    dataset: str
    runs: int
    n: int                          # scored responses over all runs
    accuracy: float                 # mean over runs
    accuracy_std: float             # sample std over runs (NaN with one run)
    shortest: tuple[float, ...]     # per SHORTEST: accuracy on that share of the shortest responses, mean over runs
    think_tokens: float             # mean thinking length of the scored responses


def _eval_row(model: str, dataset: str, tasks: Sequence[SweepTask]) -> EvalRow:
    acc = np.array([t.accuracy() for t in tasks])
    acc = acc[np.isfinite(acc)]
    scored = [_scored(t) for t in tasks]
    shortest = []
    for share in SHORTEST:
        per_run = [shortest_accuracy(th, c, share) for th, c in scored]
        per_run = [x for x in per_run if math.isfinite(x)]
        shortest.append(float(np.mean(per_run)) if per_run else NAN)
    lengths = np.concatenate([th for th, _ in scored]) if scored else np.zeros(0)
    return EvalRow(model=model, dataset=dataset, runs=len(tasks), n=int(lengths.size), accuracy=float(acc.mean()) if acc.size else NAN,
                   accuracy_std=float(acc.std(ddof=1)) if acc.size > 1 else NAN, shortest=tuple(shortest),
                   think_tokens=float(lengths.mean()) if lengths.size else NAN)


def _runs(sweep: Sweep | None, dataset: str) -> list[SweepTask]:
    return [] if sweep is None else [sweep.tasks[i] for i in sweep.select("baseline", dataset)]


def eval_datasets(sweeps: Sequence[Sweep | None]) -> list[str]:
    """The datasets of the evaluation sweeps, in order, each once."""
    return list(dict.fromkeys(d for s in sweeps if s is not None for d in s.datasets()))


def eval_rows(original: Sweep | None, edited: Sweep | None) -> list[EvalRow]:
    """Per dataset, the original then the edited model (each where its sweep has runs of the dataset)."""
    rows = []
    for ds in eval_datasets([original, edited]):
        for name, sweep in (("original", original), ("edited", edited)):
            runs = _runs(sweep, ds)
            if runs:
                rows.append(_eval_row(name, ds, runs))
    return rows


def threshold_curves(original: Sweep | None, edited: Sweep | None, dataset: str,
                     n: int = N_THRESHOLDS) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(thresholds [n] evenly spaced from the shortest to the longest scored response of both models' runs,
    {model: accuracy [n] of its pooled responses with think_tokens <= threshold, NaN where none}); models
    without runs of `dataset` are left out."""
    pooled = {}
    for name, sweep in (("original", original), ("edited", edited)):
        runs = [_scored(t) for t in _runs(sweep, dataset)]
        if runs:
            pooled[name] = (np.concatenate([th for th, _ in runs]), np.concatenate([c for _, c in runs]))
    lengths = np.concatenate([th for th, _ in pooled.values()]) if pooled else np.zeros(0)
    if not lengths.size:
        return np.zeros(0), {}
    thresholds = np.linspace(float(lengths.min()), float(lengths.max()), n)
    curves = {}
    for name, (th, c) in pooled.items():
        below = th[None, :] <= thresholds[:, None]
        counts = below.sum(axis=1)
        curves[name] = np.where(counts > 0, (below * c[None, :]).sum(axis=1) / np.maximum(counts, 1), NAN)
    return thresholds, curves
