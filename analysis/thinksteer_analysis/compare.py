"""`thinksteer-analysis compare RUN_A RUN_B [--labels A,B] [--out DIR]`: base against thinking model, the steering
paper's §A.8 comparison (docs/algorithms.md §A.8). Each run directory holds annotate/spans.h5 (beside
generate/generations.jsonl) for the same prompts, each model prompted in its own format and annotated by the same
annotator. Per model: the mean number of spans per response and each label's share, §A.8's fraction: per response,
the label's spans / all its spans (a response without spans contributes 0 to every label), averaged over responses;
each with a 95% percentile bootstrap interval over responses (BOOTSTRAP resamples, seed SEED). Then B − A of each,
with a paired bootstrap interval when both runs answered the same prompt ids (paired by id), else an unpaired one
(A and B resampled independently). Prints the §A.8 table (a row per model, named by --labels, default the run
directories' names; columns spans, then each label in %) and draws compare_behaviours.png into DIR (default
RUN_A/figures): grouped bars with the intervals as error bars, a star over the labels whose B − A interval excludes 0.

    from thinksteer_analysis.compare import behaviours, compare
    c = compare(behaviours(load_spans(run_a), "base"), behaviours(load_spans(run_b), "thinking"))
    c.a_stats[0] (spans per response), c.a_stats[1 + k] (label k's share), c.diff[1 + k], c.paired
"""
from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .figures import DPI, PANEL_H, _color, _plt, _save
from .generations import GENERATIONS_JSONL
from .report import run_directory
from .schema import PathLike, SchemaError, jsonl_rows
from .spans import Spans, load_spans
from .thinkedit_sweeps import Interval
from .thinkedit_table import _markdown

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BOOTSTRAP = 2000      # resamples
CI = 0.95
SEED = 0              # the resampling's seed
FIGURE = "compare_behaviours"


@dataclass
class Behaviours:
    """One run's responses (the traces of its spans.h5): the span count and each label's share per response."""
    name: str
    spans: Spans
    counts: npt.NDArray[np.int64]        # [N, K] spans of each label
    shares: npt.NDArray[np.float64]      # [N, K] counts / the response's spans (0 without spans)

    @property
    def ids(self) -> list[str]:
        return self.spans.trace_id.tolist()

    @property
    def n_spans(self) -> npt.NDArray[np.float64]:
        return self.counts.sum(axis=1).astype(np.float64)

    def columns(self) -> npt.NDArray[np.float64]:
        """[N, 1 + K]: spans per response, then each label's share."""
        return np.column_stack([self.n_spans, self.shares])


def behaviours(spans: Spans, name: str) -> Behaviours:
    """Counts and §A.8 shares of every trace of `spans` (traces without spans: all shares 0)."""
    counts = np.zeros((len(spans.trace_id), len(spans.labels)), dtype=np.int64)
    np.add.at(counts, (spans.trace, spans.label), 1)
    total = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)
    return Behaviours(name=name, spans=spans, counts=counts, shares=shares)


def _intervals(values: np.ndarray, stats: np.ndarray, ci: float) -> list[Interval]:
    lo, hi = np.percentile(stats, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    return [Interval(float(v), float(a), float(b)) for v, a, b in zip(values, lo, hi)]


def bootstrap_columns(x: npt.ArrayLike, resamples: int = BOOTSTRAP, ci: float = CI, seed: int = SEED) -> list[Interval]:
    """The mean of each column of x [N, M] with its percentile bootstrap interval over the rows (the same resamples
    for every column); NaN intervals without rows."""
    x = np.asarray(x, dtype=np.float64)
    if not len(x):
        return [Interval() for _ in range(x.shape[1])]
    idx = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
    return _intervals(x.mean(axis=0), x[idx].mean(axis=1), ci)


def unpaired_difference(xa: npt.ArrayLike, xb: npt.ArrayLike, resamples: int = BOOTSTRAP, ci: float = CI, seed: int = SEED) -> list[Interval]:
    """mean(xb) − mean(xa) per column, A's and B's rows resampled independently."""
    xa, xb = np.asarray(xa, dtype=np.float64), np.asarray(xb, dtype=np.float64)
    if not len(xa) or not len(xb):
        return [Interval() for _ in range(xa.shape[1])]
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(xa), size=(resamples, len(xa)))
    ib = rng.integers(0, len(xb), size=(resamples, len(xb)))
    return _intervals(xb.mean(axis=0) - xa.mean(axis=0), xb[ib].mean(axis=1) - xa[ia].mean(axis=1), ci)


