"""ThinkEdit's figures (docs/algorithms.md §C; the reference's length histograms, accuracy / length against α,
head heatmap and accuracy-threshold curves), drawn by `thinksteer-analysis thinkedit RUN_DIR` (thinkedit_table)
and `figures RUN_DIR` (when RUN_DIR/thinkedit exists) into RUN_DIR/figures:

  thinkedit_lengths    thinkedit/lengths.jsonl: histogram of the probe traces' thinking lengths (unclosed traces
                       grey), the long and short thresholds of thresholds.json marked with the sets' sizes
  thinkedit_alpha      alpha/sweep: accuracy and mean thinking length against α (two panels), a line per
                       dataset and vector (the baseline at α = 0), error bars the bootstrap interval, the
                       Spearman correlation of α and length in the legend
  thinkedit_layerwise  layerwise/sweep: the change in thinking length and in accuracy from the baseline
                       against the steered layer (two panels), a line per α, error bars the paired interval
  thinkedit_heads      thinkedit/heads.h5: the [L, H] head scores as a heatmap (layer up, head across, diverging
                       about 0), the heads of edit.json (when the edit has run) boxed
  thinkedit_eval       eval/{original,edited}/sweep: accuracy of the responses at most a thinking-length
                       threshold long against the threshold, original and edited, a panel per dataset
A part the run does not have is skipped with a one-line note. Sizes are fixed (no tight bounding box); DPI
and panel sizes as figures.py's.
"""
from __future__ import annotations

import math
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .figures import DPI, PANEL_H, PANEL_W, _color, _panels, _plt, _save
from .schema import PathLike, done_marker
from .thinkedit import (THINKEDIT_EDIT, THINKEDIT_HEADS, THINKEDIT_LENGTHS, THINKEDIT_THRESHOLDS, Edit, Heads, Lengths, Thresholds, check_split,
                        read_edit, read_heads, read_lengths, read_thresholds, stale_scores)
from .thinkedit_sweeps import (CI, SWEEP_DIRS, AlphaRow, EvalRow, Interval, LayerRow, Sweep, alpha_rows, alpha_spearman, eval_datasets, eval_rows,
                               layer_rows, load_sweep, threshold_curves)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURES = ("thinkedit_lengths", "thinkedit_alpha", "thinkedit_layerwise", "thinkedit_heads", "thinkedit_eval")
WIDE = (2 * PANEL_W + 2, PANEL_H + 0.8)      # two panels and a legend: 10 x 4 in
BINS = 40
MODEL_COLORS = {"original": "0.45", "edited": "tab:red"}


@dataclass
class ThinkeditInputs:
    """What the run has of ThinkEdit: the thinkedit/ files (None where absent), the sweeps present (by name:
    alpha, layerwise, original, edited) and the tables' rows computed from them."""
    run_dir: pathlib.Path
    lengths: Lengths | None = None
    thresholds: Thresholds | None = None
    heads: Heads | None = None
    edit: Edit | None = None
    sweeps: dict[str, Sweep] = field(default_factory=dict)
    alpha: list[AlphaRow] = field(default_factory=list)
    spearman: dict[tuple[str, str, str], float] = field(default_factory=dict)
    layers: list[LayerRow] = field(default_factory=list)
    evals: list[EvalRow] = field(default_factory=list)
    curves: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = field(default_factory=dict)   # dataset -> threshold_curves

    @property
    def empty(self) -> bool:
        return self.lengths is None and self.thresholds is None and self.heads is None and self.edit is None and not self.sweeps


def _committed(path: pathlib.Path, what: str, log: Callable[[str], Any]) -> bool:
    """`path` exists with its .done marker; a missing one is noted (what: the part skipped)."""
    if not path.exists():
        log(f"note: no {path}: {what}")
    elif not done_marker(path).exists():
        log(f"note: {path} not finished ({done_marker(path).name} absent): {what}")
    else:
        return True
    return False


