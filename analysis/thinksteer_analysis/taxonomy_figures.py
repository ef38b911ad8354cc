"""The taxonomy's figures and tables (docs/algorithms.md §B.6), drawn by `thinksteer-analysis figures RUN_DIR`
(figures.make_figures) when the run has them; nothing is drawn, and nothing said, for a run without them.

  taxonomy_score          <run>/taxonomy/summary.h5: the selection score against K, a line per (layer,
                          method), the selected group starred; the rule in the title
  taxonomy_metrics        <run>/taxonomy/summary.h5: a panel per metric (fvu, orthogonality, and nmi, ari,
                          matched when the sentences carried reference labels) against K, a line per
                          (layer, method), error bars the 95% t interval over seeds (none with one seed)
  taxonomy_titles_<key>.md  each <run>/titles/<key>/titles.json: a markdown table of the clusters (cluster,
                          size, title, two example sentences cut to EXAMPLE_CHARS, pipes escaped)
Colour: the layer; line and marker: the method (sae solid circles, kmeans dashed squares).
"""
from __future__ import annotations

import math
import pathlib
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .figures import DPI, PANEL_H, PANEL_W, _color, _panels, _plt, _save
from .taxonomy import TAXONOMY_SUMMARY, TaxonomySummary, Titles, read_taxonomy_summary, read_titles, titles_keys

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

METRICS_SHOWN = ("fvu", "orthogonality", "nmi", "ari", "matched")
METRIC_NAMES = {"fvu": "FVU (fraction of variance unexplained)", "orthogonality": "centroid orthogonality", "nmi": "NMI with the reference labels",
                "ari": "ARI with the reference labels", "matched": "matched accuracy (one-to-one)"}
STYLE = {"sae": ("-", "o"), "kmeans": ("--", "s")}       # method -> (line, marker)
EXAMPLE_CHARS = 100                                     # example sentences in the titles table are cut to this
N_EXAMPLES = 2


@dataclass
class TaxonomyInputs:
    """What the run has for the taxonomy's figures: the summary (None without one) and every titles file."""
    summary: TaxonomySummary | None = None
    titles: list[Titles] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.summary is None and not self.titles


def load_taxonomy_inputs(run_dir: pathlib.Path, log: Callable[[str], Any] = print) -> TaxonomyInputs:
    """Reads (and checks) <run_dir>/taxonomy/summary.h5 and <run_dir>/titles/*/titles.json when present;
    a partial summary is noted through `log`, as the sweep's is."""
    inputs = TaxonomyInputs(titles=[read_titles(run_dir, key) for key in titles_keys(run_dir)])
    path = TAXONOMY_SUMMARY.path(run_dir)
    if path.exists():
        inputs.summary = read_taxonomy_summary(path)
        s = inputs.summary
        if s.partial or s.n_missing:
            log(f"note: {path} is partial ({s.n_missing} of {s.n_tasks} tasks missing); figures show the finished groups")
    return inputs


def draw_taxonomy(inputs: TaxonomyInputs, out: pathlib.Path, fmt: str, written: list[pathlib.Path]) -> None:
    """Writes every taxonomy figure and table `inputs` allow into `out` (which exists), appending the paths."""
    s = inputs.summary
    if s is not None:
        partial = " (partial)" if s.partial or s.n_missing else ""
        _save(taxonomy_score(s, f"Taxonomy: selection score against K{partial}"), out, "taxonomy_score", fmt, written)
        _save(taxonomy_metrics(s, f"Taxonomy metrics against K{partial}"), out, "taxonomy_metrics", fmt, written)
    for t in inputs.titles:
        path = out / f"taxonomy_titles_{t.key}.md"
        path.write_text(titles_table(t), encoding="utf-8")
        written.append(path)


# ---- figures --------------------------------------------------------------------------------------

def _series_label(layer: int, method: str) -> str:
    return f"layer {layer} {method}"


def _style(s: TaxonomySummary, layer: int, method: str) -> dict[str, Any]:
    layers = sorted(set(s.layer.tolist()))
    line, marker = STYLE.get(method, (":", "^"))
    return {"color": _color(layers.index(layer)), "linestyle": line, "marker": marker, "markersize": 4, "linewidth": 1.2}


def _k_axis(ax: Axes, ks: np.ndarray) -> None:
    """K on a log2 axis when it spans a factor of 8 or more; ticks at the swept K values (up to 12)."""
    from matplotlib.ticker import NullFormatter
    values = sorted(set(int(k) for k in ks))
    if values and values[0] > 0 and values[-1] / values[0] >= 8:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_minor_formatter(NullFormatter())
    if 0 < len(values) <= 12:
        ax.set_xticks(values, [str(k) for k in values])
    ax.set_xlabel("K (clusters)")


