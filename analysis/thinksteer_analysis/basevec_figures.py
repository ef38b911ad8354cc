"""The base-vector sweep's figures (docs/algorithms.md §B.8, §B.10), drawn by `thinksteer-analysis basevec
RUN_DIR` (basevec_table) into RUN_DIR/figures from every finished task file (<run>/basevec/tasks/<key>.h5):

  basevec_curves   correction tasks: train loss and holdout top-k KL against epoch (two panels, a line per
                   seed, the kept evaluation starred); linear tasks: a panel per task (seed), the train loss
                   (log10 CE) of each phase against epoch, a line per phase (bias dashed black, then idx<c>)
  basevec_kl       a row per task with holdout metrics: bar groups "all" then per category, bars unsteered /
                   steered / random controls. Correction: top-k KL (metrics.holdout.{unsteered,steered}.kl,
                   mean of random_kl with a min..max error bar; per category kl_per_category, no random);
                   linear: log10 CE (metrics.holdout.{unsteered,steered,random}, per category per_category).
                   A null value (no data) draws no bar and an "n/a" mark.
Sizes are fixed (no tight bounding box); DPI and panel sizes as figures.py's.
"""
from __future__ import annotations

import math
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .basevec import (BASEVEC_SELECTED, BASEVEC_SUMMARY, BasevecSelection, BasevecSummary, BasevecTask, finished_basevec_tasks,
                      read_basevec_selected, read_basevec_summary, read_basevec_task)
from .figures import DPI, PANEL_H, PANEL_W, _color, _panels, _plt, _save
from .schema import PathLike

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURES = ("basevec_curves", "basevec_kl")
BARS = (("unsteered", "0.6"), ("steered", "tab:blue"), ("random", "tab:orange"))   # (bar, colour) in each group
BAR_W = 0.26
GROUP_W = 0.5            # inches per bar group in basevec_kl (at least PANEL_W * 2 wide)
VALUE_NAME = {"correction": "holdout top-k KL", "linear": "holdout log10 CE"}


@dataclass
class BasevecInputs:
    """What the run has of the base-vector sweep: the finished task files (by method, seed, key), the
    summary and selected.json (None when `reduce` has not run)."""
    run_dir: pathlib.Path
    tasks: list[BasevecTask] = field(default_factory=list)
    summary: BasevecSummary | None = None
    selected: dict[str, BasevecSelection] | None = None

    @property
    def empty(self) -> bool:
        return not self.tasks and self.summary is None


def load_basevec_inputs(run_dir: PathLike, log: Callable[[str], Any] = print) -> BasevecInputs:
    """Reads (and checks) every finished <run_dir>/basevec/tasks/<key>.h5, summary.h5 and selected.json when
    present; a partial summary is noted through `log`."""
    run = pathlib.Path(run_dir)
    tasks = [read_basevec_task(p) for p in finished_basevec_tasks(run)]
    tasks.sort(key=lambda t: (t.method, t.seed, t.key))
    inputs = BasevecInputs(run_dir=run, tasks=tasks)
    sp = BASEVEC_SUMMARY.path(run)
    if sp.exists():
        inputs.summary = read_basevec_summary(sp)
        if inputs.summary.partial:
            log(f"note: {sp} is partial (some tasks of the plan had not finished when `reduce` ran)")
    jp = BASEVEC_SELECTED.path(run)
    if jp.exists():
        inputs.selected = read_basevec_selected(jp)
    return inputs


def draw_basevec(inputs: BasevecInputs, out: pathlib.Path, fmt: str, written: list[pathlib.Path]) -> None:
    """Writes basevec_curves and basevec_kl into `out` (created if needed), appending the paths; nothing
    without a task file."""
    if not inputs.tasks:
        return
    out.mkdir(parents=True, exist_ok=True)
    name = inputs.run_dir.name
    _save(basevec_curves(inputs.tasks, f"Base-vector training curves: {name}"), out, "basevec_curves", fmt, written)
    _save(basevec_kl(inputs.tasks, f"Base-vector holdout: unsteered / steered / random controls: {name}"), out, "basevec_kl", fmt, written)


