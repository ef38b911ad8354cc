"""The reasoning-direction figures (docs/directions.md; docs/algorithms.md §E, §D), drawn by `thinksteer-analysis
directions RUN_DIR` (directions_table) and `figures RUN_DIR` (when RUN_DIR/directions or RUN_DIR/intervene exists)
into RUN_DIR/figures:

  directions_contrast   directions/contrast.csv: the raw difference's norm against layer (left) and its cosine with
                        each compared vector against layer (right)
  directions_probes     directions/probes.h5: held-out accuracy (left) and macro-F1 (right) against layer, a line per
                        hook pattern with its 95% cluster-bootstrap band, the shuffled-label control dashed, the
                        majority-class accuracy dotted; ln_final (layer -1) drawn after the last layer
  directions_lens       directions/lens.csv (or lens.h5): mean KL(final ‖ lens), mean probability of the eventual
                        token and top-1 agreement against layer (three panels)
  directions_cka        directions/cka.h5: linear CKA (and RBF CKA when present) as heatmaps, file A's layers up,
                        file B's across
  directions_intervene  intervene/summary.{h5,csv}: Δ log p of the answer against layer, a line per dataset, mode and
                        site with its paired-bootstrap interval (left); the recovery of the patching rows (right)
A part the run does not have is skipped with a one-line note. Sizes are fixed; DPI and panel sizes as figures.py's.
"""
from __future__ import annotations

import math
import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .directions import (CKA, CONTRAST_CSV, LENS, LENS_CSV, LENS_TOP, PROBES, Cka, Contrast, LensTable, LensTop, Probes, lens_table, read_cka,
                         read_contrast, read_lens, read_lens_csv, read_lens_top, read_probes)
from .figures import DPI, PANEL_H, PANEL_W, _color, _plt, _save
from .intervene import INTERVENE_CSV, INTERVENE_SUMMARY, InterveneSummary, read_intervene
from .schema import PathLike

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURES = ("directions_contrast", "directions_probes", "directions_lens", "directions_cka", "directions_intervene")
MAX_TICKS = 12


@dataclass
class DirectionsInputs:
    """What the run has of directions/ and intervene/ (None where absent)."""
    run_dir: pathlib.Path
    contrast: Contrast | None = None
    probes: Probes | None = None
    lens: LensTable | None = None
    lens_rows: int | None = None          # rows of lens.h5 (None: not read)
    lens_top: list[LensTop] = field(default_factory=list)
    cka: Cka | None = None
    intervene: InterveneSummary | None = None

    @property
    def empty(self) -> bool:
        return all(x is None for x in (self.contrast, self.probes, self.lens, self.cka, self.intervene)) and not self.lens_top


def _load_lens(inputs: DirectionsInputs, log: Callable[[str], Any]) -> None:
    run = inputs.run_dir
    csv_path, h5_path, top_path = LENS_CSV.path(run), LENS.path(run), LENS_TOP.path(run)
    if h5_path.exists():
        lens = read_lens(h5_path)
        inputs.lens_rows = len(lens)
        if not csv_path.exists():
            inputs.lens = lens_table(lens)
    if csv_path.exists():
        inputs.lens = read_lens_csv(csv_path)
    if inputs.lens is None:
        log(f"note: no {csv_path} and no {h5_path.name}: the lens table and directions_lens skipped")
    if top_path.exists():
        inputs.lens_top = read_lens_top(top_path)


def load_directions_inputs(run_dir: PathLike, log: Callable[[str], Any] = print) -> DirectionsInputs:
    """Reads (and checks) what <run_dir> has of directions/ and intervene/; each missing part is noted through `log`."""
    run = pathlib.Path(run_dir)
    inputs = DirectionsInputs(run_dir=run)
    parts: list[tuple[str, pathlib.Path, Callable[[pathlib.Path], Any], str]] = [
        ("contrast", CONTRAST_CSV.path(run), read_contrast, "the contrast table and directions_contrast"),
        ("probes", PROBES.path(run), read_probes, "the probe table and directions_probes"),
        ("cka", CKA.path(run), read_cka, "the CKA matrix and directions_cka")]
    for name, path, reader, what in parts:
        if path.exists():
            setattr(inputs, name, reader(path))
        else:
            log(f"note: no {path}: {what} skipped")
    _load_lens(inputs, log)
    h5, csv = INTERVENE_SUMMARY.path(run), INTERVENE_CSV.path(run)
    if h5.exists() or csv.exists():
        inputs.intervene = read_intervene(run)
    else:
        log(f"note: no {h5} or {csv.name}: the intervention table and directions_intervene skipped")
    return inputs