@dataclass
class Comparison:
    """Two runs' behaviours: per column (spans, then each label's share) A's and B's estimate and B − A."""
    a: Behaviours
    b: Behaviours
    labels: list[str]
    a_stats: list[Interval]
    b_stats: list[Interval]
    diff: list[Interval]
    paired: bool                         # B − A paired by prompt id (both runs have the same ids)


def compare(a: Behaviours, b: Behaviours, resamples: int = BOOTSTRAP, seed: int = SEED) -> Comparison:
    """The §A.8 numbers of both runs and their difference; SchemaError naming B's /labels when the label sets differ."""
    if sorted(a.spans.labels) != sorted(b.spans.labels):
        raise SchemaError(b.spans.path, "/labels", f"{', '.join(b.spans.labels)}: not the labels of {a.spans.path} "
                          f"({', '.join(a.spans.labels)}); annotate both runs with the same annotator")
    order = [b.spans.labels.index(label) for label in a.spans.labels]
    xa, xb = a.columns(), b.columns()[:, [0] + [1 + k for k in order]]
    paired = sorted(a.ids) == sorted(b.ids)
    if paired:
        row_of = {pid: i for i, pid in enumerate(b.ids)}
        diff = bootstrap_columns(xb[[row_of[pid] for pid in a.ids]] - xa, resamples, seed=seed)
    else:
        diff = unpaired_difference(xa, xb, resamples, seed=seed)
    return Comparison(a=a, b=b, labels=list(a.spans.labels), a_stats=bootstrap_columns(xa, resamples, seed=seed),
                      b_stats=bootstrap_columns(xb, resamples, seed=seed + 1), diff=diff, paired=paired)


# ---- the table ---------------------------------------------------------------------------------------

def _cell(iv: Interval, scale: float = 1.0, sign: bool = False) -> str:
    fmt = "{:+.1f}" if sign else "{:.1f}"
    if not np.isfinite(iv.value):
        return "n/a"
    return fmt.format(scale * iv.value) + (f" [{fmt.format(scale * iv.lo)}, {fmt.format(scale * iv.hi)}]" if np.isfinite(iv.lo) else "")


def _row(name: str, stats: Sequence[Interval], sign: bool = False) -> list[str]:
    return [name, _cell(stats[0], 1.0, sign), *[_cell(iv, 100.0, sign) for iv in stats[1:]]]


def comparison_table(c: Comparison) -> str:
    """The §A.8 table: a row per model and the B − A row, then what was compared."""
    how = (f"paired by prompt id over {len(c.a.ids)} prompts" if c.paired else
           f"unpaired: the runs' prompt ids differ ({len(set(c.a.ids) & set(c.b.ids))} in common)")
    header = ("model", "spans [lo, hi]", *[f"{label} % [lo, hi]" for label in c.labels])
    lines = [f"# Behaviours: {c.a.name} against {c.b.name} (§A.8)", ""]
    for x in (c.a, c.b):
        s = x.spans
        lines.append(f"{x.name}: {len(x.ids)} responses, {int(x.n_spans.sum())} spans ({s.path}; annotator {s.annotator or '?'}, part {s.part or '?'})")
    lines += ["", "spans: mean spans per response; label %: per response its spans / all spans (0 without spans), averaged over responses; "
              f"intervals: {100 * CI:.0f}% percentile bootstrap over responses ({BOOTSTRAP} resamples, seed {SEED}); "
              f"{c.b.name} − {c.a.name}: {how}", "",
              *_markdown(header, ("---", *["---:"] * (len(header) - 1)),
                         [_row(c.a.name, c.a_stats), _row(c.b.name, c.b_stats), _row(f"{c.b.name} − {c.a.name}", c.diff, sign=True)])]
    return "\n".join(lines)


