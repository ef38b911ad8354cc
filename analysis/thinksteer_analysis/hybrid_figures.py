"""The hybrid sweep's figures (`thinksteer hybrid`; docs/algorithms.md "The hybrid model"), drawn by
`thinksteer-analysis hybrid RUN_DIR` (hybrid_table) and `figures RUN_DIR` into RUN_DIR/figures from
<run>/hybrid/summary.h5 and, for the trace, one task file (<run>/hybrid/tasks/<key>.h5):

  hybrid_accuracy  a row per dataset: accuracy of the base model, the thinking model, the hybrid with each
                   rule (ablation none) and each ablation (hatched, in its rule's colour), error bars the
                   bootstrap interval; dotted lines at the base and thinking accuracies
  hybrid_gap       a row per dataset: the gap recovered, (row − base) / (thinking − base), a bar group per
                   ablation (none first), a bar per rule (and layer, seed where they vary), error bars the
                   bootstrap interval; a zero line and a dotted line at 1 (the thinking model)
  hybrid_trace     one prompt (default the first) of the first hybrid row with ablation none: its emitted
                   text wrapped at WRAP columns (the first CHAR_LIMIT characters), steered tokens on a
                   background of their category's colour, skipped disagreements (randpos) on grey, the
                   forced answer prefix in grey. Needs the task's tokens (hybrid.save_text) and a tokenizer:
                   --tokenizer, else the tokenizer.json of basevec.base_model in the task's resolved config,
                   of its model_path, or of model.path (relative paths against the working directory and
                   the directory the run was started from); without one the figure is skipped with a note.
Sizes are fixed (no tight bounding box); DPI and panel sizes as figures.py's.
"""
from __future__ import annotations

import importlib.util
import math
import pathlib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .figures import DPI, PANEL_H, PANEL_W, _color, _plt, _save
from .hybrid import (ABLATIONS, FORCED, HYBRID_SUMMARY, SKIPPED, STEERED, HybridSummary, HybridTask, config_value, hybrid_task_path,
                     read_hybrid_summary, read_hybrid_task)
from .schema import PathLike

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURES = ("hybrid_accuracy", "hybrid_gap", "hybrid_trace")
BAR_IN = 0.55            # inches per bar in hybrid_accuracy
GROUP_BAR_IN = 0.4       # inches per bar in hybrid_gap
WRAP = 100               # trace columns
CHAR_LIMIT = 1500        # trace characters shown
ADVANCE = 1233 / 2048    # DejaVu Sans Mono's (shipped with matplotlib) advance width, in em
CHAR_PX = 7              # trace column width in pixels at DPI: a whole number, so the rasteriser's hinted advances match
FONT = CHAR_PX * 72 / (ADVANCE * DPI)   # the trace's font size (points), about 8.4
CHAR_IN = CHAR_PX / DPI
LINE_IN = 0.16
TRACE_W = 8.0            # inches
TRACE_LEFT, TRACE_TOP, TRACE_BOTTOM = 0.5, 0.75, 0.55   # inches around the text
MIN_LINES = 8
MONO = "DejaVu Sans Mono"
BASE_COLOR, THINKING_COLOR, FORCED_COLOR = "0.6", "0.25", "0.55"


@dataclass
class HybridInputs:
    """What the run has of the hybrid sweep: the summary (None when `reduce` has not run), the task of the
    trace (the first hybrid row with ablation none, when its file is there), the prompt to draw and the
    tokenizer file (None when none was found)."""
    run_dir: pathlib.Path
    summary: HybridSummary | None = None
    trace: HybridTask | None = None
    prompt: int = 0
    tokenizer: pathlib.Path | None = None

    @property
    def empty(self) -> bool:
        return self.summary is None


def _run_root(run_dir: pathlib.Path, task: HybridTask) -> pathlib.Path | None:
    """The directory the run was started from: run_dir without the config's run.dir at its end."""
    rel = config_value(task.provenance, "run", "dir")
    if not rel or pathlib.PurePath(rel).is_absolute():
        return None
    run, parts = run_dir.resolve(), pathlib.PurePath(rel).parts
    if len(run.parts) > len(parts) and run.parts[-len(parts):] == parts:
        return run.parents[len(parts) - 1]
    return None