def _read_thinkedit_files(inputs: ThinkeditInputs, log: Callable[[str], Any]) -> None:
    run = inputs.run_dir
    lp, tp, hp, ep = (a.path(run) for a in (THINKEDIT_LENGTHS, THINKEDIT_THRESHOLDS, THINKEDIT_HEADS, THINKEDIT_EDIT))
    inputs.lengths = read_lengths(lp) if lp.exists() else None
    inputs.thresholds = read_thresholds(tp) if tp.exists() else None
    if inputs.lengths is None:
        log(f"note: no {lp}: thinkedit_lengths skipped")
    elif inputs.thresholds is None:
        log(f"note: no {tp}: thinkedit_lengths drawn without the thresholds")
    else:
        check_split(inputs.lengths, inputs.thresholds)
    inputs.heads = read_heads(hp) if _committed(hp, "thinkedit_heads skipped", log) else None
    inputs.edit = read_edit(ep, inputs.heads) if _committed(ep, "no heads marked as edited", log) else None
    if inputs.edit is not None and inputs.heads is not None:
        stale = stale_scores(inputs.edit, inputs.heads)
        if stale:
            log(f"note: {ep}: {len(stale)} of its scores are not {hp.name}'s (the heads were rescored after the edit)")


def load_thinkedit_inputs(run_dir: PathLike, log: Callable[[str], Any] = print) -> ThinkeditInputs:
    """Reads (and checks) what <run_dir> has of thinkedit/ and of the alpha, layerwise and eval sweeps, and
    computes the tables' rows; each missing part, and each sweep with unfinished tasks, is noted through `log`."""
    inputs = ThinkeditInputs(run_dir=pathlib.Path(run_dir))
    _read_thinkedit_files(inputs, log)
    for name, rel in SWEEP_DIRS.items():
        d = inputs.run_dir / rel
        s = load_sweep(d, name)
        if s is None:
            log(f"note: no {d / 'sweep' / 'manifest.jsonl'}: the {name} sweep skipped")
            continue
        if len(s.tasks) < s.planned:
            log(f"note: {d / 'sweep'}: {len(s.tasks)} of {s.planned} tasks finished; the tables and figures show those")
        inputs.sweeps[name] = s
    if "alpha" in inputs.sweeps:
        inputs.alpha = alpha_rows(inputs.sweeps["alpha"])
        inputs.spearman = alpha_spearman(inputs.alpha)
    if "layerwise" in inputs.sweeps:
        inputs.layers = layer_rows(inputs.sweeps["layerwise"])
    original, edited = inputs.sweeps.get("original"), inputs.sweeps.get("edited")
    inputs.evals = eval_rows(original, edited)
    inputs.curves = {ds: threshold_curves(original, edited, ds) for ds in eval_datasets([original, edited])}
    return inputs


def draw_thinkedit(inputs: ThinkeditInputs, out: pathlib.Path, fmt: str, written: list[pathlib.Path]) -> None:
    """Writes each figure the inputs allow into `out` (created if needed), appending the paths."""
    name = inputs.run_dir.name
    figs: list[tuple[str, Callable[[], Figure]]] = []
    if inputs.lengths is not None:
        figs.append(("thinkedit_lengths", lambda: thinkedit_lengths(inputs.lengths, inputs.thresholds, f"Probe traces' thinking lengths: {name}")))
    if any(not r.baseline for r in inputs.alpha):
        figs.append(("thinkedit_alpha", lambda: thinkedit_alpha(inputs.alpha, inputs.spearman, f"All-layer steering: {name}")))
    if inputs.layers:
        figs.append(("thinkedit_layerwise", lambda: thinkedit_layerwise(inputs.layers, f"Layer-wise steering: {name}")))
    if inputs.heads is not None:
        figs.append(("thinkedit_heads", lambda: thinkedit_heads(inputs.heads, inputs.edit, f"Short-reasoning head scores: {name}")))
    if inputs.curves:
        figs.append(("thinkedit_eval", lambda: thinkedit_eval(inputs.curves, inputs.evals, f"Accuracy against thinking length: {name}")))
    if figs:
        out.mkdir(parents=True, exist_ok=True)
    for fig_name, draw in figs:
        _save(draw(), out, fig_name, fmt, written)


