"""`thinksteer-analysis basevec RUN_DIR [--out DIR]`: the base-vector sweep (docs/algorithms.md §B.8, §B.10)
as a markdown table, one row per task: method, seed, whether `reduce` selected it (summary.h5), the holdout
split's unsteered / steered / random-control mean (correction: top-k KL to the thinking model; linear:
log10 CE), the selection metric and its split, and for correction sets the steered share of positions whose
argmax is the thinking model's top-1. Rows come from every finished task file, then from the summary rows
whose task file is gone (their metrics are the summary's copy). Below the table: selected.json, any
disagreement between it and the summary, and the figures (basevec_figures) written into DIR (default
RUN_DIR/figures)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .basevec import BASEVEC_TASK, holdout_scores
from .basevec_figures import BasevecInputs, draw_basevec, load_basevec_inputs
from .schema import PathLike
from .report import print_table_and_draw, run_directory

HEADER = ("task", "key", "method", "seed", "selected", "holdout unsteered", "holdout steered", "holdout random (mean)", "selection metric",
          "steered top-1 share")
ALIGN = ("---:", "---", "---", "---:", "---", "---:", "---:", "---:", "---:", "---:")


def _num(v: float, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if math.isfinite(v) else "n/a"


def _row(task: int, key: str, method: str, seed: int, selected: str, metrics: dict[str, Any]) -> list[str]:
    h = holdout_scores(metrics, method)
    sel = metrics.get("selection_metric")
    sel_v = float(sel) if isinstance(sel, (int, float)) and not isinstance(sel, bool) else math.nan
    split = metrics.get("selection_split")
    sel_text = _num(sel_v) + (f" ({split})" if isinstance(split, str) and math.isfinite(sel_v) else "")
    return [str(task), f"`{key}`", method, str(seed), selected, _num(h.unsteered), _num(h.steered), _num(h.random_mean), sel_text,
            _num(h.top1, 3) if method == "correction" else "-"]


def basevec_rows(inputs: BasevecInputs) -> list[list[str]]:
    """The table's rows (cells as printed): task files by (method, seed, key), then summary rows without a file."""
    s = inputs.summary
    rows = []
    for t in inputs.tasks:
        i = s.row_of(t.key) if s is not None else None
        selected = "n/a (no summary)" if s is None else "not in summary" if i is None else "yes" if s.selected[i] == 1 else "no"
        rows.append(_row(t.task, t.key, t.method, t.seed, selected, t.metrics))
    have = {t.key for t in inputs.tasks}
    if s is not None:
        for i in range(len(s)):
            if str(s.key[i]) not in have:
                rows.append(_row(int(s.task[i]), str(s.key[i]), str(s.method[i]), int(s.seed[i]),
                                 ("yes" if s.selected[i] == 1 else "no") + " (no task file)", s.metrics[i]))
    return rows


def _markdown(rows: list[list[str]]) -> list[str]:
    def line(cells: tuple[str, ...] | list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return [line(HEADER), line(ALIGN)] + [line(r) for r in rows]


def _notes(inputs: BasevecInputs) -> list[str]:
    s, sel = inputs.summary, inputs.selected
    out = []
    if sel is not None:
        for method, e in sorted(sel.items()):
            out.append(f"selected.json: {method} -> task {e.task}, key `{e.key}`, seed {e.seed}, selection {_num(e.selection)} (vectors: {e.vectors})")
        if not sel:
            out.append("selected.json: no method has a selected task")
    if s is not None:
        chosen = {m: str(s.key[i]) for m, i in s.selected_rows().items()}
        if sel is not None and chosen != {m: e.key for m, e in sel.items()}:
            out.append(f"note: selected.json ({ {m: e.key for m, e in sel.items()} }) disagrees with summary.h5's selected rows ({chosen}): "
                       "rerun `thinksteer reduce`")
        missing = [t.key for t in inputs.tasks if s.row_of(t.key) is None]
        if missing:
            out.append(f"note: {len(missing)} finished task file(s) not in summary.h5 ({', '.join(missing)}): the summary predates them "
                       "or another plan wrote them; rerun `thinksteer reduce` to select among them")
    return out


def by_label_lines(inputs: BasevecInputs) -> list[str]:
    """Per correction task with reference labels (metrics["by_label"]), per label: the mean log-probability of the
    thinking model's next token under the base model at those disagreement positions, unsteered, with each position's
    own category, with the category most of the label's positions fall into forced at every position (its vector),
    and with a same-norm random vector forced there."""
    out: list[str] = []
    for t in inputs.tasks:
        by = t.metrics.get("by_label") if t.method == "correction" else None
        if not isinstance(by, dict) or not by:
            continue
        out += ["", f"By reference label, task {t.task} (`{t.key}`, seed {t.seed}): mean log p of the rollout's next token at the label's "
                    "held-out disagreement positions",
                "", "| label | positions | unsteered | own category | main category | its vector forced | same-norm random forced | "
                    "each category's vector forced / a same-norm random vector forced (best vector in bold) |",
                "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- |"]
        for label, v in sorted(by.items()):
            share = [float(x) for x in v.get("category_share", [])]
            if not share:
                continue
            k = max(range(len(share)), key=lambda i: share[i])
            forced = [float(x) for x in v["forced"]]
            best = max(range(len(forced)), key=lambda i: forced[i])
            rnd = [float(x) for x in v["random_forced"]]
            each = ", ".join((f"**idx{i} {_num(x, 2)}**" if i == best else f"idx{i} {_num(x, 2)}") + f" / {_num(rnd[i], 2)}" for i, x in enumerate(forced))
            out.append(f"| {label} | {v['positions']} | {_num(float(v['unsteered']), 2)} | {_num(float(v['own']), 2)} | idx{k} ({share[k]:.0%}) | "
                       f"{_num(forced[k], 2)} | {_num(float(v['random_forced'][k]), 2)} | {each} |")
    return out


def basevec_table(inputs: BasevecInputs) -> str:
    """The heading, the markdown table and the notes (without the figures)."""
    s = inputs.summary
    head = [f"# Base-vector sweep: {inputs.run_dir}", "",
            f"{len(inputs.tasks)} finished task file(s); " + ("no summary.h5 (`thinksteer reduce` has not run)" if s is None else
                                                             f"summary.h5: {len(s)} task(s){' (partial)' if s.partial else ''}; rule: {s.rule}"),
            "", "holdout: correction sets top-k KL of the base model to the thinking model at the disagreement positions, "
            "linear sets mean log10 CE of the held-out sentences (lower is better); random: same-norm random vectors "
            "(correction: mean over the random controls). Top-1 share: correction only.", ""]
    notes = _notes(inputs)
    return "\n".join(head + _markdown(basevec_rows(inputs)) + by_label_lines(inputs) + ([""] + notes if notes else []))


def main(run_dir: PathLike, out: PathLike | None = None, fmt: str = "png", log: Callable[[str], Any] = print) -> int:
    """Prints the table and writes the figures; FileNotFoundError when the run has no basevec task and no summary."""
    run = run_directory(run_dir)
    inputs = load_basevec_inputs(run, log)
    if inputs.empty:
        raise FileNotFoundError(f"{run / BASEVEC_TASK.dir}: no finished task file and no summary.h5 (run `thinksteer basevec train` first)")
    return print_table_and_draw(basevec_table(inputs), lambda out_dir, f, written: draw_basevec(inputs, out_dir, f, written), run, out, fmt)
