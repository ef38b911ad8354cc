"""The papers' figures (docs/algorithms.md §A.6, §A.7, §K) drawn from a run directory, as PNG (or PDF) files.

    python -m thinksteer_analysis figures RUN_DIR [--out DIR] [--format png|pdf] [--share token_share|span_share]

Figures (each function returns the matplotlib Figure; make_figures writes the files):
  attribution_layers      <run>/attribute: mean ± std of |effect| against layer, a panel per behaviour,
                          the selected layers marked, the layers excluded from selection shaded (§A.7)
  attribution_cosine      <run>/attribute: per layer, max |cos| of each behaviour's vector with the rows of
                          the token embedding and of the unembedding (cosine_sim.py's two plots)
  fraction_bars           <run>/sweep: per steered behaviour, its fraction at baseline, +coef and -coef
                          (largest |coef| of each sign, at the layers where they separate most), error bars
                          the paired delta's bootstrap 95% interval, random controls hatched (§A.6)
  fraction_vs_coef        <run>/sweep: behaviour fraction against coefficient, a panel per behaviour, a
                          line per layers value, random controls dashed
  accuracy_length         <run>/sweep: accuracy and mean thinking length against coefficient, a line per
                          vector and layers value
  vector_vs_random        <run>/sweep with random controls: per behaviour at attribute's first pick (or each
                          layer without attribution), the vector's paired delta at each c against every
                          same-norm random direction's delta, with 95% intervals (the acceptance rule's picture)
taxonomy_score, taxonomy_metrics, taxonomy_titles_<key>.md
                          <run>/taxonomy, <run>/titles: the taxonomy's choice of (layer, K) and its cluster
                          titles (taxonomy_figures; drawn only when the run has them)
basevec_curves, basevec_kl
                          <run>/basevec: the base-vector sweep's training curves and holdout bars
                          (basevec_figures; drawn only when the run has finished task files)
hybrid_accuracy, hybrid_gap, hybrid_trace
                          <run>/hybrid: the hybrid sweep's accuracies, gap recovered and one trace
                          (hybrid_figures; drawn only when the run has hybrid/summary.h5)
thinkedit_lengths, thinkedit_alpha, thinkedit_layerwise, thinkedit_heads, thinkedit_eval
                          <run>/thinkedit, <run>/alpha, layerwise, eval/*: ThinkEdit's length split, steering
                          sweeps, head scores and evaluation (thinkedit_figures; drawn only when the run has
                          thinkedit/, each where its input is there)
directions_contrast, directions_probes, directions_lens, directions_cka, directions_intervene
                          <run>/directions, <run>/intervene: the reasoning directions' contrast norms and
                          cosines, probe scores, logit lens, CKA and intervention sweep (directions_figures;
                          drawn only when the run has directions/ or intervene/, each where its file is there)
Sizes are fixed (no tight bounding box): a grid of panels PANEL_W x PANEL_H inches each at DPI.
"""
from __future__ import annotations

import math
import pathlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import acceptance as acc
from . import sweep_analysis as sw
from .attribution import Attribution, attribution_path, load_attribution
from .schema import PathLike, done_marker
from .sweep_summary import SweepSummary, load_sweep_summary, summary_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
PANEL_W, PANEL_H = 4.0, 3.2


def _plt() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def grid(n: int) -> tuple[int, int]:
    """(rows, cols) of a panel grid for n panels: 2 x 2 for four (the paper's layout), else up to 3 wide."""
    cols = 2 if n == 4 else max(1, min(n, 3))
    return max(1, math.ceil(n / cols)), cols


def _panels(n: int, title: str) -> tuple[Figure, Sequence[Axes]]:
    plt = _plt()
    rows, cols = grid(n)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_W * cols, PANEL_H * rows), dpi=DPI, squeeze=False, layout="constrained")
    axes = axes.ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return fig, axes[:n]


def _color(i: int) -> tuple[float, float, float, float]:
    return _plt().get_cmap("tab10")(i % 10)