def find_tokenizer(run_dir: pathlib.Path, task: HybridTask, explicit: PathLike | None = None) -> pathlib.Path | None:
    """The tokenizer.json to decode `task`'s tokens with: `explicit` (the file, or a directory holding it;
    FileNotFoundError when neither), else that of basevec.base_model in the task's resolved config, of its
    model_path, or of model.path, relative paths tried against the working directory and the run's root."""
    if explicit is not None:
        p = pathlib.Path(explicit)
        p = p / "tokenizer.json" if p.is_dir() else p
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such tokenizer file (--tokenizer takes a tokenizer.json or the model directory holding it)")
        return p
    models = [config_value(task.provenance, "basevec", "base_model"), task.model_path or None, config_value(task.provenance, "model", "path")]
    root = _run_root(run_dir, task)
    for m in (m for m in models if m):
        p = pathlib.Path(m)
        for cand in [p] if p.is_absolute() else [pathlib.Path.cwd() / p] + ([root / p] if root is not None else []):
            if (cand / "tokenizer.json").is_file():
                return cand / "tokenizer.json"
    return None


def _trace_task(run: pathlib.Path, s: HybridSummary, log: Callable[[str], Any]) -> HybridTask | None:
    rows = s.rows(role="hybrid", ablation="none")
    if not rows:
        log(f"note: {s.path} has no hybrid row with ablation none: hybrid_trace skipped")
        return None
    path = hybrid_task_path(run, str(s.key[rows[0]]))
    if not path.exists():
        log(f"note: {path} absent (task {int(s.task[rows[0]])}): hybrid_trace skipped")
        return None
    return read_hybrid_task(path)


def load_hybrid_inputs(run_dir: PathLike, log: Callable[[str], Any] = print, prompt: int = 0, tokenizer: PathLike | None = None) -> HybridInputs:
    """Reads (and checks) <run_dir>/hybrid/summary.h5 when present and the task file of the trace, and finds
    the tokenizer; a partial summary, a missing task file or tokenizer are noted through `log`."""
    run = pathlib.Path(run_dir)
    inputs = HybridInputs(run_dir=run, prompt=prompt)
    sp = HYBRID_SUMMARY.path(run)
    if not sp.exists():
        return inputs
    inputs.summary = read_hybrid_summary(sp)
    if inputs.summary.partial:
        log(f"note: {sp} is partial (some tasks of the plan had not finished when `reduce` ran)")
    inputs.trace = _trace_task(run, inputs.summary, log)
    if inputs.trace is None:
        return inputs
    if not inputs.trace.prompts:
        log(f"note: {inputs.trace.path} has no prompts: hybrid_trace skipped")
        inputs.trace = None
        return inputs
    inputs.tokenizer = find_tokenizer(run, inputs.trace, tokenizer)
    if inputs.tokenizer is None:
        log(f"note: no tokenizer.json found for {inputs.trace.path} (pass --tokenizer): hybrid_trace skipped")
    elif importlib.util.find_spec("tokenizers") is None:
        log("note: the `tokenizers` package is not installed: hybrid_trace skipped")
        inputs.tokenizer = None
    return inputs


def draw_hybrid(inputs: HybridInputs, out: pathlib.Path, fmt: str, written: list[pathlib.Path]) -> None:
    """Writes hybrid_accuracy, hybrid_gap and (with a task file and a tokenizer) hybrid_trace into `out`
    (created if needed), appending the paths; nothing without a summary."""
    s = inputs.summary
    if s is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    name = inputs.run_dir.name
    partial = " (partial)" if s.partial else ""
    _save(hybrid_accuracy(s, f"Hybrid sweep accuracy{partial}: {name}"), out, "hybrid_accuracy", fmt, written)
    _save(hybrid_gap(s, f"Gap recovered, (row − base) / (thinking − base){partial}: {name}"), out, "hybrid_gap", fmt, written)
    if inputs.trace is not None and inputs.tokenizer is not None:
        _save(hybrid_trace(inputs.trace, inputs.prompt, load_tokenizer(inputs.tokenizer), f"Hybrid trace: {name}"), out, "hybrid_trace", fmt, written)