def _mark_selected(ax: Axes, s: TaxonomySummary, y: np.ndarray, label: bool) -> None:
    g = s.selected
    if g is None or not math.isfinite(float(y[g])):
        return
    text = f"selected: layer {s.layer[g]}, K = {s.k[g]} ({s.method[g]})" if label else None
    ax.plot([s.k[g]], [y[g]], linestyle="none", marker="*", markersize=14, color="tab:red", markeredgecolor="k", zorder=4, label=text)


def taxonomy_score(s: TaxonomySummary, title: str = "") -> Figure:
    """The selection score against K, a line per (layer, method) the rule judges, the selected group starred."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(2 * PANEL_W, PANEL_H + 0.8), dpi=DPI, layout="constrained")
    drawn = False
    for (layer, method), rows in s.series():
        if np.isfinite(s.score[rows]).any():
            ax.plot(s.k[rows], s.score[rows], label=_series_label(layer, method), **_style(s, layer, method))
            drawn = True
    _mark_selected(ax, s, s.score, label=True)
    _k_axis(ax, s.k)
    ax.set_ylabel("selection score")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        ax.text(0.5, 0.5, "no group judged by the rule", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("\n".join(textwrap.wrap(f"rule: {s.rule}", 100)) or "rule: ?", fontsize=8)
    fig.suptitle(f"{title or 'Taxonomy: selection score against K'}: {s.path.parent.parent.name}", fontsize=10)
    return fig


def _metric_panel(ax: Axes, s: TaxonomySummary, metric: str, legend: bool) -> None:
    """One metric against K: a line per (layer, method), error bars only where the interval is finite."""
    mean, lo, hi = s.mean[metric], s.lo[metric], s.hi[metric]
    for (layer, method), rows in s.series():
        style = _style(s, layer, method)
        x, y = s.k[rows], mean[rows]
        ax.plot(x, y, label=_series_label(layer, method), **style)
        ok = np.isfinite(y) & np.isfinite(lo[rows]) & np.isfinite(hi[rows])
        if ok.any():
            err = [np.maximum(0.0, y[ok] - lo[rows][ok]), np.maximum(0.0, hi[rows][ok] - y[ok])]
            ax.errorbar(x[ok], y[ok], yerr=err, fmt="none", ecolor=style["color"], capsize=2, linewidth=1)
    _mark_selected(ax, s, mean, label=legend)
    _k_axis(ax, s.k)
    ax.set_title(METRIC_NAMES.get(metric, metric), fontsize=9)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7)


def taxonomy_metrics(s: TaxonomySummary, title: str = "") -> Figure:
    """A panel per metric of METRICS_SHOWN the summary holds, against K; error bars the 95% t interval."""
    shown = [m for m in METRICS_SHOWN if m in s.metrics]
    seeds = sorted(set(s.n_seeds.tolist()))
    fig, axes = _panels(max(len(shown), 1), f"{title or 'Taxonomy metrics against K'}: {s.path.parent.parent.name}; "
                        f"error bars: 95% t interval over {'/'.join(map(str, seeds))} seed(s) (none with one seed)")
    for i, (ax, metric) in enumerate(zip(axes, shown)):
        _metric_panel(ax, s, metric, legend=i == 0)
    if not shown:
        axes[0].text(0.5, 0.5, "no fvu, orthogonality, nmi, ari or matched in the summary", ha="center", va="center",
                     transform=axes[0].transAxes)
    return fig


# ---- titles table ---------------------------------------------------------------------------------

def _cell(text: str, limit: int | None = None) -> str:
    """`text` as one markdown table cell: whitespace runs (newlines too) made one space, cut to `limit`
    characters with an ellipsis, pipes and backslashes escaped."""
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[:limit - 1].rstrip() + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|")


def titles_table(t: Titles) -> str:
    """The markdown table of one titles file: a heading naming the clustering, then a row per cluster."""
    head = [f"# Cluster titles: layer {t.layer}, K = {t.k}, {t.method}, seed {t.seed}", "",
            f"Task `{t.key}`, titles from the {t.source} titler. Examples cut to {EXAMPLE_CHARS} characters.", "",
            "| cluster | size | title | " + " | ".join(f"example {i + 1}" for i in range(N_EXAMPLES)) + " |",
            "|---:|---:|---|" + "---|" * N_EXAMPLES]
    rows = []
    for c in t.clusters:
        examples = [_cell(e, EXAMPLE_CHARS) for e in c.examples[:N_EXAMPLES]] + [""] * max(0, N_EXAMPLES - len(c.examples))
        rows.append(f"| {c.index} | {c.size} | {_cell(c.title)} | " + " | ".join(examples) + " |")
    return "\n".join(head + rows) + "\n"