def draw_directions(inputs: DirectionsInputs, out: pathlib.Path, fmt: str, written: list[pathlib.Path]) -> None:
    """Writes each figure the inputs allow into `out` (created if needed), appending the paths."""
    name = inputs.run_dir.name
    figs: list[tuple[str, Callable[[], Figure]]] = []
    if inputs.contrast is not None:
        figs.append(("directions_contrast", lambda: directions_contrast(inputs.contrast, f"Contrast direction: {name}")))
    if inputs.probes is not None:
        figs.append(("directions_probes", lambda: directions_probes(inputs.probes, f"Linear probes: {name}")))
    if inputs.lens is not None:
        figs.append(("directions_lens", lambda: directions_lens(inputs.lens, f"Logit lens: {name}")))
    if inputs.cka is not None:
        figs.append(("directions_cka", lambda: directions_cka(inputs.cka, f"CKA: {name}")))
    if inputs.intervene is not None and len(inputs.intervene):
        figs.append(("directions_intervene", lambda: directions_intervene(inputs.intervene, f"Interventions: {name}")))
    if figs:
        out.mkdir(parents=True, exist_ok=True)
    for fig_name, draw in figs:
        _save(draw(), out, fig_name, fmt, written)


# ---- helpers -----------------------------------------------------------------------------------------

def _row(n: int, title: str, width: float = PANEL_W) -> tuple[Figure, list[Axes]]:
    plt = _plt()
    fig, axes = plt.subplots(1, n, figsize=(width * n + 0.6, PANEL_H + 0.6), dpi=DPI, squeeze=False, layout="constrained")
    fig.suptitle(title, fontsize=10)
    return fig, list(axes[0])


def _integer_x(ax: Axes, xlabel: str = "layer") -> None:
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)


def hook_pattern(hook: str) -> str:
    """The hook with its layer number replaced by {l}: blocks.3.hook_resid_post -> blocks.{l}.hook_resid_post."""
    return re.sub(r"(?<=\.)\d+(?=\.)", "{l}", hook, count=1)


def layer_x(layers: np.ndarray) -> tuple[np.ndarray, int | None]:
    """x positions of layers: layer -1 (ln_final) after the last layer; (xs, x of ln_final or None)."""
    layers = np.asarray(layers, dtype=np.int64)
    final = int(layers.max()) + 1 if (layers >= 0).any() else 0
    return np.where(layers < 0, final, layers), final if (layers < 0).any() else None


def _mark_final(ax: Axes, xs: np.ndarray, final: int | None) -> None:
    """With an ln_final point: a dotted line before it and the x ticks at the layers (at most MAX_TICKS), it named."""
    if final is None:
        return
    ax.axvline(final - 0.5, color="0.7", linewidth=0.8, linestyle=":")
    layers = sorted(set(xs.tolist()) - {final})
    step = max(1, math.ceil(len(layers) / (MAX_TICKS - 1)))
    ticks = layers[::step] + [final]
    ax.set_xticks(ticks, [("ln_final" if t == final else str(t)) for t in ticks])


def _errorbar(ax: Axes, x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, label: str, color: Any, marker: str = "o") -> None:
    """y against x with error bars down to lo and up to hi (non-finite ends: no bar), points without a y left out."""
    ok = np.isfinite(y)
    if not ok.any():
        return
    below = np.where(np.isfinite(lo), y - lo, 0.0)[ok]
    above = np.where(np.isfinite(hi), hi - y, 0.0)[ok]
    ax.errorbar(x[ok], y[ok], yerr=[np.maximum(below, 0), np.maximum(above, 0)], fmt="-" + marker, markersize=3.5, capsize=2, color=color,
                label=label, linewidth=1)


# ---- the figures -------------------------------------------------------------------------------------