# ---- bars -----------------------------------------------------------------------------------------

def _ablation_order(ablations: Sequence[str]) -> list[str]:
    """The ablations present: the known ones in ABLATIONS order, then any other in order of appearance."""
    present = list(dict.fromkeys(ablations))
    return [a for a in ABLATIONS if a in present] + [a for a in present if a not in ABLATIONS]


def _variant(s: HybridSummary, i: int, rows: Sequence[int]) -> str:
    """A hybrid row's rule, with its layer and seed where they vary over `rows`."""
    text = str(s.rule[i])
    if len({int(s.layer[j]) for j in rows}) > 1:
        text += f" L{int(s.layer[i])}"
    if len({int(s.seed[j]) for j in rows}) > 1:
        text += f" s{int(s.seed[i])}"
    return text


def _variants(s: HybridSummary, rows: Sequence[int]) -> list[str]:
    return list(dict.fromkeys(_variant(s, i, rows) for i in rows))


def _bar_rows(s: HybridSummary, dataset: str) -> list[int]:
    """A dataset's rows in bar order: base, thinking, hybrid (ablation none), then each ablation."""
    hyb = s.rows(dataset, "hybrid")
    order = _ablation_order([str(s.ablation[i]) for i in hyb])
    return s.rows(dataset, "base") + s.rows(dataset, "thinking") + [i for a in order for i in hyb if s.ablation[i] == a]


def _yerr(v: float, lo: float, hi: float, scale: float) -> list[list[float]] | None:
    if not all(math.isfinite(x) for x in (v, lo, hi)):
        return None
    return [[scale * max(0.0, v - lo)], [scale * max(0.0, hi - v)]]


def _rows_figure(n_rows: int, width: float, title: str) -> tuple[Figure, list[Axes]]:
    plt = _plt()
    fig, axes = plt.subplots(max(n_rows, 1), 1, figsize=(width, PANEL_H * max(n_rows, 1) + 0.4), dpi=DPI, squeeze=False, layout="constrained")
    fig.suptitle(title, fontsize=10)
    return fig, [a[0] for a in axes]


def _accuracy_panel(ax: Axes, s: HybridSummary, dataset: str) -> None:
    rows = _bar_rows(s, dataset)
    hyb = s.rows(dataset, "hybrid")
    variants = _variants(s, hyb)
    for x, i in enumerate(rows):
        role = str(s.role[i])
        v, lo, hi = s.interval("accuracy", i)
        if role == "hybrid":
            colour = _color(variants.index(_variant(s, i, hyb)))
            ablated = s.ablation[i] != "none"
            style: dict[str, Any] = {"color": colour, "alpha": 0.45 if ablated else 1.0, "hatch": "//" if ablated else None, "edgecolor": colour}
        else:
            style = {"color": BASE_COLOR if role == "base" else THINKING_COLOR}
        if not math.isfinite(v):
            ax.text(x, 1, "n/a", rotation=90, ha="center", va="bottom", fontsize=6, color="0.4")
            continue
        ax.bar(x, 100 * v, 0.7, yerr=_yerr(v, lo, hi, 100.0), capsize=3, error_kw={"elinewidth": 1}, **style)
        top = max(v, hi) if math.isfinite(hi) else v
        ax.annotate(f"{100 * v:.1f}", (x, 100 * top), textcoords="offset points", xytext=(0, 2), ha="center", va="bottom", fontsize=7)
    for role, colour in (("base", BASE_COLOR), ("thinking", THINKING_COLOR)):
        acc = [float(s.accuracy[i]) for i in s.rows(dataset, role) if math.isfinite(s.accuracy[i])]
        if acc:
            ax.axhline(100 * acc[0], color=colour, linestyle=":", linewidth=1, zorder=0)
    labels = [str(s.role[i]) if s.role[i] != "hybrid" else _variant(s, i, hyb) + ("" if s.ablation[i] == "none" else f"\n{s.ablation[i]}") for i in rows]
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_xlim(-0.6, max(len(rows), 1) - 0.4)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{dataset} (n = {', '.join(sorted({str(int(s.n[i])) for i in rows}))})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def hybrid_accuracy(s: HybridSummary, title: str = "") -> Figure:
    """A row per dataset: accuracy bars base, thinking, hybrid rules, ablations, with the bootstrap interval."""
    datasets = s.datasets()
    n_bars = max([len(_bar_rows(s, d)) for d in datasets] + [1])
    fig, axes = _rows_figure(len(datasets), max(2 * PANEL_W, BAR_IN * n_bars + 1.5),
                             (title or "Hybrid sweep accuracy") + f"; error bars: {100 * s.ci:.0f}% bootstrap interval over prompts")
    if not datasets:
        axes[0].text(0.5, 0.5, "no rows in the summary", ha="center", va="center", transform=axes[0].transAxes)
    for ax, d in zip(axes, datasets):
        _accuracy_panel(ax, s, d)
    return fig