# ---- the figures -------------------------------------------------------------------------------------

def _two_panels(title: str) -> tuple[Figure, Axes, Axes]:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=WIDE, dpi=DPI, squeeze=False, layout="constrained")
    fig.suptitle(title, fontsize=10)
    return fig, axes[0][0], axes[0][1]


def _errorbar(ax: Axes, xs: Sequence[float], cells: Sequence[Interval], scale: float, label: str, color: Any, marker: str = "o") -> None:
    """A line through the cells' values with their intervals as error bars (points without a value left out)."""
    pts = [(x, c) for x, c in zip(xs, cells) if math.isfinite(c.value)]
    if not pts:
        return
    ys = [scale * c.value for _, c in pts]
    lo = [scale * (c.value - c.lo) if math.isfinite(c.lo) else 0.0 for _, c in pts]
    hi = [scale * (c.hi - c.value) if math.isfinite(c.hi) else 0.0 for _, c in pts]
    ax.errorbar([x for x, _ in pts], ys, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], fmt="-" + marker, markersize=3.5, capsize=2,
                color=color, label=label, linewidth=1)


def thinkedit_lengths(lengths: Lengths, thresholds: Thresholds | None, title: str = "") -> Figure:
    """Histogram of the probe traces' thinking lengths (closed in colour, unclosed grey) with the thresholds."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(2 * PANEL_W, PANEL_H + 0.4), dpi=DPI, layout="constrained")
    t = lengths.think_tokens
    bins = np.linspace(0, max(int(t.max()), 1), BINS + 1)
    ax.hist([t[lengths.closed], t[~lengths.closed]], bins=bins, stacked=True, color=[_color(0), "0.7"],
            label=[f"closed ({int(lengths.closed.sum())})", f"not closed ({int((~lengths.closed).sum())})"])
    if thresholds is not None:
        ax.axvline(thresholds.long_above, color="tab:red", linestyle="--", linewidth=1.2,
                   label=f"long: > {thresholds.long_above:g} ({thresholds.n_long} traces)")
        ax.axvline(thresholds.short_below, color="tab:green", linestyle="--", linewidth=1.2,
                   label=f"short: < {thresholds.short_below:g} ({thresholds.n_short} traces)")
    from matplotlib.ticker import MaxNLocator
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("thinking tokens")
    ax.set_ylabel("traces")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    split = f"; split by {thresholds.split}" if thresholds is not None else ""
    ax.set_title((title or "Probe traces' thinking lengths") + f" (n = {len(lengths)}{split})", fontsize=10)
    return fig


def _series_label(key: tuple[str, ...], keys: Sequence[tuple[str, ...]], names: Sequence[str]) -> str:
    """The parts of a series key that vary across `keys` (all of them when none does)."""
    vary = [i for i in range(len(key)) if len({k[i] for k in keys}) > 1] or [1]
    return " ".join(f"{names[i]} {key[i]}" if names[i] else str(key[i]) for i in vary if str(key[i]))


def thinkedit_alpha(rows: Sequence[AlphaRow], spearman: dict[tuple[str, str, str], float], title: str = "") -> Figure:
    """Accuracy and mean thinking length against α, a line per (dataset, vector, hook), the baseline at α = 0."""
    fig, ax_acc, ax_len = _two_panels((title or "All-layer steering") + f"; error bars: {100 * CI:.0f}% bootstrap interval over prompts")
    keys = list(spearman)
    for j, key in enumerate(keys):
        pts = [r for r in rows if (r.dataset, r.vector, r.hook) == key]
        if not any(r.alpha == 0 for r in pts):
            pts += [r for r in rows if r.baseline and r.dataset == key[0]]
        pts.sort(key=lambda r: r.alpha)
        rho = spearman[key]
        label = _series_label(key, keys, ("", "", "")) + (f" (ρ = {rho:.2f})" if math.isfinite(rho) else "")
        _errorbar(ax_acc, [r.alpha for r in pts], [r.stats.accuracy for r in pts], 100.0, label, _color(j))
        _errorbar(ax_len, [r.alpha for r in pts], [r.stats.think_tokens for r in pts], 1.0, label, _color(j))
    for ax, ylabel, name in ((ax_acc, "accuracy (%)", "Accuracy"), (ax_len, "mean thinking length (tokens)", "Thinking length")):
        ax.axvline(0, color="0.6", linewidth=0.8)
        ax.set_xlabel("α")
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    ax_len.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


def thinkedit_layerwise(rows: Sequence[LayerRow], title: str = "") -> Figure:
    """Change in thinking length and in accuracy from the baseline against the steered layer, a line per α."""
    fig, ax_len, ax_acc = _two_panels((title or "Layer-wise steering") + f"; error bars: {100 * CI:.0f}% bootstrap interval of the paired change")
    keys = list(dict.fromkeys((r.dataset, r.vector, f"{r.alpha:+g}") for r in rows))
    for j, key in enumerate(keys):
        pts = [r for r in rows if (r.dataset, r.vector, f"{r.alpha:+g}") == key]
        label = _series_label(key, keys, ("", "", "α"))
        color = _color(j)
        _errorbar(ax_len, [r.layer for r in pts], [r.stats.delta_think for r in pts], 1.0, label, color)
        _errorbar(ax_acc, [r.layer for r in pts], [r.stats.delta_accuracy for r in pts], 100.0, label, color, "s")
    from matplotlib.ticker import MaxNLocator
    for ax, ylabel, name in ((ax_len, "Δ thinking length (tokens)", "Thinking length"), (ax_acc, "Δ accuracy (points of %)", "Accuracy")):
        ax.axhline(0, color="k", linewidth=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("steered layer")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{name}: steered − baseline", fontsize=9)
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


def thinkedit_heads(heads: Heads, edit: Edit | None = None, title: str = "") -> Figure:
    """The [L, H] head scores (layer up, head across, diverging about 0), edit.json's heads boxed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(PANEL_W + 2, PANEL_H + 1.8), dpi=DPI, layout="constrained")
    s = heads.scores
    vmax = float(np.nanmax(np.abs(s))) if np.isfinite(s).any() else 1.0
    vmax = vmax if vmax > 0 else 1.0
    im = ax.imshow(s, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="score ⟨mean W_O z, −u⟩")
    edited = ""
    if edit is not None and edit.heads:
        ax.scatter([h for _, h in edit.heads], [l for l, _ in edit.heads], marker="s", s=max(20.0, 1800.0 / max(heads.layers, heads.heads)),
                   facecolors="none", edgecolors="k", linewidths=1.2)
        edited = f"; boxed: the {edit.k} edited"
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title((title or "Short-reasoning head scores") + f"\n{heads.n_short} short traces, {heads.layers} layers x {heads.heads} heads{edited}",
                 fontsize=10)
    return fig


def thinkedit_eval(curves: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]], rows: Sequence[EvalRow], title: str = "") -> Figure:
    """A panel per dataset: accuracy of the responses at most each threshold long, original against edited."""
    datasets = list(curves)
    fig, axes = _panels(max(len(datasets), 1), title or "Accuracy against thinking length")
    for ax, ds in zip(axes, datasets):
        thresholds, acc = curves[ds]
        for model, y in acc.items():
            overall = [r.accuracy for r in rows if r.dataset == ds and r.model == model]
            label = model + (f" ({100 * overall[0]:.1f}% overall)" if overall and math.isfinite(overall[0]) else "")
            ax.plot(thresholds, 100 * y, "-o", markersize=3, linewidth=1.2, color=MODEL_COLORS.get(model, "k"), label=label)
        ax.set_ylim(0, 105)
        ax.set_xlabel("thinking length threshold (tokens)")
        ax.set_ylabel("accuracy of responses ≤ threshold (%)")
        ax.set_title(ds, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if not datasets:
        axes[0].text(0.5, 0.5, "no evaluation runs", ha="center", va="center", transform=axes[0].transAxes)
    return fig