def directions_contrast(c: Contrast, title: str = "") -> Figure:
    """The norm of the raw difference against layer (left) and its cosine with each compared vector (right)."""
    fig, (ax_norm, ax_cos) = _row(2, (title or "Contrast direction") + f" (n_a = {int(c.n_a.max())}, n_b = {int(c.n_b.max())})")
    order = np.argsort(c.layer, kind="stable")
    x = c.layer[order]
    ax_norm.plot(x, c.norm[order], "-o", markersize=3.5, color=_color(0))
    ax_norm.set_ylabel("‖mean A − mean B‖")
    ax_norm.set_title("Norm of the difference", fontsize=9)
    for j, (name, v) in enumerate(c.cos.items()):   # NaN (no compared vector at the layer) breaks the line
        ax_cos.plot(x, v[order], "-o", markersize=3.5, color=_color(j + 1), label=name)
    ax_cos.axhline(0, color="k", linewidth=0.8)
    ax_cos.set_ylim(-1.05, 1.05)
    ax_cos.set_ylabel("cosine")
    ax_cos.set_title("Cosine with the compared vectors", fontsize=9)
    if c.cos:
        ax_cos.legend(fontsize=7)
    else:
        ax_cos.text(0.5, 0.5, "no vectors compared\n(directions.compare unset)", ha="center", va="center", transform=ax_cos.transAxes, fontsize=8)
    for ax in (ax_norm, ax_cos):
        _integer_x(ax)
    return fig


def directions_probes(p: Probes, title: str = "") -> Figure:
    """Accuracy and macro-F1 against layer with their bands, the shuffled control dashed, the majority class dotted."""
    fig, (ax_acc, ax_f1) = _row(2, (title or "Linear probes") + f": {len(p.classes)} classes, {p.n_test} held-out rows "
                                f"({p.n_test_traces} traces); bands: 95% cluster bootstrap")
    xs, final = layer_x(p.layer)
    patterns = list(dict.fromkeys(hook_pattern(h) for h in p.hooks.tolist()))
    for j, pattern in enumerate(patterns):
        rows = np.array([i for i, h in enumerate(p.hooks.tolist()) if hook_pattern(h) == pattern])
        rows = rows[np.argsort(xs[rows], kind="stable")]
        label = pattern if len(patterns) > 1 else "probe"
        for ax, value, ci, shuffled in ((ax_acc, p.accuracy, p.accuracy_ci, p.shuffled_accuracy), (ax_f1, p.macro_f1, p.macro_f1_ci, p.shuffled_macro_f1)):
            ax.fill_between(xs[rows], ci[rows, 0], ci[rows, 1], color=_color(j), alpha=0.2, linewidth=0)
            ax.plot(xs[rows], value[rows], "-o", markersize=3.5, color=_color(j), label=label)
            ax.plot(xs[rows], shuffled[rows], "--", marker="x", markersize=3.5, color=_color(j), alpha=0.7, linewidth=1,
                    label=f"{label}, shuffled labels" if len(patterns) > 1 else "shuffled labels")
    if math.isfinite(p.majority_accuracy):
        ax_acc.axhline(p.majority_accuracy, color="0.4", linestyle=":", linewidth=1.2, label=f"majority class ({p.majority_accuracy:.2f})")
    for ax, name in ((ax_acc, "accuracy"), (ax_f1, "macro-F1")):
        _integer_x(ax)
        _mark_final(ax, xs, final)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"held-out {name}")
        ax.set_title(name[0].upper() + name[1:], fontsize=9)
        ax.legend(fontsize=7)
    return fig


def directions_lens(t: LensTable, title: str = "") -> Figure:
    """Mean KL(final ‖ lens), mean probability of the eventual token and top-1 agreement against layer."""
    fig, axes = _row(3, title or "Logit lens", width=PANEL_W - 0.6)
    xs, final = layer_x(t.layer)
    order = np.argsort(xs, kind="stable")
    panels = ((t.kl_mean, "mean KL(final ‖ lens) (nats)", "KL from the final distribution", None),
              (t.target_prob_mean, "mean probability", "Probability of the eventual token", (-0.02, 1.02)),
              (t.top1_agreement, "share of rows", "Top-1 is the eventual token", (-0.02, 1.02)))
    for j, (ax, (v, ylabel, name, ylim)) in enumerate(zip(axes, panels)):
        ax.plot(xs[order], v[order], "-o", markersize=3.5, color=_color(j))
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=9)
        if ylim is not None:
            ax.set_ylim(*ylim)
        _integer_x(ax)
        _mark_final(ax, xs, final)
    return fig