def _gap_panel(ax: Axes, s: HybridSummary, dataset: str, legend: bool) -> None:
    hyb = s.rows(dataset, "hybrid")
    groups = _ablation_order([str(s.ablation[i]) for i in hyb])
    variants = _variants(s, hyb)
    width = 0.8 / max(len(variants), 1)
    labelled: set[str] = set()
    for j, var in enumerate(variants):
        for g, abl in enumerate(groups):
            x = g + (j - (len(variants) - 1) / 2) * width
            rows = [i for i in hyb if s.ablation[i] == abl and _variant(s, i, hyb) == var]
            if not rows:
                continue
            v, lo, hi = s.interval("gap", rows[0])
            if not math.isfinite(v):
                ax.text(x, 0, "n/a", rotation=90, ha="center", va="bottom", fontsize=6, color="0.4")
                continue
            ablated = abl != "none"
            ax.bar(x, v, width, color=_color(j), alpha=0.45 if ablated else 1.0, hatch="//" if ablated else None, edgecolor=_color(j),
                   yerr=_yerr(v, lo, hi, 1.0), capsize=3, error_kw={"elinewidth": 1}, label=var if legend and var not in labelled else None)
            labelled.add(var)
            end = (max(v, hi) if v >= 0 else min(v, lo)) if math.isfinite(lo) and math.isfinite(hi) else v
            ax.annotate(f"{v:.2f}", (x, end), textcoords="offset points", xytext=(0, 2 if v >= 0 else -2), ha="center",
                        va="bottom" if v >= 0 else "top", fontsize=7)
    ax.axhline(0, color="k", linewidth=0.8)
    ax.axhline(1, color=THINKING_COLOR, linestyle=":", linewidth=1, label="thinking model" if legend else None)
    ends = [x for i in hyb for x in s.interval("gap", i) if math.isfinite(x)] + [0.0, 1.0]
    span = max(ends) - min(ends)
    ax.set_ylim(min(ends) - 0.1 * span, max(ends) + 0.12 * span)   # room for the value labels above 0 and 1
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_xlim(-0.6, max(len(groups), 1) - 0.4)
    ax.set_ylabel("gap recovered")
    ax.set_title(dataset, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if not hyb:
        ax.text(0.5, 0.5, "no hybrid rows", ha="center", va="center", transform=ax.transAxes)
    elif legend:
        ax.legend(fontsize=7)


def hybrid_gap(s: HybridSummary, title: str = "") -> Figure:
    """A row per dataset: gap recovered per ablation (groups) and rule (bars), bootstrap intervals, a zero line."""
    datasets = s.datasets()
    n_bars = max([len(_variants(s, s.rows(d, "hybrid"))) * len(set(s.ablation[s.rows(d, "hybrid")].tolist())) for d in datasets] + [1])
    fig, axes = _rows_figure(len(datasets), max(2 * PANEL_W, GROUP_BAR_IN * n_bars + 2.0),
                             (title or "Gap recovered") + f"; error bars: {100 * s.ci:.0f}% bootstrap interval over prompts")
    if not datasets:
        axes[0].text(0.5, 0.5, "no rows in the summary", ha="center", va="center", transform=axes[0].transAxes)
    for k, (ax, d) in enumerate(zip(axes, datasets)):
        _gap_panel(ax, s, d, legend=k == 0)
    return fig


# ---- trace ----------------------------------------------------------------------------------------

def load_tokenizer(path: pathlib.Path) -> Any:
    """A `tokenizers` Tokenizer from a tokenizer.json (ImportError naming the package when it is missing)."""
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise ImportError("hybrid_trace decodes tokens with the `tokenizers` package; install it into this Python") from e
    return Tokenizer.from_file(str(path))


def token_pieces(tokenizer: Any, ids: Sequence[int], limit: int = CHAR_LIMIT) -> list[str]:
    """Each token's text, from decoding growing prefixes (so byte-level pieces and leading spaces come out
    as in the whole text); a token that ends inside a multi-byte character gets "" and the next the
    character. Stops after `limit` characters (the remaining tokens are left out)."""
    pieces: list[str] = []
    done = ""
    for k in range(len(ids)):
        text = tokenizer.decode([int(t) for t in ids[:k + 1]], skip_special_tokens=False)
        if text.endswith("\ufffd") and k + 1 < len(ids):
            pieces.append("")
            continue
        pieces.append(text[len(done):] if text.startswith(done) else tokenizer.decode([int(ids[k])], skip_special_tokens=False))
        done = text
        if len(done) >= limit:
            break
    return pieces


def _printable(ch: str, charmap: dict[int, int]) -> str:
    """`ch` as the trace font can draw it: tabs as spaces, compatibility forms (full-width bars) folded,
    anything else the font lacks as '?'."""
    if ch == "\t":
        return "    "
    if ord(ch) in charmap or ch == " ":
        return ch
    folded = unicodedata.normalize("NFKC", ch)
    return folded if folded and all(ord(c) in charmap for c in folded) else "?"


Cell = tuple[str, int]   # (character, style) with style -1 plain, -2 forced, -3 skipped, c >= 0 steered with category c


def _style(kind: int, category: int) -> int:
    return category if kind == STEERED and category >= 0 else -4 if kind == STEERED else -2 if kind == FORCED else -3 if kind == SKIPPED else -1


def wrap_cells(cells: Sequence[Cell], width: int = WRAP) -> list[list[Cell]]:
    """Lines of at most `width` cells: a newline ends a line, a longer line breaks after its last space
    (mid-word when it has none)."""
    lines: list[list[Cell]] = []
    line: list[Cell] = []
    for ch, st in cells:
        if ch == "\n":
            lines.append(line)
            line = []
            continue
        line.append((ch, st))
        if len(line) > width:
            cut = max((i for i, (c, _) in enumerate(line[:width]) if c == " "), default=width - 1) + 1
            lines.append(line[:cut])
            line = line[cut:]
    lines.append(line)
    return lines


def _runs(line: Sequence[Cell]) -> list[tuple[int, str, int]]:
    """(first column, text, style) of each stretch of one style."""
    out: list[tuple[int, str, int]] = []
    for col, (ch, st) in enumerate(line):
        if out and out[-1][2] == st:
            out[-1] = (out[-1][0], out[-1][1] + ch, st)
        else:
            out.append((col, ch, st))
    return out


def trace_lines(t: HybridTask, p: int, tokenizer: Any, limit: int = CHAR_LIMIT) -> tuple[list[list[Cell]], int, bool]:
    """The wrapped cells of prompt p's emitted tokens (at most `limit` characters), the number of
    characters shown and whether the text was cut."""
    from matplotlib import font_manager, ft2font
    charmap = ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties(family=MONO))).get_charmap()
    rows = t.tokens(p)
    pieces = token_pieces(tokenizer, t.token_id[rows], limit)
    kinds, cats = t.token_kind[rows], t.token_category[rows]
    cells: list[Cell] = []
    for k, piece in enumerate(pieces):
        st = _style(int(kinds[k]), int(cats[k]))
        cells += [(c, st) for ch in piece.replace("\r", "") for c in (ch if ch == "\n" else _printable(ch, charmap))]
    cut = len(pieces) < rows.stop - rows.start or len(cells) > limit
    return wrap_cells(cells[:limit]), min(len(cells), limit), cut