def _layers_text(layers: str, hook: str = "", with_hook: bool = False) -> str:
    s = ("layers " if "+" in layers else "layer ") + layers if layers else "baseline"
    return s + (f" {hook}" if with_hook and hook else "")


# ---- attribution (§A.7) ---------------------------------------------------------------------------

def attribution_layers(a: Attribution) -> Figure:
    """Mean ± std of |effect| against layer, one panel per behaviour; selected layers marked (red
    triangles, labelled), layers not eligible for selection shaded."""
    from matplotlib.ticker import MaxNLocator
    fig, axes = _panels(len(a.labels), f"Attribution per layer ({a.metric or '?'} metric, {a.mode or '?'} mode, {a.hook or 'hook ?'}): {a.path.parent.parent.name}")
    x = a.layers
    n_layer = int(x[-1]) + 1 if len(x) and np.array_equal(x, np.arange(len(x))) else None  # known only if every layer was attributed
    for k, (ax, label) in enumerate(zip(axes, a.labels)):
        m, sd = a.mean[k].astype(np.float64), a.std[k].astype(np.float64)
        ax.fill_between(x, m - sd, m + sd, color=_color(0), alpha=0.2, linewidth=0)
        ax.plot(x, m, "-o", color=_color(0), markersize=3, label="mean ± std")
        if a.exclude_first[k] > x[0]:
            ax.axvspan(x[0] - 0.5, a.exclude_first[k] - 0.5, color="0.85", zorder=0, label="not eligible")
        if n_layer is not None and a.exclude_last[k] > 0:
            ax.axvspan(n_layer - a.exclude_last[k] - 0.5, n_layer - 0.5, color="0.85", zorder=0)
        for rank, l in enumerate(a.selected_layers(label)):
            li = np.flatnonzero(x == l)
            if li.size:
                ax.plot([l], [m[li[0]]], "v", color="tab:red", markersize=8, label="selected" if rank == 0 else None, zorder=3)
                ax.annotate(str(l), (l, m[li[0]]), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8, color="tab:red")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{label} (n={int(a.n_examples[k])})", fontsize=9)
        ax.set_xlabel("layer")
        ax.set_ylabel("mean |effect|")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7)
    return fig