def _layer_ticks(layers: np.ndarray, hooks: np.ndarray) -> tuple[list[int], list[str]]:
    """At most MAX_TICKS tick positions and labels: the layer (the hook when layers repeat), -1 as ln_final."""
    names = [("ln_final" if l < 0 else str(l)) for l in layers.tolist()]
    if len(set(names)) < len(names):
        names = hooks.tolist()
    step = max(1, math.ceil(len(names) / MAX_TICKS))
    idx = list(range(0, len(names), step))
    return idx, [names[i] for i in idx]


def directions_cka(k: Cka, title: str = "") -> Figure:
    """Linear CKA (and RBF CKA) between file A's hooks (up) and file B's (across), 0 to 1."""
    mats = [("linear", k.linear)] + ([("rbf", k.rbf)] if k.rbf is not None else [])
    plt = _plt()
    fig, axes = plt.subplots(1, len(mats), figsize=((PANEL_W + 0.8) * len(mats), PANEL_H + 1.4), dpi=DPI, squeeze=False, layout="constrained")
    fig.suptitle((title or "CKA") + f" ({k.n_rows} of {k.n_rows_total} rows)", fontsize=10)
    a_name, b_name = k.model_a or "A", k.model_b or k.model_a or "B"
    for ax, (name, m) in zip(axes[0], mats):
        im = ax.imshow(m, origin="lower", aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        fig.colorbar(im, ax=ax, label=f"{'linear' if name == 'linear' else 'RBF'} CKA")
        ys, ylabels = _layer_ticks(k.layers_a, k.hooks_a)
        xs, xlabels = _layer_ticks(k.layers_b, k.hooks_b)
        ax.set_yticks(ys, ylabels, fontsize=7)
        ax.set_xticks(xs, xlabels, fontsize=7, rotation=90 if max(map(len, xlabels)) > 3 else 0)
        ax.set_ylabel(f"layer ({a_name})")
        ax.set_xlabel(f"layer ({b_name})")
        ax.set_title(f"{'Linear' if name == 'linear' else 'RBF'} CKA", fontsize=9)
    return fig


def intervene_series(s: InterveneSummary) -> list[tuple[str, np.ndarray]]:
    """(label, row indices sorted by layer) per (dataset, mode, site), naming only the parts that vary."""
    keys = [(str(s["dataset"][i]), str(s["mode"][i]), str(s["site"][i])) for i in range(len(s))]
    uniq = list(dict.fromkeys(keys))
    vary = [j for j in range(3) if len({k[j] for k in uniq}) > 1] or [1]
    out = []
    for key in uniq:
        rows = np.array([i for i, k in enumerate(keys) if k == key])
        out.append((" ".join(key[j] for j in vary if key[j]), rows[np.argsort(s["layer"][rows], kind="stable")]))
    return out


def directions_intervene(s: InterveneSummary, title: str = "") -> Figure:
    """Δ log p against layer per (dataset, mode, site) with 95% intervals; recovery of the patching rows when any."""
    patching = np.isfinite(s["recovery"])
    fig, axes = _row(2 if patching.any() else 1, (title or "Interventions") + "; error bars: 95% paired bootstrap over prompts",
                     width=PANEL_W + 1)
    series = intervene_series(s)
    for j, (label, rows) in enumerate(series):
        x = s["layer"][rows].astype(np.float64)
        _errorbar(axes[0], x, s["delta_logp"][rows], s["delta_logp_lo"][rows], s["delta_logp_hi"][rows], label, _color(j))
        if len(axes) > 1 and patching[rows].any():
            r = rows[patching[rows]]
            _errorbar(axes[1], s["layer"][r].astype(np.float64), s["recovery"][r], s["recovery_lo"][r], s["recovery_hi"][r], label, _color(j), "s")
    axes[0].axhline(0, color="k", linewidth=0.8)
    axes[0].set_ylabel("Δ log p(answer): intervened − clean")
    axes[0].set_title("Change in the answer's log-probability", fontsize=9)
    if len(axes) > 1:
        for level in (0.0, 1.0):
            axes[1].axhline(level, color="0.5", linewidth=0.8, linestyle="-" if level == 0 else "--")
        axes[1].set_ylabel("recovery (1: the source's log p)")
        axes[1].set_title("Patching: share of the source's effect recovered", fontsize=9)
    for ax in axes:
        _integer_x(ax)
        ax.legend(fontsize=7)
    return fig