def _trace_header(t: HybridTask, p: int, n_tok: int, shown: int, cut: bool) -> str:
    rows = t.tokens(p)
    kinds = t.token_kind[rows]
    verdict = {1: "right", 0: "wrong", -1: "no reference"}.get(int(t.correct[p]), "?")
    return (f"task {t.task} ({t.key}): {t.role}, rule {t.rule or '-'}, ablation {t.ablation or '-'}, layer {t.layer}, seed {t.seed}; {t.dataset}\n"
            f"prompt {p} ({t.ids[p]}): answer {str(t.answers[p])!r}, reference {str(t.references[p])!r} ({verdict}); {n_tok} tokens, "
            f"{int((kinds == STEERED).sum())} steered, {int(t.think_tokens[p])} thinking" + (f"; the first {shown} characters" if cut else ""))


def hybrid_trace(t: HybridTask, p: int, tokenizer: Any, title: str = "") -> Figure:
    """Prompt p's emitted text, wrapped, steered tokens on their category's colour, forced tokens grey."""
    from matplotlib.patches import Patch, Rectangle
    plt = _plt()
    if not 0 <= p < t.prompts:
        raise IndexError(f"{t.path}: prompt {p} out of range (the task has {t.prompts} prompts)")
    n_tok = t.tokens(p).stop - t.tokens(p).start
    lines, shown, cut = trace_lines(t, p, tokenizer) if n_tok else ([], 0, False)
    height = TRACE_TOP + LINE_IN * max(len(lines), MIN_LINES) + TRACE_BOTTOM
    fig = plt.figure(figsize=(TRACE_W, height), dpi=DPI)
    fig.text(0.5, 1 - 0.12 / height, title or "Hybrid trace", ha="center", va="top", fontsize=10)
    fig.text(TRACE_LEFT / TRACE_W, 1 - 0.34 / height, _trace_header(t, p, n_tok, shown, cut), ha="left", va="top", fontsize=7, parse_math=False)
    if not n_tok:
        why = "the task ran without hybrid.save_text" if not t.n_tokens else "the prompt emitted none"
        fig.text(0.5, 0.5, f"no tokens saved for this prompt ({why})", ha="center", va="center", fontsize=9)
    styles: set[int] = set()
    for r, line in enumerate(lines):
        y = 1 - (TRACE_TOP + (r + 1) * LINE_IN) / height
        for col, text, st in _runs(line):
            styles.add(st)
            x = (TRACE_LEFT + col * CHAR_IN) / TRACE_W
            if st >= 0 or st in (-3, -4):
                face = _color(st) if st >= 0 else "0.8" if st == -3 else "0.5"
                fig.add_artist(Rectangle((x, y - 0.035 / height), len(text) * CHAR_IN / TRACE_W, LINE_IN / height, transform=fig.transFigure,
                                         facecolor=face, alpha=0.3, edgecolor="none", zorder=0))
            colour = FORCED_COLOR if st == -2 else "black"
            fig.text(x, y, text, fontsize=FONT, fontfamily=MONO, color=colour, ha="left", va="baseline", parse_math=False)
    handles = [Patch(facecolor=_color(c), alpha=0.3, label=f"steered, idx{c}") for c in sorted(x for x in styles if x >= 0)]
    handles += [Patch(facecolor=f, alpha=a, label=name) for st, f, a, name in ((-4, "0.5", 0.3, "steered (no category)"),
                                                                             (-3, "0.8", 0.3, "disagreement not steered (randpos)"),
                                                                             (-2, FORCED_COLOR, 1.0, "forced answer prefix (grey text)")) if st in styles]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=7, frameon=False)
    return fig