# ---- training curves ------------------------------------------------------------------------------

def _seed_label(t: BasevecTask, tasks: Sequence[BasevecTask]) -> str:
    """"seed S", with the key when another task of the method has the same seed."""
    twins = [u for u in tasks if u.method == t.method and u.seed == t.seed]
    return f"seed {t.seed}" + (f" ({t.key[:8]})" if len(twins) > 1 else "")


def _epoch_axis(ax: Axes, ylabel: str, title: str) -> None:
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def _correction_panels(train_ax: Axes, hold_ax: Axes, corr: Sequence[BasevecTask]) -> None:
    losses = sorted({str(t.metrics.get("loss", "")) for t in corr} - {""})
    for i, t in enumerate(corr):
        style = {"color": _color(i), "marker": "o", "markersize": 3, "linewidth": 1.2}
        label = _seed_label(t, corr)
        train_ax.plot(t.curve_epoch, t.curve_train, label=label, **style)
        hold_ax.plot(t.curve_epoch, t.curve_holdout, label=label, **style)
        best = int(t.metric("best_evaluation")) - 1 if math.isfinite(t.metric("best_evaluation")) else -1   # 1-based evaluation count
        if 0 <= best < len(t.curve_epoch) and math.isfinite(t.curve_holdout[best]):
            hold_ax.plot([t.curve_epoch[best]], [t.curve_holdout[best]], linestyle="none", marker="*", markersize=12, color=_color(i),
                         markeredgecolor="k", zorder=4, label="kept state" if i == 0 else None)
    _epoch_axis(train_ax, f"train loss ({'/'.join(losses) or '?'})", "correction: training loss (mean since the last point)")
    _epoch_axis(hold_ax, "holdout top-k KL", "correction: holdout KL at each evaluation")
    for ax in (train_ax, hold_ax):
        ax.legend(fontsize=7)


def _linear_panel(ax: Axes, t: BasevecTask, tasks: Sequence[BasevecTask]) -> None:
    phases = sorted(set(t.curve_phase.tolist()))
    for phase in phases:
        rows = np.flatnonzero(t.curve_phase == phase)
        if phase < 0:
            style: dict[str, Any] = {"color": "k", "linestyle": "--"}
        else:
            style = {"color": _color(phase), "linestyle": "-"}
        ax.plot(t.curve_epoch[rows], t.curve_train[rows], marker="o", markersize=3, linewidth=1.2, label=t.phase_name(phase), **style)
    skipped = [str(s) for s in t.metrics.get("skipped", []) or []]
    note = f"\nskipped (no data): {', '.join(skipped)}" if skipped else ""
    _epoch_axis(ax, "train loss (log10 CE)", f"linear {_seed_label(t, tasks)}: loss per phase{note}")
    if phases:
        ax.legend(fontsize=7, ncol=2 if len(phases) > 6 else 1)
    else:
        ax.text(0.5, 0.5, "no curve points", ha="center", va="center", transform=ax.transAxes)


def basevec_curves(tasks: Sequence[BasevecTask], title: str = "") -> Figure:
    """Correction tasks: train loss and holdout KL against epoch, a line per seed (two panels); linear tasks:
    a panel each, train loss against epoch, a line per phase."""
    from matplotlib.ticker import MaxNLocator
    corr = [t for t in tasks if t.method == "correction"]
    lin = [t for t in tasks if t.method == "linear"]
    n = (2 if corr else 0) + len(lin)
    fig, axes = _panels(max(n, 1), title or "Base-vector training curves")
    if not n:
        axes[0].text(0.5, 0.5, "no finished basevec task", ha="center", va="center", transform=axes[0].transAxes)
        return fig
    if corr:
        _correction_panels(axes[0], axes[1], corr)
    for ax, t in zip(axes[2 if corr else 0:], lin):
        _linear_panel(ax, t, lin)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