def attribution_cosine(a: Attribution) -> Figure:
    """Per layer, max |cos| of each behaviour's vector with token-embedding rows and unembedding rows."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator
    fig, axes = plt.subplots(1, 2, figsize=(2 * PANEL_W + 1, PANEL_H + 0.6), dpi=DPI, squeeze=False, layout="constrained")
    threshold = a.embed_cos_threshold()
    for ax, data, what in zip(axes[0], (a.cos_embed, a.cos_unembed), ("embedding", "unembedding")):
        for k, label in enumerate(a.labels):
            ax.plot(a.layers, data[k], "-o", markersize=3, color=_color(k), label=label)
        if what == "embedding" and threshold is not None:
            ax.axhline(threshold, color="0.4", linestyle=":", linewidth=1, label=f"embed_cos = {threshold:g}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"max |cos| with {what} rows", fontsize=9)
        ax.set_xlabel("layer")
        ax.set_ylabel("max |cos|")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Feature vectors against token (un)embeddings: {a.path.parent.parent.name}", fontsize=10)
    return fig


# ---- sweep (§A.6) ---------------------------------------------------------------------------------

def _share_axis(share: str) -> str:
    return "fraction of steerable-label tokens (%)" if share == "token_share" else "fraction of spans (%)"


def _yerr(err: sw.Interval) -> np.ndarray | None:
    lo, hi = err
    return None if math.isnan(lo) or math.isnan(hi) else np.array([[max(lo, 0.0) * 100], [max(hi, 0.0) * 100]])


def fraction_bars(s: SweepSummary, share: str = "token_share", title: str = "") -> Figure:
    """Bars per steered behaviour: original, +steer, -steer (and random +/- hatched when present)."""
    plt = _plt()
    bars = sw.fraction_bars(s, share)
    have_random = any(not (math.isnan(b.random_pos) and math.isnan(b.random_neg)) for b in bars)
    n = max(len(bars), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * n + 2.0), 4.5), dpi=DPI, layout="constrained")
    # (legend name, value, error bar, colour, hatch)
    series: list[tuple[str, Callable[[sw.Bars], float], Callable[[sw.Bars], sw.Interval], Any, str | None]] = [
        ("original", lambda b: b.baseline, lambda b: (math.nan, math.nan), _color(0), None),
        ("+ steer", lambda b: b.pos, lambda b: b.pos_err, _color(1), None),
        ("− steer", lambda b: b.neg, lambda b: b.neg_err, _color(2), None)]
    if have_random:
        series += [("+ random", lambda b: b.random_pos, lambda b: b.random_pos_err, _color(1), "//"),
                   ("− random", lambda b: b.random_neg, lambda b: b.random_neg_err, _color(2), "//")]
    width = 0.8 / len(series)
    x = np.arange(len(bars))
    for j, (name, value, err, color, hatch) in enumerate(series):
        xs = x + (j - (len(series) - 1) / 2) * width
        for xi, b in zip(xs, bars):
            v = value(b)
            if math.isnan(v):
                continue
            ax.bar(xi, 100 * v, width, color=color if hatch is None else "white", edgecolor=color, hatch=hatch,
                   yerr=_yerr(err(b)), capsize=3, error_kw={"elinewidth": 1}, label=name)
            ax.annotate(f"{100 * v:.1f}", (xi, 100 * v), textcoords="offset points", xytext=(0, 2), ha="center", va="bottom", fontsize=7)
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    if uniq:
        ax.legend(uniq.values(), uniq.keys(), fontsize=8)
    with_hook = len({b.hook for b in bars}) > 1
    ax.set_xticks(x, [f"{b.label}\n{_layers_text(b.layers, b.hook, with_hook)}, coef " + "/".join(f"{c:+g}" for c in (b.pos_coef, b.neg_coef) if not math.isnan(c))
                      for b in bars], fontsize=8)
    ax.set_ylabel(_share_axis(share))
    ax.grid(axis="y", alpha=0.3)
    ax.set_title((title or "Behaviour fraction: original, positive and negative steering") + f"\nerror bars: {100 * s.ci:.0f}% CI of the paired delta",
                 fontsize=9)
    if not bars:
        ax.text(0.5, 0.5, "no steering-vector points", ha="center", va="center", transform=ax.transAxes)
    return fig


def _series(s: SweepSummary, label: str, op: str | None = None) -> list[tuple[sw.SeriesKey, list[int]]]:
    """Series of vector/random points of behaviour `label` as (key, rows), vectors before randoms, by layers."""
    keys = sw.series_keys(s)
    found = sorted({k for k in keys if k[1] == label and k[0] in ("vector", "random") and (op is None or k[4] == op)},
                   key=lambda t: (t[0] != "vector", sw.layers_order(t[2]), t[3], t[4], t[5]))
    return [(k, [i for i, kk in enumerate(keys) if kk == k]) for k in found]


def _describe(s: SweepSummary, key: sw.SeriesKey, rows_all: Sequence[int]) -> str:
    """Legend text of a series: the layers, plus hook/op/positions where they vary."""
    kind, _, layers, hook, op, positions = key
    parts = [_layers_text(layers)]
    if sw.varying(s, rows_all, "hook"):
        parts.append(hook)
    if sw.varying(s, rows_all, "op"):
        parts.append(op)
    if sw.varying(s, rows_all, "positions"):
        parts.append(f"pos {positions}")
    return " ".join(parts) + (" (random)" if kind == "random" else "")


def _with_baseline(s: SweepSummary, rows: Sequence[int], k: int | None, share: str) -> list[sw.Level]:
    lv = sw.levels(s, rows, k, share)
    base = sw.baseline_level(s, rows, k, share)
    if base is not None and not any(x.coef == 0 for x in lv):
        lv = sorted(lv + [base], key=lambda x: x.coef)
    return lv


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _line(ax: Axes, lv: Sequence[sw.Level], y: Callable[[sw.Level], float], lo: Callable[[sw.Level], float], hi: Callable[[sw.Level], float],
          scale: float, color: Any, dashed: bool, label: str, marker: str = "o") -> None:
    """One series: y(level) against coefficient, error bars lo(level) below and hi(level) above (nan: none)."""
    xs = [x.coef for x in lv]
    ys = [scale * y(x) for x in lv]
    err_lo = [max(0.0, scale * e) if not math.isnan(e) else 0.0 for e in (lo(x) for x in lv)]
    err_hi = [max(0.0, scale * e) if not math.isnan(e) else 0.0 for e in (hi(x) for x in lv)]
    ax.errorbar(xs, ys, yerr=[err_lo, err_hi], fmt=("--" if dashed else "-") + marker, markersize=3.5, capsize=2, color=color, label=label,
                alpha=0.8 if dashed else 1.0, linewidth=1)


def fraction_vs_coef(s: SweepSummary, share: str = "token_share", title: str = "") -> Figure:
    """Behaviour fraction against coefficient, a panel per steered behaviour, a line per layers value
    (coefficient 0 = the baseline); random controls dashed in the colour of their layers."""
    labels = [l for l in sw.vector_labels(s) if s.label_index(l) is not None]
    fig, axes = _panels(max(len(labels), 1), (title or f"Behaviour fraction against steering coefficient ({share.replace('_', ' ')})")
                        + f"; error bars: {100 * s.ci:.0f}% CI of the paired delta")
    all_rows = [i for i in range(len(s)) if s.points["kind"][i] in ("vector", "random")]
    layer_values = sorted(set(s.points["layers"][all_rows].tolist()), key=sw.layers_order)
    for ax, label in zip(axes, labels):
        k = s.label_index(label)
        for key, rows in _series(s, label):
            lv = _with_baseline(s, rows, k, share)
            _line(ax, lv, lambda x: x.fraction, lambda x: x.delta - x.lo, lambda x: x.hi - x.delta, 100.0,
                  _color(layer_values.index(key[2])), key[0] == "random", _describe(s, key, all_rows))
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("coefficient")
        ax.set_ylabel(_share_axis(share))
        ax.axvline(0, color="0.6", linewidth=0.8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if not labels:
        axes[0].text(0.5, 0.5, "no steering-vector points", ha="center", va="center", transform=axes[0].transAxes)
    return fig


def accuracy_length(s: SweepSummary, title: str = "") -> Figure:
    """Accuracy and mean thinking length against coefficient: a line per vector (colour) and layers value
    (marker); random controls dashed. Error bars: 95% CI of the paired delta against the baseline."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(2 * PANEL_W + 3, PANEL_H + 1.3), dpi=DPI, squeeze=False, layout="constrained")
    ax_acc, ax_len = axes[0]
    labels = sw.vector_labels(s)
    all_rows = [i for i in range(len(s)) if s.points["kind"][i] in ("vector", "random")]
    layer_values = sorted(set(s.points["layers"][all_rows].tolist()), key=sw.layers_order)
    for li, label in enumerate(labels):
        for key, rows in _series(s, label):
            lv = _with_baseline(s, rows, None, "token_share")
            name = f"{label} {_describe(s, key, all_rows)}"
            marker = MARKERS[layer_values.index(key[2]) % len(MARKERS)]
            _line(ax_acc, lv, lambda x: x.accuracy, lambda x: x.accuracy_delta - x.accuracy_lo, lambda x: x.accuracy_hi - x.accuracy_delta, 100.0,
                  _color(li), key[0] == "random", name, marker)
            _line(ax_len, lv, lambda x: x.think_tokens, lambda x: x.think_delta - x.think_lo, lambda x: x.think_hi - x.think_delta, 1.0,
                  _color(li), key[0] == "random", name, marker)
    base = [i for i in range(len(s)) if s.points["kind"][i] == "baseline"]
    for ax, field_name, scale in ((ax_acc, "accuracy", 100.0), (ax_len, "think_tokens", 1.0)):
        if base:
            ax.axhline(scale * float(np.nanmean(s.points[field_name][base])), color="0.5", linestyle=":", linewidth=1, label="baseline")
        ax.axvline(0, color="0.6", linewidth=0.8)
        ax.set_xlabel("coefficient")
        ax.grid(alpha=0.3)
    ax_acc.set_ylabel("accuracy (%)")
    ax_len.set_ylabel("mean thinking length (tokens)")
    ax_acc.set_title("Accuracy", fontsize=9)
    ax_len.set_title("Thinking length", fontsize=9)
    ax_len.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle((title or "Accuracy and thinking length against steering strength") + f"; error bars: {100 * s.ci:.0f}% CI of the paired delta",
                 fontsize=10)
    return fig