def _notes(c: Comparison, log: Callable[[str], Any]) -> None:
    """Notes on what differs between the runs beyond the models: annotator, annotated part, unannotated responses."""
    sa, sb = c.a.spans, c.b.spans
    if sa.annotator != sb.annotator:
        log(f"note: the runs were annotated by different annotators ({sa.annotator or '?'} and {sb.annotator or '?'})")
    if sa.part != sb.part:
        log(f"note: the runs annotated different parts of the responses ({sa.part or '?'} and {sb.part or '?'})")
    for x in (c.a, c.b):
        path = GENERATIONS_JSONL.path(x.spans.path.parent.parent)
        if path.exists():
            ids = {str(row.get("id", "")) for _, row in jsonl_rows(path)}
            missing = len(ids - set(x.ids))
            if missing:
                log(f"note: {missing} responses of {path} have no trace in {x.spans.path} (not counted)")


# ---- the figure --------------------------------------------------------------------------------------

def compare_behaviours(c: Comparison, title: str = "") -> Figure:
    """Spans per response (left) and each label's share (right) as bars per model with 95% intervals; a star over
    the labels (and the spans) whose B − A interval excludes 0."""
    plt = _plt()
    fig, (ax_n, ax_s) = plt.subplots(1, 2, figsize=(3 + 1.1 * len(c.labels) + 2, PANEL_H + 1.4), dpi=DPI, layout="constrained",
                                     gridspec_kw={"width_ratios": [1, max(2, len(c.labels))]})
    fig.suptitle((title or f"Behaviours: {c.a.name} against {c.b.name}") + f"; error bars: {100 * CI:.0f}% bootstrap over responses", fontsize=10)
    width = 0.38
    panels = ((ax_n, [0], 1.0), (ax_s, list(range(1, 1 + len(c.labels))), 100.0))
    for j, (name, stats) in enumerate(((c.a.name, c.a_stats), (c.b.name, c.b_stats))):
        for ax, cols, scale in panels:
            cells = [stats[k] for k in cols]
            v = np.array([scale * iv.value for iv in cells])
            err = np.array([[scale * (iv.value - iv.lo) for iv in cells], [scale * (iv.hi - iv.value) for iv in cells]])
            ax.bar(np.arange(len(cols)) + (j - 0.5) * width, v, width, color=_color(j), yerr=np.maximum(np.nan_to_num(err), 0), capsize=3,
                   error_kw={"elinewidth": 1}, label=name)
    for ax, cols, scale in panels:
        for x, k in enumerate(cols):
            iv = c.diff[k]
            if np.isfinite(iv.lo) and (iv.lo > 0 or iv.hi < 0):
                y = scale * float(np.nanmax([c.a_stats[k].hi, c.b_stats[k].hi]))
                ax.annotate("*", (x, y), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=12)
    for ax, cols, scale in panels:          # room above the bars for the stars
        tops = [scale * x.hi for stats in (c.a_stats, c.b_stats) for x in (stats[k] for k in cols) if np.isfinite(x.hi)]
        if tops and max(tops) > 0:
            ax.set_ylim(0, 1.12 * max(tops))
    ax_n.set_xticks([0], ["spans"])
    ax_n.set_ylabel("spans per response")
    ax_s.set_xticks(range(len(c.labels)), c.labels, rotation=20, ha="right", fontsize=8)
    ax_s.set_ylabel("share of spans (%)")
    pairing = "paired by prompt" if c.paired else "unpaired"
    ax_s.set_title(f"*: {c.b.name} − {c.a.name} interval excludes 0 ({pairing})", fontsize=8)
    for ax in (ax_n, ax_s):
        ax.grid(axis="y", alpha=0.3)
    ax_s.legend(fontsize=8)
    return fig


def main(run_a: PathLike, run_b: PathLike, names: Sequence[str] | None = None, out: PathLike | None = None, fmt: str = "png",
         log: Callable[[str], Any] = print) -> int:
    """Prints the table and writes compare_behaviours into OUT (default RUN_A/figures); returns 0."""
    a_dir, b_dir = run_directory(run_a), run_directory(run_b)
    name_a, name_b = names if names else (a_dir.resolve().name, b_dir.resolve().name)
    c = compare(behaviours(load_spans(a_dir), name_a), behaviours(load_spans(b_dir), name_b))
    _notes(c, log)
    log(comparison_table(c))
    out_dir = pathlib.Path(out) if out is not None else a_dir / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[pathlib.Path] = []
    _save(compare_behaviours(c), out_dir, FIGURE, fmt, written)
    log("")
    for path in written:
        log(f"wrote {path}")
    return 0