# ---- holdout bars ---------------------------------------------------------------------------------

def _groups(t: BasevecTask) -> list[tuple[str, dict[str, float], tuple[float, float] | None]]:
    """(group name, {bar: value}, random's (min, max) or None) for "all" and each category."""
    h = t.holdout()
    groups = [("all", {"unsteered": h.unsteered, "steered": h.steered, "random": h.random_mean},
               (h.random_min, h.random_max) if t.method == "correction" else None)]
    for c, name in enumerate(t.categories):
        def at(a: np.ndarray) -> float:
            return float(a[c]) if c < len(a) else math.nan
        bars = {"unsteered": at(h.unsteered_per_category), "steered": at(h.steered_per_category)}
        if t.method == "linear":
            bars["random"] = at(h.random_per_category)
        groups.append((name, bars, None))
    return groups


def _bar_panel(ax: Axes, t: BasevecTask, legend: bool) -> None:
    groups = _groups(t)
    x = np.arange(len(groups), dtype=np.float64)
    n_random = len([v for v in (t.metrics.get("holdout") or {}).get("random_kl", []) or [] if v is not None])
    top = max([v for _, bars, _ in groups for v in bars.values() if math.isfinite(v)] + [0.0])
    for j, (bar, colour) in enumerate(BARS):
        label = bar if bar != "random" or t.method != "correction" else f"random (mean of {n_random}, min..max)"
        xs, ys = [], []
        for g, (_, bars, _) in enumerate(groups):
            v = bars.get(bar, math.nan)
            pos = x[g] + (j - 1) * BAR_W
            if math.isfinite(v):
                xs.append(pos)
                ys.append(v)
            elif bar in bars:
                ax.text(pos, 0.01 * top, "n/a", rotation=90, ha="center", va="bottom", fontsize=6, color="0.4")
        ax.bar(xs, ys, width=BAR_W, color=colour, label=label if legend else None)
    name, bars, span = groups[0]
    if span is not None and all(math.isfinite(v) for v in (*span, bars["random"])):
        ax.errorbar([x[0] + BAR_W], [bars["random"]], yerr=[[bars["random"] - span[0]], [span[1] - bars["random"]]], fmt="none", ecolor="k",
                    capsize=3, linewidth=1)
    ax.set_xticks(x, [g[0] for g in groups], rotation=45 if len(groups) > 8 else 0, ha="right" if len(groups) > 8 else "center", fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    h = t.holdout()
    extra = f", steered top-1 share {h.top1:.3f}" if t.method == "correction" and math.isfinite(h.top1) else ""
    ax.set_title(f"{t.method} seed {t.seed} ({t.key}){extra}", fontsize=9)
    ax.set_ylabel(VALUE_NAME.get(t.method, "holdout"))
    ax.grid(alpha=0.3, axis="y")
    if legend:
        ax.legend(fontsize=7)


def basevec_kl(tasks: Sequence[BasevecTask], title: str = "") -> Figure:
    """A row per task with a holdout split: bar groups "all" and per category, unsteered / steered / random."""
    plt = _plt()
    shown = [t for t in tasks if isinstance(t.metrics.get("holdout"), dict)]
    n_groups = max([len(t.categories) + 1 for t in shown] + [1])
    width = max(2 * PANEL_W, GROUP_W * n_groups + 1.5)
    fig, axes = plt.subplots(max(len(shown), 1), 1, figsize=(width, PANEL_H * max(len(shown), 1) + 0.4), dpi=DPI, squeeze=False,
                             layout="constrained")
    fig.suptitle(title or "Base-vector holdout", fontsize=10)
    if not shown:
        axes[0][0].text(0.5, 0.5, "no task with holdout metrics", ha="center", va="center", transform=axes[0][0].transAxes)
        return fig
    for i, t in enumerate(shown):
        # a legend in each panel whose bars differ from the panel above (correction and linear bars differ)
        _bar_panel(axes[i][0], t, legend=i == 0 or shown[i - 1].method != t.method)
    return fig