def _cell_err(d: float, lo: float, hi: float) -> list[list[float]]:
    """matplotlib yerr, in points of %, of one (delta, lo, hi) cell."""
    return [[100 * max(0.0, d - lo)], [100 * max(0.0, hi - d)]]


def vector_vs_random(rows: Sequence[acc.Row], ci: float, title: str = "") -> Figure:
    """A panel per behaviour and layers: at each +-c, the vector's paired delta (colour) beside each random
    direction's (grey), error bars the bootstrap interval; the rule asks the coloured point to lie
    beyond every grey interval on its side."""
    panels: dict[tuple[str, str], list[acc.Row]] = {}
    for r in rows:
        if (r["random_plus"] or r["random_minus"]) and r["first_pick"] is not False:
            panels.setdefault((r["vector"], r["layers"]), []).append(r)
    fig, axes = _panels(max(len(panels), 1), (title or "Steering vector against same-norm random directions")
                        + f"; error bars: {100 * ci:.0f}% CI")
    for pi, (ax, ((vector, layers), group)) in enumerate(zip(axes, sorted(panels.items()))):
        for r in group:
            for sign, cell, randoms in ((1, r["plus"], r["random_plus"]), (-1, r["minus"], r["random_minus"])):
                x = sign * r["c"]
                width = 0.25 * r["c"]
                for j, (d, lo, hi) in enumerate(randoms):
                    xj = x + width * ((j + 1) / (len(randoms) + 1) - 0.5) + 0.3 * width
                    ax.errorbar([xj], [100 * d], yerr=_cell_err(d, lo, hi), fmt="o", markersize=2.5,
                                capsize=1.5, color="0.55", linewidth=0.8, label="random directions" if (sign == 1 and j == 0 and r is group[0]) else None)
                d, lo, hi = cell
                ax.errorbar([x - 0.3 * width], [100 * d], yerr=_cell_err(d, lo, hi), fmt="D", markersize=4,
                            capsize=2, color=_color(pi), linewidth=1.2, label="vector" if (sign == 1 and r is group[0]) else None)
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set_title(f"{vector} @ layer {layers}", fontsize=9)
        ax.set_xlabel("coefficient")
        ax.set_ylabel("change from baseline (points of %)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if not panels:
        axes[0].text(0.5, 0.5, "no random controls", ha="center", va="center", transform=axes[0].transAxes)
    return fig


# ---- one call for a run directory -----------------------------------------------------------------

def _save(fig: Figure, out: pathlib.Path, name: str, fmt: str, written: list[pathlib.Path]) -> None:
    path = out / f"{name}.{fmt}"
    fig.savefig(path, dpi=DPI, format=fmt)
    _plt().close(fig)
    written.append(path)


def make_figures(run_dir: PathLike, out: PathLike | None = None, fmt: str = "png", share: str = "token_share",
                 log: Callable[[str], Any] = print) -> list[pathlib.Path]:
    """Every figure the run directory's outputs allow, written under `out` (default RUN_DIR/figures).
    Reads (and checks) every input before drawing anything; returns the paths written. A stage that has
    not run is skipped with a one-line note through `log`."""
    run = pathlib.Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: not a directory")
    out_dir = pathlib.Path(out) if out is not None else run / "figures"
    attribution: Attribution | None = None
    summary: SweepSummary | None = None
    ap = attribution_path(run)
    if not ap.exists():
        log(f"note: no attribute ({ap} absent): attribution figures skipped")
    elif not done_marker(ap).exists():
        log(f"note: attribute not finished ({ap}.done absent): attribution figures skipped")
    else:
        attribution = load_attribution(ap)
    sp = summary_path(run)
    if not sp.exists():
        log(f"note: no sweep ({sp} absent): sweep figures skipped")
    else:
        summary = load_sweep_summary(sp)
        if summary.partial or summary.n_missing:
            log(f"note: {sp} is partial ({summary.n_missing} of {summary.n_tasks} tasks missing); figures show the finished points")
    from .taxonomy_figures import draw_taxonomy, load_taxonomy_inputs   # here: it draws with this module's helpers
    taxonomy = load_taxonomy_inputs(run, log)
    from .basevec_figures import draw_basevec, load_basevec_inputs
    basevec = load_basevec_inputs(run, log)
    from .hybrid_figures import draw_hybrid, load_hybrid_inputs
    hybrid = load_hybrid_inputs(run, log)
    from .thinkedit_figures import ThinkeditInputs, draw_thinkedit, load_thinkedit_inputs
    thinkedit = load_thinkedit_inputs(run, log) if (run / "thinkedit").is_dir() else ThinkeditInputs(run_dir=run)
    from .directions_figures import DirectionsInputs, draw_directions, load_directions_inputs
    has_directions = (run / "directions").is_dir() or (run / "intervene").is_dir()
    directions = load_directions_inputs(run, log) if has_directions else DirectionsInputs(run_dir=run)
    written: list[pathlib.Path] = []
    if attribution is None and summary is None and taxonomy.empty and basevec.empty and hybrid.empty and thinkedit.empty and directions.empty:
        return written
    out_dir.mkdir(parents=True, exist_ok=True)
    if attribution is not None:
        _save(attribution_layers(attribution), out_dir, "attribution_layers", fmt, written)
        _save(attribution_cosine(attribution), out_dir, "attribution_cosine", fmt, written)
    if summary is not None:
        picks = acc.picks_of(attribution) if attribution is not None else None
        datasets = summary.datasets()
        for ds in datasets:
            part = summary.subset(summary.points["dataset"] == ds) if len(datasets) > 1 else summary
            suffix = f"_{_safe(ds)}" if len(datasets) > 1 else ""
            tag = f" [{ds}]" if ds else ""
            partial = " (partial)" if summary.partial or summary.n_missing else ""
            _save(fraction_bars(part, share, title=f"Behaviour fraction: original, +steer, −steer{tag}{partial}"), out_dir, f"fraction_bars{suffix}", fmt, written)
            _save(fraction_vs_coef(part, share, title=f"Behaviour fraction against coefficient{tag}{partial}"), out_dir, f"fraction_vs_coef{suffix}", fmt, written)
            _save(accuracy_length(part, title=f"Accuracy and thinking length against strength{tag}{partial}"), out_dir, f"accuracy_length{suffix}", fmt, written)
            rows = acc.acceptance_rows(part, share, picks)
            if any(r["random_plus"] or r["random_minus"] for r in rows):
                _save(vector_vs_random(rows, part.ci, title=f"Vector vs same-norm random directions{partial}\n{ds}"),
                      out_dir, f"vector_vs_random{suffix}", fmt, written)
    draw_taxonomy(taxonomy, out_dir, fmt, written)
    draw_basevec(basevec, out_dir, fmt, written)
    draw_hybrid(hybrid, out_dir, fmt, written)
    draw_thinkedit(thinkedit, out_dir, fmt, written)
    draw_directions(directions, out_dir, fmt, written)
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "unnamed"
